// Upload benchmark (bench/RESULTS.md): our uploader against Debian's `rclone copy`, in one run,
// to the same Azurite and to the same S3 server (Ceph radosgw, docs/s3-test-server.md), for
// 1 file of 1 GiB and for 2,000 files of 64 KiB. Prints throughput, files per second and CPU
// seconds of each, with ratios.
//
// Ours: the files sit in a cloud share of an encrypted Store; the timed part is the Uploader
// draining the queue (reading through the Store: decrypting and checking every chunk, MD5 per
// part and per object, 4 transfers, 8 MiB parts). CPU: this process's user+system time.
// rclone: the same bytes as plain files on the same disk, `rclone copy DIR remote:container`
// with its defaults (4 transfers); CPU: the rclone process's user+system time (wait4).
//
// Usage: upload_bench [--large-mib N] [--small-files N] [--only azure|s3]

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cloud/azure_blob/azure_blob_store.h"
#include "cloud/s3/s3_store.h"
#include "crypto/hash.h"
#include "store/store.h"
#include "sync/uploader.h"
#include "test/support/azurite.h"
#include "test/support/rgw.h"
#include "test/support/temp_dir.h"

namespace fieldstack {
namespace {

double CpuSeconds(const rusage& r) {
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Measure {
  double seconds = 0;
  double cpu = 0;
  uint64_t bytes = 0;
  size_t files = 0;
  std::string error;
};

struct Dataset {
  std::string name;
  std::string dir;  // plain files (rclone's source)
  std::vector<std::pair<std::string, uint64_t>> files;
  uint64_t bytes = 0;
};

Dataset MakeDataset(const std::string& root, const std::string& name, size_t count, uint64_t size) {
  Dataset d{name, root + "/" + name, {}, 0};
  std::filesystem::create_directories(d.dir);
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  std::vector<char> buf(std::min<uint64_t>(size, 8 << 20));
  for (size_t i = 0; i < count; ++i) {
    char fname[32];
    std::snprintf(fname, sizeof fname, "f%05zu.bin", i);
    std::ofstream out(d.dir + "/" + fname, std::ios::binary);
    for (uint64_t left = size; left > 0;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
      urandom.read(buf.data(), static_cast<std::streamsize>(n));
      out.write(buf.data(), static_cast<std::streamsize>(n));
      left -= n;
    }
    d.files.emplace_back(fname, size);
    d.bytes += size;
  }
  return d;
}

// A Store holding the dataset in a cloud share, its files queued for upload.
std::unique_ptr<store::Store> FillStore(const std::string& dir, const Dataset& d) {
  auto s = store::Store::Open({.data_dir = dir});
  if (!s.ok()) {
    std::fprintf(stderr, "store: %s\n", s.status().ToString().c_str());
    std::exit(1);
  }
  auto share = (*s)->CreateShare("bench", store::ShareKind::kCloud);
  std::vector<uint8_t> buf(8 << 20);
  for (const auto& [name, size] : d.files) {
    auto h = (*s)->Create(share->root, name, {});
    std::ifstream in(d.dir + "/" + name, std::ios::binary);
    for (uint64_t off = 0; off < size;) {
      in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
      size_t n = static_cast<size_t>(in.gcount());
      if (!(*h)->Write(off, {buf.data(), n}).ok()) std::exit(1);
      off += n;
    }
    if (!(*h)->Close().ok()) std::exit(1);
  }
  return std::move(*s);
}

Measure Ours(store::Store& st, cloud::ObjectStore& target, const Dataset& d,
             const std::string& timetable = "") {
  sync::Uploader::Options o;  // the daemon's defaults: 8 MiB parts, 4 transfers
  if (!timetable.empty()) o.schedule = *sync::BandwidthSchedule::ParseTimetable(timetable);
  sync::Uploader up(
      st, [&](uint32_t) { return &target; }, RealClock::Get(), o);
  rusage before, after;
  getrusage(RUSAGE_SELF, &before);
  double t0 = Now();
  Measure m;
  for (;;) {
    auto pass = up.RunOnce();
    if (!pass.ok()) {
      m.error = pass.status().ToString();
      break;
    }
    m.files += pass->uploaded;
    if (pass->failed > 0 || pass->conflicts > 0) m.error = "failures";
    if (*st.PendingUploads() == 0) break;
  }
  m.seconds = Now() - t0;
  getrusage(RUSAGE_SELF, &after);
  m.cpu = CpuSeconds(after) - CpuSeconds(before);
  m.bytes = d.bytes;
  return m;
}

Measure Rclone(const std::vector<std::string>& env, const std::string& src, const std::string& dst,
               const Dataset& d) {
  Measure m;
  double t0 = Now();
  pid_t pid = fork();
  if (pid == 0) {
    for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
    unsetenv("AWS_CA_BUNDLE");  // rclone's S3 backend fails with it set
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    execlp("rclone", "rclone", "copy", src.c_str(), dst.c_str(), "--log-level", "ERROR", nullptr);
    _exit(127);
  }
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  m.seconds = Now() - t0;
  m.cpu = CpuSeconds(ru);
  m.bytes = d.bytes;
  m.files = d.files.size();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) m.error = "rclone failed";
  return m;
}

// Every object of the dataset is in `target` with the right size.
std::string Verify(cloud::ObjectStore& target, const Dataset& d) {
  std::map<std::string, uint64_t> seen;
  std::string token;
  do {
    auto page = target.List("", token, 1000);
    if (!page.ok()) return page.status().ToString();
    for (const auto& o : page->objects) seen[o.key] = o.size;
    token = page->next_token;
  } while (!token.empty());
  for (const auto& [name, size] : d.files) {
    auto it = seen.find(name);
    if (it == seen.end() || it->second != size) return "missing or wrong size: " + name;
  }
  return "";
}

void Row(const std::string& target, const Dataset& d, const Measure& ours, const Measure& rc) {
  auto mbs = [](const Measure& m) { return static_cast<double>(m.bytes) / 1e6 / m.seconds; };
  auto fps = [](const Measure& m) { return static_cast<double>(m.files) / m.seconds; };
  std::printf(
      "| %s | %s | %.1f MB/s, %.0f files/s, %.2f s CPU | %.1f MB/s, %.0f files/s, %.2f s CPU "
      "| %.2f x | %.2f x |%s%s\n",
      target.c_str(), d.name.c_str(), mbs(ours), fps(ours), ours.cpu, mbs(rc), fps(rc), rc.cpu,
      mbs(ours) / mbs(rc), ours.cpu / rc.cpu,
      ours.error.empty() ? "" : (" ours: " + ours.error).c_str(),
      rc.error.empty() ? "" : (" rclone: " + rc.error).c_str());
  std::fflush(stdout);
}

// For each dataset: rclone into one container of `make`, then ours into another; verify both;
// print the row. Containers are numbered with `n` so that runs never share one.
void Compare(const std::string& label, const std::vector<Dataset>& sets, const std::string& work,
             int& n,
             const std::function<std::unique_ptr<cloud::ObjectStore>(const std::string&)>& make,
             const std::vector<std::string>& rclone_env, const std::string& remote) {
  for (const Dataset& d : sets) {
    ++n;
    std::string ours_c = "ours-" + std::to_string(n), rc_c = "rclone-" + std::to_string(n);
    auto ours_t = make(ours_c);
    auto rc_t = make(rc_c);
    auto st = FillStore(work + "/store-" + std::to_string(n), d);
    Measure rc = Rclone(rclone_env, d.dir, remote + ":" + rc_c, d);
    Measure ours = Ours(*st, *ours_t, d);
    for (auto [m, t] : {std::pair{&ours, ours_t.get()}, {&rc, rc_t.get()}}) {
      std::string bad = Verify(*t, d);
      if (!bad.empty()) m->error += " verify: " + bad;
    }
    Row(label, d, ours, rc);
  }
}

}  // namespace
}  // namespace fieldstack

int main(int argc, char** argv) {
  using namespace fieldstack;
  uint64_t large_mib = 1024;
  size_t small_files = 2000;
  std::string only;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--large-mib")) large_mib = std::stoull(argv[i + 1]);
    if (!std::strcmp(argv[i], "--small-files")) small_files = std::stoul(argv[i + 1]);
    if (!std::strcmp(argv[i], "--only")) only = argv[i + 1];
  }
  testing::TempDir work;
  std::fprintf(stderr, "generating data in %s\n", work.path().c_str());
  std::vector<Dataset> sets = {
      MakeDataset(work.path(), "1 x " + std::to_string(large_mib) + " MiB", 1, large_mib << 20),
      MakeDataset(work.path(), std::to_string(small_files) + " x 64 KiB", small_files, 64 << 10)};
  if (getenv("FS_PROBE")) {  // where our CPU goes: reading the Store, MD5
    auto st = FillStore(work.path() + "/probe", sets[0]);
    auto share = st->GetShare("bench");
    auto node = st->Lookup(share->root, sets[0].files[0].first);
    auto attr = st->GetAttr(node->id);
    auto h = st->OpenFile(node->id, false);
    std::vector<uint8_t> buf(8 << 20);
    rusage a, b;
    getrusage(RUSAGE_SELF, &a);
    double t0 = Now();
    for (uint64_t off = 0;; off += buf.size()) {
      auto n = (*h)->ReadCommitted(attr->data_gen, off, buf);
      if (!n.ok() || *n == 0) break;
    }
    getrusage(RUSAGE_SELF, &b);
    std::printf("store read: %.2f s wall, %.2f s CPU\n", Now() - t0, CpuSeconds(b) - CpuSeconds(a));
    getrusage(RUSAGE_SELF, &a);
    crypto::Digest md5(crypto::Digest::Kind::kMd5);
    for (int i = 0; i < 128; ++i) md5.Update(buf);
    getrusage(RUSAGE_SELF, &b);
    std::printf("md5 1 GiB: %.2f s CPU\n", CpuSeconds(b) - CpuSeconds(a));
    return 0;
  }
  std::printf(
      "| target | data | ours | rclone copy | throughput ours/rclone | CPU ours/rclone |\n");
  std::printf("|---|---|---|---|---|---|\n");
  int n = 0;
  if (only.empty() || only == "azure") {
    auto& azurite = testing::Azurite::Shared();
    if (azurite.endpoint().empty()) {
      std::fprintf(stderr, "azurite: %s\n", azurite.error().c_str());
      return 1;
    }
    Compare(
        "Azurite 3.35", sets, work.path(), n,
        [&](const std::string& container) -> std::unique_ptr<cloud::ObjectStore> {
          auto s = cloud::azure_blob::AzureBlobStore::Open(
              {azurite.endpoint(), testing::Azurite::kAccount, testing::Azurite::kKey, "",
               container},
              RealClock::Get());
          (void)(*s)->CreateContainer();
          return std::move(*s);
        },
        {"RCLONE_CONFIG_AZ_TYPE=azureblob",
         std::string("RCLONE_CONFIG_AZ_ACCOUNT=") + testing::Azurite::kAccount,
         std::string("RCLONE_CONFIG_AZ_KEY=") + testing::Azurite::kKey,
         "RCLONE_CONFIG_AZ_ENDPOINT=" + azurite.endpoint(), "RCLONE_CONFIG_AZ_USE_EMULATOR=true"},
        "az");
  }
  if (only.empty() || only == "rate") {
    // The bandwidth limit against a real server: 16 MiB/s for about 30 s.
    auto& azurite = testing::Azurite::Shared();
    Dataset d = MakeDataset(work.path(), "rate", 1, uint64_t{480} << 20);
    auto t = cloud::azure_blob::AzureBlobStore::Open(
        {azurite.endpoint(), testing::Azurite::kAccount, testing::Azurite::kKey, "", "rate"},
        RealClock::Get());
    (void)(*t)->CreateContainer();
    auto st = FillStore(work.path() + "/store-rate", d);
    Measure m = Ours(*st, **t, d, "16M");
    double want = 16.0 * 1024 * 1024, got = static_cast<double>(m.bytes) / m.seconds;
    std::printf(
        "\nbandwidth limit 16M (16 MiB/s) to Azurite: 480 MiB in %.1f s = %.2f MiB/s, "
        "%+.1f %% off%s\n",
        m.seconds, got / 1024 / 1024, (got / want - 1) * 100,
        m.error.empty() ? "" : (" error: " + m.error).c_str());
    if (only == "rate") return 0;
  }
  if (only.empty() || only == "s3") {
    auto& rgw = testing::Rgw::Shared();
    if (rgw.endpoint().empty()) {
      std::fprintf(stderr, "radosgw: %s\n", rgw.error().c_str());
      return 1;
    }
    Compare(
        "Ceph radosgw 16.2", sets, work.path(), n,
        [&](const std::string& bucket) -> std::unique_ptr<cloud::ObjectStore> {
          cloud::s3::S3Config c;
          c.endpoint = rgw.endpoint();
          c.bucket = bucket;
          c.credentials = {rgw.access_key(), rgw.secret_key(), ""};
          auto s = cloud::s3::S3Store::Open(c, RealClock::Get());
          (void)(*s)->CreateBucket();
          return std::move(*s);
        },
        {"RCLONE_CONFIG_S3_TYPE=s3", "RCLONE_CONFIG_S3_PROVIDER=Ceph",
         "RCLONE_CONFIG_S3_ACCESS_KEY_ID=" + rgw.access_key(),
         "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY=" + rgw.secret_key(),
         "RCLONE_CONFIG_S3_ENDPOINT=" + rgw.endpoint(), "RCLONE_CONFIG_S3_REGION=us-east-1"},
        "s3");
  }
  return 0;
}
