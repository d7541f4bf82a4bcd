// bench/tiering: the box's cache tiering on Azurite, in one run (bench/RESULTS.md, issue 6):
//
//  1. Recall. A 1 GiB file (random bytes) is written into a cloud share of an encrypted Store
//     (default 256 KiB chunks), uploaded by the Uploader (the daemon's defaults: 8 MiB parts, 4
//     transfers; the part MD5s are recorded), evicted (Store::EvictionCandidates + Evict), and
//     read back from a fresh open with FileHandle::Read in 1 MiB reads, as the FUSE and NFS
//     front ends read, with the Evictor (no limits) as the Store's CacheHooks and a Recaller
//     (defaults) behind it. Time to first byte is from just before OpenFile to the return of the
//     first Read; throughput is the file's size over the time to the last Read. Every byte read
//     is compared with what was written (memcmp against the data kept in memory, in the timed
//     loop: a reader consuming the data). The peers, all curl against the same blob with a
//     read-only service SAS (made by az-cli): one GET to /dev/null (the goal's peer; its
//     %{time_starttransfer} and %{time_total}); the recall's own requests (8 MiB ranged GETs, 4
//     at a time, to /dev/null); one GET to a file on the Store's disk, then fdatasync (a download
//     that lands on disk, as a recall does). The four alternate, `--rounds` times, with the page
//     cache dropped before each (Azurite reads its extent files cold every time); the best run of
//     each is reported, all runs listed.
//  2. Eviction rate. 20,000 files of 4 KiB are committed in the share (Create, Write, Close, from
//     8 threads) and marked uploaded the way the tests do it (EnqueueUploads, DueUploads,
//     FinishUpload with a key and an etag; nothing is sent to a cloud: eviction only reads the
//     Store), then one Evictor::RunOnce with a box watermark of 0 bytes evicts all of them (in
//     commits of 256, as the daemon does). The peer: `unlink` of 20,000 files of 4 KiB in the
//     same layout as the Store's backing files (256 folders), on the same filesystem, after a
//     sync; also with a final syncfs.
//  3. Refresh. A container of small objects (256 bytes each, in 100 folders) is made with Put
//     from 8 threads, listed whole with ObjectStore::List (pages of 1,000, as the Refresher asks
//     for: the lower bound), then Refresher::Run fills an empty cloud share of an encrypted Store
//     with stubs (first run) and runs again with nothing changed (steady state), then the plain
//     listing once more (the faster of the two listings is the peer). Two targets, both through
//     the Azure Blob adapter:
//       - Azurite, with 20,000 objects (`--azurite-objects`): Azurite scans every blob of the
//         account on each Put (LokiJS findOne), so putting gets slower as the container grows
//         (15-40 s for the first 10,000, 40-110 s for the next 10,000); 100,000 would take
//         half an hour to an hour;
//       - 100,000 objects (`--box-objects`) on a second box's Blob API (frontends/blob_api over
//         its own Store, in this process), whose listing is paged by the Store's index.
//     `--refresh-budget-s` stops the puts early (the row then says how many were made).
//
// Everything, Azurite included, runs on the same cores; CPU seconds of this process and of
// Azurite (its node process) are reported per phase.
//
// Usage: tiering_bench [--recall-mib 1024] [--rounds 2] [--evict-files 20000]
//                      [--azurite-objects 20000] [--box-objects 100000]
//                      [--refresh-budget-s 300] [--only recall|evict|refresh]
// Runs as root (to drop caches; without, it warns and goes on); data under $TMPDIR or /tmp.

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/machine.h"
#include "cloud/azure_blob/azure_blob_store.h"
#include "common/clock.h"
#include "frontends/blob_api/blob_api.h"
#include "frontends/http/server.h"
#include "frontends/objects/objects.h"
#include "store/store.h"
#include "sync/copy_log.h"
#include "sync/evictor.h"
#include "sync/recall.h"
#include "sync/refresher.h"
#include "sync/uploader.h"
#include "test/support/azurite.h"
#include "test/support/temp_dir.h"

namespace fieldstack {
namespace {

using bench::AzuriteVersion;
using bench::Machine;
using bench::MakeData;
using bench::Median;

namespace fsys = std::filesystem;

constexpr uint64_t kMiB = 1 << 20;
constexpr size_t kReadBytes = 1 << 20;  // one read of a FUSE or NFS reader
constexpr size_t kSmallBytes = 4096;
constexpr size_t kThreads = 8;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "tiering_bench: %s\n", what.c_str());
  std::exit(1);
}

void Check(const Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + s.ToString());
}

template <typename T>
T Must(Result<T> r, const std::string& what) {
  if (!r.ok()) Die(what + ": " + r.status().ToString());
  return std::move(*r);
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double CpuOf(const rusage& r) {
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

double OwnCpuSeconds() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return CpuOf(r);
}

double AzuriteCpuSeconds() { return bench::ChildrenCpuSeconds("node"); }

// CPU seconds of this process and of Azurite, from construction to Ours() / Azurite().
struct CpuMeter {
  double own = OwnCpuSeconds();
  double azurite = AzuriteCpuSeconds();
  double Ours() const { return OwnCpuSeconds() - own; }
  double Azurite() const { return AzuriteCpuSeconds() - azurite; }
};

bool DropCaches() {
  ::sync();
  std::ofstream f("/proc/sys/vm/drop_caches");
  f << "3\n";
  f.flush();
  return static_cast<bool>(f);
}

// ---------------------------------------------------------------------------------------------
// The machine.

// ---------------------------------------------------------------------------------------------
// Helpers: child processes, containers, stores.

struct Child {
  int exit_code = -1;
  std::string out;  // stdout
  double cpu = 0;   // user + system seconds (wait4)
  double wall_s = 0;
};

// Runs `argv` with `env` added to ours; stderr goes to ours. Nothing is allocated between fork
// and exec (other threads may hold the allocator's locks).
Child RunChild(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) Die("pipe failed");
  double t0 = Now();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  Child c;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) c.out.append(buf, n);
  ::close(fds[0]);
  int status = 0;
  rusage ru{};
  ::wait4(pid, &status, 0, &ru);
  c.wall_s = Now() - t0;
  c.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  c.cpu = CpuOf(ru);
  return c;
}

std::unique_ptr<cloud::azure_blob::AzureBlobStore> Container(const std::string& endpoint,
                                                             const std::string& name) {
  auto s = Must(cloud::azure_blob::AzureBlobStore::Open(
                    {endpoint, testing::Azurite::kAccount, testing::Azurite::kKey, "", name, {}},
                    RealClock::Get()),
                "azure " + name);
  Status made = s->CreateContainer();
  if (!made.ok() && made.code() != StatusCode::kAlreadyExists) Check(made, "container " + name);
  return s;
}

// An encrypted Store (the daemon's default) with one cloud share `share`.
std::unique_ptr<store::Store> OpenStore(const std::string& dir, const std::string& share) {
  auto s = Must(store::Store::Open({.data_dir = dir}), "store " + dir);
  Must(s->CreateShare(share, store::ShareKind::kCloud), "share " + share);
  return s;
}

// Runs fn(i) for i in [0, n) on `threads` threads, each taking the next i.
void Parallel(size_t n, size_t threads, const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < n;) fn(i);
    });
  }
  for (auto& t : pool) t.join();
}

// Makes `node` a stub: it must be clean and closed (a recall's last fetch may still hold the
// file open for a moment, so this tries for a while).
void EvictOne(store::Store& st, uint32_t share_id, store::NodeId node) {
  for (int attempt = 0; attempt < 500; ++attempt) {
    auto files = Must(st.EvictionCandidates(share_id, INT64_MIN, 0, 256), "candidates");
    std::vector<store::CacheFile> mine;
    for (const auto& f : files) {
      if (f.node == node) mine.push_back(f);
    }
    if (!mine.empty() && Must(st.Evict(mine), "evict") == 1) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Die("could not evict the large file");
}

// ---------------------------------------------------------------------------------------------
// 1. Recall against curl.

struct Transfer {
  double ttfb_s = 0;
  double total_s = 0;
  uint64_t bytes = 0;
  double cpu_ours = 0;  // this process (recall) or curl's process (direct)
  double cpu_azurite = 0;
  double MBps() const { return static_cast<double>(bytes) / 1e6 / total_s; }
};

struct RecallResult {
  double upload_s = 0;
  std::vector<Transfer> recall;
  std::vector<Transfer> curl;    // one GET to /dev/null: the peer of the goal
  std::vector<Transfer> ranged;  // the recall's requests: 8 MiB ranges, 4 at a time
  std::vector<Transfer> file;    // one GET to a file on the same disk, then fdatasync
};

Transfer RecallOnce(store::Store& st, store::NodeId node, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> buf(kReadBytes);
  Transfer t;
  CpuMeter cpu;
  double t0 = Now();
  auto h = Must(st.OpenFile(node, false), "open for recall");
  for (uint64_t off = 0; off < data.size();) {
    size_t n = Must(h->Read(off, buf), "recall read at " + std::to_string(off));
    if (off == 0) t.ttfb_s = Now() - t0;
    if (n == 0) Die("recall: short file at " + std::to_string(off));
    if (std::memcmp(buf.data(), data.data() + off, n) != 0) {
      Die("recall: bytes differ in [" + std::to_string(off) + ", " + std::to_string(off + n) + ")");
    }
    off += n;
    t.bytes += n;
  }
  t.total_s = Now() - t0;
  t.cpu_ours = cpu.Ours();
  t.cpu_azurite = cpu.Azurite();
  Check(h->Close(), "close after recall");
  auto attr = Must(st.GetAttr(node), "attr after recall");
  if (attr.state != store::FileState::kClean) Die("recall: the file is not resident afterwards");
  return t;
}

// One GET of `url` with curl into `out`; a file is then fdatasync'ed (counted) and removed.
Transfer CurlOnce(const std::string& url, uint64_t size, const std::string& out = "/dev/null") {
  Transfer t;
  double az0 = AzuriteCpuSeconds();
  double t0 = Now();
  Child c = RunChild({"/usr/bin/curl", "-s", "-S", "-o", out, "-w",
                      "%{http_code} %{time_starttransfer} %{time_total} %{size_download}", url});
  long code = 0;
  unsigned long long got = 0;
  if (c.exit_code != 0 ||
      std::sscanf(c.out.c_str(), "%ld %lf %lf %llu", &code, &t.ttfb_s, &t.total_s, &got) != 4) {
    Die("curl failed: " + c.out);
  }
  t.bytes = got;
  if (code != 200 || t.bytes != size) Die("curl: HTTP " + std::to_string(code) + ", " + c.out);
  if (out != "/dev/null") {
    int fd = ::open(out.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::fdatasync(fd) != 0) Die("fdatasync " + out);
    ::close(fd);
    // From curl's start of the transfer to the end of the fdatasync.
    t.total_s = Now() - t0 - (c.wall_s - t.total_s);
    fsys::remove(out);
  }
  t.cpu_azurite = AzuriteCpuSeconds() - az0;
  t.cpu_ours = c.cpu;
  return t;
}

// The recall's request pattern with curl: `part`-byte ranged GETs, `parallel` at a time, to
// /dev/null. Time: the whole curl run (no time to first byte).
Transfer CurlRanged(const std::string& url, uint64_t size, uint64_t part, int parallel) {
  std::vector<std::string> argv = {"/usr/bin/curl", "--parallel", "--parallel-max",
                                   std::to_string(parallel)};
  for (uint64_t off = 0; off < size; off += part) {
    if (off > 0) argv.push_back("--next");
    uint64_t end = std::min(size, off + part) - 1;
    for (std::string a : {"-s", "-S", "-f", "-o", "/dev/null", "-r"}) argv.push_back(a);
    argv.push_back(std::to_string(off) + "-" + std::to_string(end));
    argv.push_back(url);
  }
  Transfer t;
  double az0 = AzuriteCpuSeconds();
  Child c = RunChild(argv);
  if (c.exit_code != 0) Die("curl (ranged) failed");
  t.total_s = c.wall_s;
  t.bytes = size;
  t.cpu_azurite = AzuriteCpuSeconds() - az0;
  t.cpu_ours = c.cpu;
  return t;
}

// A read-only service SAS for blob `key` (az-cli computes it locally from the account key).
std::string MakeSas(const std::string& endpoint, const std::string& container,
                    const std::string& key, const std::string& home) {
  std::string conn = std::string("DefaultEndpointsProtocol=http;AccountName=") +
                     testing::Azurite::kAccount + ";AccountKey=" + testing::Azurite::kKey +
                     ";BlobEndpoint=" + endpoint + ";";
  Child c = RunChild({"/usr/bin/az", "storage", "blob", "generate-sas", "--container-name",
                      container, "--name", key, "--permissions", "r", "--expiry",
                      "2099-01-01T00:00Z", "--connection-string", conn, "-o", "tsv"},
                     {"HOME=" + home, "AZURE_CORE_COLLECT_TELEMETRY=false",
                      "AZURE_CORE_ONLY_SHOW_ERRORS=1", "AZURE_CORE_NO_COLOR=1"});
  std::string sas = c.out;
  while (!sas.empty() && (sas.back() == '\n' || sas.back() == '\r')) sas.pop_back();
  if (c.exit_code != 0 || sas.empty()) Die("az storage blob generate-sas failed");
  return sas;
}

RecallResult BenchRecall(const std::string& endpoint, const std::string& work, uint64_t bytes,
                         int rounds) {
  RecallResult res;
  std::fprintf(stderr, "recall: writing %llu MiB into the Store\n",
               static_cast<unsigned long long>(bytes / kMiB));
  std::vector<uint8_t> data = MakeData(bytes);
  auto st = OpenStore(work + "/recall-store", "tier");
  auto share = Must(st->GetShare("tier"), "share");
  store::NodeId node;
  {
    auto h = Must(st->Create(share.root, "big.bin", {}), "create");
    for (uint64_t off = 0; off < bytes; off += kReadBytes) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kReadBytes, bytes - off));
      Check(h->Write(off, {data.data() + off, n}), "write");
    }
    Check(h->Close(), "close");
    node = h->node();
  }
  const std::string container = "tier-recall";
  auto azure = Container(endpoint, container);
  auto target = [&](uint32_t) -> cloud::ObjectStore* { return azure.get(); };
  {
    std::fprintf(stderr, "recall: uploading\n");
    sync::Uploader up(*st, target, RealClock::Get(), sync::Uploader::Options{});
    double t0 = Now();
    do {  // the first pass queues the file
      auto pass = Must(up.RunOnce(), "upload");
      if (pass.failed > 0 || pass.conflicts > 0) Die("upload failed");
    } while (Must(st->PendingUploads(), "pending") > 0);
    res.upload_s = Now() - t0;
  }
  store::CloudCopy copy = Must(st->CloudCopyOf(node), "cloud copy");
  if (copy.part_size != 8 * kMiB ||
      copy.part_md5s.size() != (bytes + copy.part_size - 1) / copy.part_size * 16) {
    Die("the upload did not record 8 MiB part MD5s");
  }
  std::string sas = MakeSas(endpoint, container, copy.key, work);
  std::string url = endpoint + "/" + container + "/" + copy.key + "?" + sas;

  sync::Recaller recaller(target, RealClock::Get(), sync::Recaller::Options{});
  sync::Evictor evictor(*st, RealClock::Get(), sync::Evictor::Options{}, &recaller);
  st->SetCacheHooks(&evictor);
  bool dropped = true;
  for (int r = 0; r < rounds; ++r) {
    EvictOne(*st, share.id, node);
    dropped = DropCaches() && dropped;
    std::fprintf(stderr, "recall: round %d, recall\n", r + 1);
    res.recall.push_back(RecallOnce(*st, node, data));
    dropped = DropCaches() && dropped;
    std::fprintf(stderr, "recall: round %d, curl\n", r + 1);
    res.curl.push_back(CurlOnce(url, bytes));
    dropped = DropCaches() && dropped;
    res.ranged.push_back(CurlRanged(url, bytes, copy.part_size, 4));
    dropped = DropCaches() && dropped;
    res.file.push_back(CurlOnce(url, bytes, work + "/direct.bin"));
  }
  if (!dropped) std::fprintf(stderr, "warning: could not drop the page cache (not root?)\n");
  st->SetCacheHooks(nullptr);
  return res;
}

// ---------------------------------------------------------------------------------------------
// 2. Eviction rate against unlink.

struct EvictResult {
  size_t files = 0;
  double create_s = 0;
  double evict_s = 0;
  double evict_cpu = 0;
  double unlink_s = 0;
  double syncfs_s = 0;  // after the unlinks
};

EvictResult BenchEvict(const std::string& work, size_t files) {
  EvictResult res;
  res.files = files;
  std::vector<uint8_t> body = MakeData(kSmallBytes + files);
  auto st = OpenStore(work + "/evict-store", "ev");
  auto share = Must(st->GetShare("ev"), "share");
  std::fprintf(stderr, "evict: committing %zu files of 4 KiB\n", files);
  double t0 = Now();
  Parallel(files, kThreads, [&](size_t i) {
    char name[32];
    std::snprintf(name, sizeof name, "f%06zu", i);
    auto h = Must(st->Create(share.root, name, {}), "create");
    Check(h->Write(0, {body.data() + i, kSmallBytes}), "write");
    Check(h->Close(), "close");
  });
  res.create_s = Now() - t0;
  // Marked uploaded as the tests do: no cloud is involved in eviction.
  while (Must(st->EnqueueUploads("uploader", 10000), "enqueue") > 0) {
  }
  for (;;) {
    auto due = Must(st->DueUploads(INT64_MAX, 2000), "due");
    if (due.empty()) break;
    Parallel(due.size(), kThreads, [&](size_t i) {
      Check(st->FinishUpload(due[i], store::FileState::kClean, "k" + std::to_string(due[i].node),
                             "\"etag\"", ""),
            "finish upload");
    });
  }
  auto usage = Must(st->GetCacheUsage(share.id), "usage");
  if (usage.clean_bytes != files * kSmallBytes) Die("evict: not every file is clean");

  // The peer: the same number of 4 KiB files, laid out as the Store's backing files.
  std::string raw = work + "/unlink";
  std::vector<std::string> paths;
  for (size_t i = 0; i < files; ++i) {
    char p[64];
    std::snprintf(p, sizeof p, "/%02zx/%016zx", i & 0xff, i + 1);
    paths.push_back(raw + p);
  }
  for (size_t d = 0; d < 256; ++d) {
    char p[8];
    std::snprintf(p, sizeof p, "/%02zx", d);
    fsys::create_directories(raw + p);
  }
  for (size_t i = 0; i < files; ++i) {
    int fd = ::open(paths[i].c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, body.data() + i, kSmallBytes) != static_cast<ssize_t>(kSmallBytes)) {
      Die("raw file " + paths[i]);
    }
    ::close(fd);
  }
  ::sync();

  std::fprintf(stderr, "evict: evicting\n");
  sync::Evictor::Options eo;
  eo.box.high.bytes = 0;  // everything must go
  eo.box.low.bytes = 0;
  sync::Evictor evictor(*st, RealClock::Get(), eo, nullptr);
  CpuMeter cpu;
  t0 = Now();
  auto pass = Must(evictor.RunOnce(), "evictor pass");
  res.evict_s = Now() - t0;
  res.evict_cpu = cpu.Ours();
  if (pass.evicted != files) {
    Die("evict: " + std::to_string(pass.evicted) + " of " + std::to_string(files) + " evicted");
  }
  ::sync();
  t0 = Now();
  for (const auto& p : paths) {
    if (::unlink(p.c_str()) != 0) Die("unlink " + p);
  }
  res.unlink_s = Now() - t0;
  int dir = ::open(raw.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  t0 = Now();
  ::syncfs(dir);
  res.syncfs_s = Now() - t0;
  ::close(dir);
  return res;
}

// ---------------------------------------------------------------------------------------------
// 3. Refresh of a large container against a plain listing.

// A second box serving the Blob API (frontends/blob_api) over its own Store: an Azure Blob
// endpoint whose listing is paged by the Store's index, for a container of 100,000 objects
// (Azurite scans every blob of the account for each Put: see bench/RESULTS.md).
class BlobBox {
 public:
  static constexpr char kAccount[] = "cloudbox";
  // Base64 text (Shared Key decodes it).
  static constexpr char kSecret[] = "dGllcmluZy1iZW5jaC1jbG91ZC1ib3gtc2VjcmV0LWtleQ==";

  explicit BlobBox(const std::string& dir)
      : store_(OpenWithShare(dir)),
        objects_(*store_),
        api_(objects_, {{.user = "bench", .id = "bench", .secret = kSecret, .write = {"*"}}}, {}),
        http_({}, [this](frontends::http::Exchange& ex) { api_.Handle(ex); }) {
    Check(http_.Start(), "blob box server");
  }
  std::string endpoint() const {
    return "http://127.0.0.1:" + std::to_string(http_.port()) + "/" + kAccount;
  }

 private:
  // The account is a share of the box's Store (docs/blob_api.md).
  static std::unique_ptr<store::Store> OpenWithShare(const std::string& dir) {
    auto s = Must(store::Store::Open({.data_dir = dir}), "blob box store");
    Must(s->CreateShare(kAccount, store::ShareKind::kLocal), "blob box share");
    return s;
  }

  std::unique_ptr<store::Store> store_;
  frontends::objects::Objects objects_;
  frontends::blob_api::BlobApi api_;
  frontends::http::HttpServer http_;
};

struct RefreshResult {
  std::string target;
  size_t objects = 0;
  double create_s = 0;
  bool stopped_early = false;
  std::vector<double> list_s;
  double run1_s = 0, run2_s = 0;
  // CPU seconds: this process (with the Blob box's server when that is the target) + Azurite.
  double run1_cpu = 0, run1_azurite = 0, run2_cpu = 0, run2_azurite = 0, list_cpu = 0,
         list_azurite = 0;
  sync::Refresher::Pass pass1, pass2;
};

// Lists the whole container in pages of 1,000; returns the number of objects.
size_t ListAll(cloud::ObjectStore& target) {
  size_t n = 0;
  std::string token;
  do {
    auto page = Must(target.List("", token, 1000), "list");
    n += page.objects.size();
    token = page.next_token;
  } while (!token.empty());
  return n;
}

// Fills container "tier-refresh" of the account at `endpoint` with `objects` objects of 256
// bytes, from 8 threads (stopping after `budget_s`), then lists it, refreshes an empty cloud
// share from it twice, and lists it again.
RefreshResult BenchRefresh(const std::string& target, const std::string& endpoint,
                           const std::string& account, const std::string& key,
                           const std::string& dir, size_t objects, double budget_s) {
  RefreshResult res;
  res.target = target;
  auto azure = Must(cloud::azure_blob::AzureBlobStore::Open(
                        {endpoint, account, key, "", "tier-refresh", {}}, RealClock::Get()),
                    "azure");
  Status made_container = azure->CreateContainer();
  if (!made_container.ok() && made_container.code() != StatusCode::kAlreadyExists) {
    Check(made_container, "container on " + target);
  }
  std::vector<uint8_t> body = MakeData(256);
  std::fprintf(stderr, "refresh (%s): putting %zu objects\n", target.c_str(), objects);
  std::atomic<size_t> made{0};
  std::atomic<bool> stop{false};
  double t0 = Now();
  Parallel(objects, kThreads, [&](size_t i) {
    if (stop.load()) return;
    char name[32];
    std::snprintf(name, sizeof name, "d%03zu/o%06zu", i % 100, i);
    Must(azure->Put(name, body, {}), std::string("put ") + name);
    size_t m = ++made;
    if (m % 10000 == 0) std::fprintf(stderr, "refresh: %zu objects, %.0f s\n", m, Now() - t0);
    if (Now() - t0 > budget_s) stop = true;
  });
  res.create_s = Now() - t0;
  res.stopped_early = stop.load();
  res.objects = ListAll(*azure);
  if (res.objects != made.load()) Die("refresh: the listing does not hold every object");

  {
    CpuMeter cpu;
    t0 = Now();
    ListAll(*azure);
    res.list_s.push_back(Now() - t0);
    res.list_cpu = cpu.Ours();
    res.list_azurite = cpu.Azurite();
  }
  auto st = OpenStore(dir + "/store", "rf");
  sync::CopyLog log(dir + "/logs", RealClock::Get());
  sync::Refresher refresher(
      *st, [&](uint32_t) -> cloud::ObjectStore* { return azure.get(); }, RealClock::Get(),
      sync::Refresher::Options{}, &log);
  std::fprintf(stderr, "refresh (%s): first run\n", target.c_str());
  {
    CpuMeter cpu;
    t0 = Now();
    res.pass1 = Must(refresher.Run("rf", {}), "refresh 1");
    res.run1_s = Now() - t0;
    res.run1_cpu = cpu.Ours();
    res.run1_azurite = cpu.Azurite();
  }
  if (res.pass1.added != res.objects) Die("refresh: not every object became a stub");
  std::fprintf(stderr, "refresh (%s): second run\n", target.c_str());
  {
    CpuMeter cpu;
    t0 = Now();
    res.pass2 = Must(refresher.Run("rf", {}), "refresh 2");
    res.run2_s = Now() - t0;
    res.run2_cpu = cpu.Ours();
    res.run2_azurite = cpu.Azurite();
  }
  if (res.pass2.unchanged != res.objects) Die("refresh: the second run changed something");
  t0 = Now();
  ListAll(*azure);
  res.list_s.push_back(Now() - t0);
  return res;
}

}  // namespace
}  // namespace fieldstack

int main(int argc, char** argv) {
  using namespace fieldstack;
  uint64_t recall_mib = 1024;
  int rounds = 2;
  size_t evict_files = 20000, azurite_objects = 20000, box_objects = 100000;
  double refresh_budget_s = 300;
  std::string only;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--recall-mib")
      recall_mib = std::stoull(argv[i + 1]);
    else if (a == "--rounds")
      rounds = std::stoi(argv[i + 1]);
    else if (a == "--evict-files")
      evict_files = std::stoul(argv[i + 1]);
    else if (a == "--azurite-objects")
      azurite_objects = std::stoul(argv[i + 1]);
    else if (a == "--box-objects")
      box_objects = std::stoul(argv[i + 1]);
    else if (a == "--refresh-budget-s")
      refresh_budget_s = std::stod(argv[i + 1]);
    else if (a == "--only")
      only = argv[i + 1];
    else
      Die("unknown argument " + a);
  }
  testing::TempDir work;
  auto& azurite = testing::Azurite::Shared();
  if (azurite.endpoint().empty()) Die("azurite: " + azurite.error());
  std::printf("Machine: %s. Azurite %s (npm) on the same cores.\n\n", Machine(work.path()).c_str(),
              AzuriteVersion().c_str());
  std::fflush(stdout);

  RecallResult rc;
  EvictResult ev;
  std::vector<RefreshResult> refreshes;
  const bool all = only.empty();
  if (all || only == "recall")
    rc = BenchRecall(azurite.endpoint(), work.path(), recall_mib * kMiB, rounds);
  if (all || only == "evict") ev = BenchEvict(work.path(), evict_files);
  if ((all || only == "refresh") && azurite_objects > 0) {
    refreshes.push_back(BenchRefresh("Azurite", azurite.endpoint(), testing::Azurite::kAccount,
                                     testing::Azurite::kKey, work / "refresh-azurite",
                                     azurite_objects, refresh_budget_s));
  }
  if ((all || only == "refresh") && box_objects > 0) {
    BlobBox box(work / "blob-box");
    refreshes.push_back(BenchRefresh("Blob API box", box.endpoint(), BlobBox::kAccount,
                                     BlobBox::kSecret, work / "refresh-box", box_objects,
                                     refresh_budget_s));
  }

  std::printf("| measure | ours | peer | ratio ours/peer |\n|---|---|---|---|\n");
  if (!rc.recall.empty()) {
    // "best (run 1, run 2, ...)": the highest throughput, the lowest time to first byte.
    auto best = [](const std::vector<Transfer>& v, bool ttfb) {
      double b = ttfb ? 1e18 : 0;
      std::string runs;
      for (const auto& t : v) {
        double x = ttfb ? t.ttfb_s * 1e3 : t.MBps();
        b = ttfb ? std::min(b, x) : std::max(b, x);
        char buf[32];
        std::snprintf(buf, sizeof buf, "%s%.0f", runs.empty() ? "" : ", ", x);
        runs += buf;
      }
      char out[160];
      std::snprintf(out, sizeof out, "%.0f (%s)", b, runs.c_str());
      return std::pair{b, std::string(out)};
    };
    const auto mib = static_cast<unsigned long long>(recall_mib);
    auto [rt, rt_s] = best(rc.recall, true);
    auto [ct, ct_s] = best(rc.curl, true);
    std::printf(
        "| recall of %llu MiB: time to first byte, ms, best (runs) | %s | curl GET: %s | "
        "%.1f |\n",
        mib, rt_s.c_str(), ct_s.c_str(), rt / ct);
    auto [r, r_s] = best(rc.recall, false);
    const std::pair<const char*, const std::vector<Transfer>*> peers[] = {
        {"curl GET to /dev/null", &rc.curl},
        {"curl, the recall's requests (8 MiB ranges, 4 at a time)", &rc.ranged},
        {"curl GET to a file, then fdatasync", &rc.file}};
    for (const auto& [name, v] : peers) {
      auto [c, c_s] = best(*v, false);
      std::printf("| recall of %llu MiB: MB/s, best (runs) | %s | %s: %s | %s%.2f%s |\n", mib,
                  r_s.c_str(), name, c_s.c_str(), v == &rc.curl ? "**" : "", r / c,
                  v == &rc.curl ? "**" : "");
    }
    auto cpu = [](const std::vector<Transfer>& v) {
      std::vector<double> own, az;
      for (const auto& t : v) {
        own.push_back(t.cpu_ours);
        az.push_back(t.cpu_azurite);
      }
      char out[64];
      std::snprintf(out, sizeof out, "%.2f + %.2f", Median(own), Median(az));
      return std::string(out);
    };
    std::printf(
        "| CPU s, client + Azurite (medians): recall; curl GET; curl ranges; curl to file "
        "| %s | %s; %s; %s | - |\n",
        cpu(rc.recall).c_str(), cpu(rc.curl).c_str(), cpu(rc.ranged).c_str(), cpu(rc.file).c_str());
  }
  if (ev.files > 0) {
    double e = static_cast<double>(ev.files) / ev.evict_s;
    double u = static_cast<double>(ev.files) / ev.unlink_s;
    double us = static_cast<double>(ev.files) / (ev.unlink_s + ev.syncfs_s);
    std::printf(
        "| eviction of %zu x 4 KiB, files/s (Evictor::RunOnce, %.2f s, %.2f s CPU) | %.0f | unlink "
        "%.0f | %.2f |\n",
        ev.files, ev.evict_s, ev.evict_cpu, e, u, e / u);
    std::printf("| eviction, files/s, against unlink + syncfs | %.0f | %.0f | %.2f |\n", e, us,
                e / us);
  }
  for (const RefreshResult& rf : refreshes) {
    double l = *std::min_element(rf.list_s.begin(), rf.list_s.end());  // the faster listing
    double n = static_cast<double>(rf.objects);
    std::printf(
        "| refresh of %zu objects on %s, first run: s (objects/s) | %.1f (%.0f) | list %.1f "
        "(%.0f) | %.2f |\n",
        rf.objects, rf.target.c_str(), rf.run1_s, n / rf.run1_s, l, n / l, rf.run1_s / l);
    std::printf(
        "| refresh of %zu objects on %s, second run (nothing changed): s (objects/s) | %.1f "
        "(%.0f) | list %.1f (%.0f) | %.2f |\n",
        rf.objects, rf.target.c_str(), rf.run2_s, n / rf.run2_s, l, n / l, rf.run2_s / l);
    std::printf(
        "| refresh on %s: CPU s, this process + Azurite (run 1; run 2 / list) | %.1f + %.1f; "
        "%.1f + %.1f | %.1f + %.1f | - |\n",
        rf.target.c_str(), rf.run1_cpu, rf.run1_azurite, rf.run2_cpu, rf.run2_azurite, rf.list_cpu,
        rf.list_azurite);
  }
  std::printf("\n");
  if (!rc.recall.empty()) {
    std::printf("Recall: upload of the file before the runs took %.1f s (%.0f MB/s).\n",
                rc.upload_s, static_cast<double>(recall_mib * kMiB) / 1e6 / rc.upload_s);
  }
  if (ev.files > 0) {
    std::printf(
        "Eviction: committing the %zu files took %.1f s (%.0f files/s, 8 threads); unlink "
        "%.2f s, then syncfs %.2f s.\n",
        ev.files, ev.create_s, static_cast<double>(ev.files) / ev.create_s, ev.unlink_s,
        ev.syncfs_s);
  }
  for (const RefreshResult& rf : refreshes) {
    std::printf(
        "Refresh (%s): putting %zu objects took %.0f s (%.0f/s, 8 threads)%s; listings %.1f s "
        "before and %.1f s after the runs. Run 1: %zu added; run 2: %zu unchanged.\n",
        rf.target.c_str(), rf.objects, rf.create_s, static_cast<double>(rf.objects) / rf.create_s,
        rf.stopped_early ? " (stopped early by --refresh-budget-s)" : "", rf.list_s[0],
        rf.list_s.back(), rf.pass1.added, rf.pass2.unchanged);
  }
  return 0;
}
