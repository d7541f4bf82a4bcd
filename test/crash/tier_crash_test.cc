// Tier crash test: a child process evicts files of a cloud share and recalls them from the
// cloud (a local directory) in random ranges, checking every byte; this test SIGKILLs it
// again and again, at random moments: mid-eviction (between the commit and the removal of the
// data), mid-recall (a backing file half filled), mid-upload. After every restart the child
// recovers and goes on checking; at the end every file reads back whole and identical, and no
// stub has data left on disk.
//
// FS_TIER_KILLS sets the number of kills (default 30); FS_SEED fixes the seed.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "cloud/localfs/localfs_store.h"
#include "platform/file.h"
#include "store/store.h"
#include "sync/evictor.h"
#include "sync/recall.h"
#include "test/crash/tier_crash_files.h"
#include "test/support/temp_dir.h"

namespace fieldstack {
namespace {

struct Child {
  pid_t pid = -1;
  int out = -1;
  std::string output;
};

Child Spawn(const std::string& data, const std::string& cloud, uint64_t seed) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    std::string s = std::to_string(seed);
    ::execl(FS_TIER_CHILD, FS_TIER_CHILD, data.c_str(), cloud.c_str(), s.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(fds[1]);
  return {pid, fds[0], ""};
}

// Reads what the child printed until `needle` appears or `timeout_ms` passes.
bool WaitFor(Child& c, const std::string& needle, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (c.output.find(needle) == std::string::npos) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    if (left <= 0) return false;
    pollfd p{c.out, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(c.out, buf, sizeof buf);
    if (n <= 0) return false;
    c.output.append(buf, static_cast<size_t>(n));
  }
  return true;
}

// Kills the child and returns everything it printed.
std::string Kill(Child& c) {
  ::kill(c.pid, SIGKILL);
  int status;
  ::waitpid(c.pid, &status, 0);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(c.out, buf, sizeof buf)) > 0) c.output.append(buf, static_cast<size_t>(n));
  ::close(c.out);
  return c.output;
}

TEST(TierCrashTest, KillsDuringEvictionAndRecallNeverServeOrKeepWrongBytes) {
  const char* env_seed = std::getenv("FS_SEED");
  uint64_t seed =
      env_seed ? std::strtoull(env_seed, nullptr, 10)
               : static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  SCOPED_TRACE("reproduce with FS_SEED=" + std::to_string(seed));
  const int kills = std::getenv("FS_TIER_KILLS") ? std::atoi(std::getenv("FS_TIER_KILLS")) : 30;
  std::mt19937_64 rng(seed);
  testing::TempDir dir;
  std::string data = dir.path() + "/data", cloud = dir.path() + "/cloud";

  Child first = Spawn(data, cloud, seed);
  ASSERT_TRUE(WaitFor(first, "READY", 120000)) << first.output;
  int rounds = 0;
  auto count_rounds = [&](const std::string& out) {
    for (size_t at = out.find("ROUND"); at != std::string::npos; at = out.find("ROUND", at + 1)) {
      ++rounds;
    }
  };
  std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 300));
  std::string out = Kill(first);
  ASSERT_EQ(out.find("BAD"), std::string::npos) << out;
  ASSERT_EQ(out.find("ERROR"), std::string::npos) << out;
  count_rounds(out);
  for (int k = 0; k < kills; ++k) {
    Child c = Spawn(data, cloud, seed);
    ASSERT_GT(c.pid, 0);
    ASSERT_TRUE(WaitFor(c, "READY", 60000)) << "kill " << k << ": " << c.output;
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 400));
    out = Kill(c);
    ASSERT_EQ(out.find("BAD"), std::string::npos) << "kill " << k << ": " << out;
    ASSERT_EQ(out.find("ERROR"), std::string::npos) << "kill " << k << ": " << out;
    count_rounds(out);
  }

  // After the last kill: every file whole and right; stubs hold no data on the box.
  auto target = cloud::localfs::LocalFsStore::Open(cloud);
  ASSERT_TRUE(target.ok());
  auto st = store::Store::Open({.data_dir = data, .chunk_size_bytes = 64 * 1024});
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  auto to = [&](uint32_t) -> cloud::ObjectStore* { return target->get(); };
  sync::Recaller recaller(to, RealClock::Get(), {});
  sync::Evictor evictor(**st, RealClock::Get(), {}, &recaller);
  (*st)->SetCacheHooks(&evictor);
  int stubs = 0;
  for (int i = 0; i < testing::kTierFiles; ++i) {
    auto a = (*st)->Resolve("s", "f" + std::to_string(i));
    ASSERT_TRUE(a.ok());
    if (a->state == store::FileState::kStub) {
      ++stubs;
      char name[64];
      std::snprintf(name, sizeof name, "/objects/%02x/%016llx", static_cast<unsigned>(a->id & 0xff),
                    static_cast<unsigned long long>(a->id));
      EXPECT_FALSE(platform::PathExists(data + name)) << "stub f" << i << " kept data on disk";
    }
    std::string want = testing::TierContent(seed, i);
    auto h = (*st)->OpenFile(a->id, false);
    ASSERT_TRUE(h.ok());
    std::string got(want.size(), '\0');
    auto n = (*h)->Read(0, {reinterpret_cast<uint8_t*>(got.data()), got.size()});
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_TRUE(*n == want.size() && got == want) << "f" << i << " differs after the crashes";
  }
  (*st)->SetCacheHooks(nullptr);
  std::printf(
      "tier crash test: %d kills, %d rounds of evict-and-recall checked, %d stubs at "
      "the end\n",
      kills + 1, rounds, stubs);
  EXPECT_GT(rounds, 0);
}

}  // namespace
}  // namespace fieldstack
