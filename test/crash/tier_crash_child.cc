// Child of tier_crash_test: a Store whose cloud share goes to a local directory (LocalFsStore,
// crash-safe), with the Evictor and Recaller as its cache hooks. Usage:
//   tier_crash_child DATA_DIR CLOUD_DIR SEED
// First run: writes the files, uploads them, prints "READY". Every run: evicts every clean
// file, then reads the files back in random ranges (recalls) and checks each byte against the
// content the file was written with, forever, printing "ROUND n". A wrong byte prints "BAD"
// and exits 3; any other failure exits 2.

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>

#include "cloud/localfs/localfs_store.h"
#include "store/store.h"
#include "sync/evictor.h"
#include "sync/recall.h"
#include "sync/uploader.h"
#include "test/crash/tier_crash_files.h"

using namespace fieldstack;

int Die(const std::string& what) {
  std::printf("ERROR %s\n", what.c_str());
  std::fflush(stdout);
  return 2;
}

int main(int argc, char** argv) {
  if (argc != 4) return Die("usage: tier_crash_child DATA_DIR CLOUD_DIR SEED");
  uint64_t seed = std::strtoull(argv[3], nullptr, 10);
  auto cloud = cloud::localfs::LocalFsStore::Open(argv[2]);
  if (!cloud.ok()) return Die(cloud.status().ToString());
  auto st = store::Store::Open({.data_dir = argv[1], .chunk_size_bytes = 64 * 1024});
  if (!st.ok()) return Die(st.status().ToString());
  store::Store& s = **st;
  auto share = s.GetShare("s");
  bool fresh = !share.ok();
  if (fresh) share = s.CreateShare("s", store::ShareKind::kCloud);
  if (!share.ok()) return Die(share.status().ToString());
  auto target = [&](uint32_t) -> cloud::ObjectStore* { return cloud->get(); };
  sync::Uploader::Options uo;
  uo.part_size_bytes = 256 * 1024;  // several recall blocks per file
  sync::Uploader uploader(s, target, RealClock::Get(), uo);
  sync::Recaller recaller(target, RealClock::Get(), {});
  sync::Evictor evictor(s, RealClock::Get(), {}, &recaller);
  s.SetCacheHooks(&evictor);
  if (fresh) {
    for (int i = 0; i < testing::kTierFiles; ++i) {
      std::string data = testing::TierContent(seed, i);
      auto h = s.Create(share->root, "f" + std::to_string(i), {});
      if (!h.ok()) return Die(h.status().ToString());
      Status w = (*h)->Write(0, {reinterpret_cast<const uint8_t*>(data.data()), data.size()});
      if (!w.ok() || !(*h)->Close().ok()) return Die("write");
    }
  }
  for (int i = 0; i < 1000; ++i) {
    auto pass = uploader.RunOnce();
    if (!pass.ok()) return Die(pass.status().ToString());
    if (*s.PendingUploads() == 0) break;
  }
  std::printf("READY\n");
  std::fflush(stdout);
  std::mt19937_64 rng(seed ^ static_cast<uint64_t>(::getpid()));
  for (int round = 0;; ++round) {
    auto c = s.EvictionCandidates(share->id, INT64_MIN, 0, 1000);
    if (!c.ok()) return Die(c.status().ToString());
    if (!s.Evict(*c).ok()) return Die("evict");
    for (int k = 0; k < testing::kTierFiles; ++k) {
      int i = static_cast<int>(rng() % testing::kTierFiles);
      std::string want = testing::TierContent(seed, i);
      auto a = s.Resolve("s", "f" + std::to_string(i));
      if (!a.ok()) return Die(a.status().ToString());
      auto h = s.OpenFile(a->id, false);
      if (!h.ok()) return Die(h.status().ToString());
      size_t off = want.empty() ? 0 : rng() % want.size();
      size_t len = std::min<size_t>(want.size() - off, 1 + rng() % (600 * 1024));
      std::string got(len, '\0');
      auto n = (*h)->Read(off, {reinterpret_cast<uint8_t*>(got.data()), len});
      if (!n.ok()) return Die(n.status().ToString());
      if (*n != len || got != want.substr(off, len)) {
        std::printf("BAD f%d at %zu+%zu\n", i, off, len);
        std::fflush(stdout);
        return 3;
      }
    }
    std::printf("ROUND %d\n", round);
    std::fflush(stdout);
  }
}
