// bench/endpoints: the box's object endpoints against the raw disk and against Azurite, in one
// run (bench/RESULTS.md). For each target: PUT and GET of one 1 GiB object over one connection,
// and PUT and GET of 10,000 objects of 4 KiB over several keep-alive connections.
//
// Targets, all on loopback and on the same two cores as this process:
//  - raw disk: the same filesystem as the Store (see RawLarge and RawSmall for the method);
//  - S3 (ours): S3Api on an HttpServer, plain HTTP, over an encrypted Store (default chunks);
//  - S3 (ours, TLS): the same S3Api on a second HttpServer with the box's self-signed
//    certificate (ECDSA P-256), which the client verifies;
//  - Blob (ours): BlobApi on a third HttpServer over the same Store and share;
//  - Azurite (npm, test/support/azurite.h), the one Azure Blob peer at hand, with fewer small
//    objects (it keeps its index in memory and is slow; --azurite-small).
//
// The client is ours: libcurl easy handles (one per thread, keep-alive), bodies streamed from
// and to memory. S3 requests are signed with cloud::s3::SignRequest and UNSIGNED-PAYLOAD (no
// SHA-256 of the body on either side, as S3 clients commonly do over TLS); the server still
// computes the MD5 of every body for its ETag. Blob requests use Shared Key (the string-to-sign of
// cloud::azure_blob::AzureBlobStore) and Put Blob, one request per object. No Content-MD5.
// GETs are checked: every small object whole, the large one by 256 bytes at the start of
// every piece curl hands over (at their offsets), and its length.
//
// The page cache is dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before every GET phase
// of every target, the raw disk included. Rounds are interleaved (raw, S3, S3 TLS, Blob,
// Azurite); each round starts with an unmeasured 1 GiB write, because the first large write
// after a pause runs at a fraction of the speed on the VM's disk; medians are reported, with
// the CPU seconds of each phase (this process: client and servers; and its child, Azurite).
//
// Usage: endpoints_bench [--large-mib 1024] [--small 10000] [--azurite-small 2000]
//                        [--conns 8] [--rounds 3] [--no-azurite] [--no-tls]
// Runs as root (to drop caches); data under $TMPDIR or /tmp.

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
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
#include "cloud/http_client.h"
#include "cloud/s3/sigv4.h"
#include "common/clock.h"
#include "crypto/certificate.h"
#include "crypto/hash.h"
#include "frontends/blob_api/blob_api.h"
#include "frontends/http/server.h"
#include "frontends/objects/objects.h"
#include "frontends/s3_api/s3_api.h"
#include "platform/file.h"
#include "store/store.h"
#include "test/support/azurite.h"
#include "test/support/temp_dir.h"

namespace fieldstack {
namespace {

using bench::AzuriteVersion;
using bench::ChildrenCpuSeconds;
using bench::Machine;
using bench::MakeData;
using bench::Median;

namespace fsys = std::filesystem;

constexpr uint64_t kMiB = 1 << 20;
constexpr size_t kSmallBytes = 4096;
constexpr char kRfc1123[] = "%a, %d %b %Y %H:%M:%S GMT";
constexpr char kBlobVersion[] = "2021-08-06";
constexpr char kAccessKeyId[] = "AKIABENCH";
// Box secrets are base64 text (Blob Shared Key decodes them; SigV4 uses them as given).
constexpr char kSecret[] = "YmVuY2gtc2VjcmV0LWZvci10aGUtZW5kcG9pbnRzLWJlbmNo";

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "endpoints_bench: %s\n", what.c_str());
  std::exit(1);
}

void Check(const Status& s, const char* what) {
  if (!s.ok()) Die(std::string(what) + ": " + s.ToString());
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double OwnCpuSeconds() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

// This process and its children (the servers and the client, Azurite when it runs).
double CpuSeconds() { return OwnCpuSeconds() + ChildrenCpuSeconds(); }

std::string Range(std::vector<double> v) {
  if (v.size() < 2) return "";
  std::sort(v.begin(), v.end());
  char buf[64];
  std::snprintf(buf, sizeof buf, " (%.0f-%.0f)", v.front(), v.back());
  return buf;
}

// Small object i: 4 KiB of the data at a stride, so no two are equal.
std::span<const uint8_t> SmallBody(const std::vector<uint8_t>& data, size_t i) {
  uint64_t off = (i * 4099 * 8) % (data.size() - kSmallBytes);
  return {data.data() + off, kSmallBytes};
}

void DropCaches() {
  ::sync();
  std::ofstream f("/proc/sys/vm/drop_caches");
  f << "3\n";
  f.flush();
  if (!f) Die("cannot drop caches (run as root)");
}

// ---------------------------------------------------------------------------------------------
// The machine.

// ---------------------------------------------------------------------------------------------
// The client: one request on an easy handle.

// Where a target is and how to sign for it.
struct Target {
  std::string name;
  bool s3 = false;      // S3 (SigV4) or Azure Blob (Shared Key)
  std::string base;     // up to the bucket or container, no trailing '/'
  std::string account;  // Blob: the account in the Shared Key header
  std::string key_raw;  // Blob: the decoded account key
  std::string ca_file;  // TLS: the certificate to trust
  size_t small = 0;     // small objects per round
};

// The body of a GET, checked against what it should be.
struct Sink {
  std::span<const uint8_t> want;
  size_t check_bytes = 0;  // of each piece curl hands over, from its start
  uint64_t got = 0;
  bool bad = false;
  std::string error_body;  // of a failed request
};

size_t ReadFromSpan(char* out, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::pair<std::span<const uint8_t>, uint64_t>*>(user);
  size_t len = static_cast<size_t>(std::min<uint64_t>(size * n, body->first.size() - body->second));
  std::memcpy(out, body->first.data() + body->second, len);
  body->second += len;
  return len;
}

size_t WriteToSink(char* in, size_t size, size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  size_t len = size * n;
  if (sink->error_body.size() < 512) {  // the start of the body, for an error message
    sink->error_body.append(in, std::min<size_t>(len, 512 - sink->error_body.size()));
  }
  if (!sink->want.empty()) {
    if (sink->got + len > sink->want.size()) {
      sink->bad = true;
    } else {
      size_t c = std::min(len, sink->check_bytes);
      if (std::memcmp(in, sink->want.data() + sink->got, c) != 0) sink->bad = true;
    }
  }
  sink->got += len;
  return len;
}

// Sends `method` for `key` of `t` on `h`: a PUT with `body`, or a GET whose body goes to
// `sink`. Dies on a transport failure or an unexpected status (a benchmark that loses data
// measures nothing).
void Perform(CURL* h, const Target& t, const char* method, const std::string& key,
             std::span<const uint8_t> body, Sink* sink) {
  cloud::HttpRequest req{
      method, t.base + (key.empty() ? "" : "/" + cloud::UrlEncodePath(key)), {}, body};
  bool put = std::strcmp(method, "PUT") == 0;
  if (key.empty()) req.url += t.s3 ? "" : "?restype=container";
  int64_t now = RealClock::Get().NowUnixNanos();
  if (t.s3) {
    cloud::s3::SignRequest(req, {kAccessKeyId, kSecret, ""}, "us-east-1", now,
                           cloud::s3::kUnsignedPayload);
  } else {
    if (put && !key.empty()) req.headers.emplace_back("x-ms-blob-type", "BlockBlob");
    req.headers.emplace_back("x-ms-date", FormatUtc(now, kRfc1123));
    req.headers.emplace_back("x-ms-version", kBlobVersion);
    std::string sig = crypto::Base64(crypto::HmacSha256(
        t.key_raw, cloud::azure_blob::AzureBlobStore::StringToSign(req, t.account)));
    req.headers.emplace_back("Authorization", "SharedKey " + t.account + ":" + sig);
  }
  curl_easy_reset(h);  // keeps the connection
  curl_slist* headers = nullptr;
  for (const auto& [k, v] : req.headers)
    headers = curl_slist_append(headers, (k + ": " + v).c_str());
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 1L << 20);
  curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 1L << 20);
  if (!t.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, t.ca_file.c_str());
  std::pair<std::span<const uint8_t>, uint64_t> upload{body, 0};
  Sink discard;
  if (sink == nullptr) sink = &discard;
  if (put) {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, ReadFromSpan);
    curl_easy_setopt(h, CURLOPT_READDATA, &upload);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body.size()));
  } else if (std::strcmp(method, "GET") != 0) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  }
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, WriteToSink);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
  CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(headers);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  std::string what = t.name + " " + method + " " + (key.empty() ? "(container)" : key);
  if (rc != CURLE_OK) Die(what + ": " + curl_easy_strerror(rc));
  bool ok = status >= 200 && status < 300;
  if (key.empty() && status == 409) ok = true;  // the container exists
  if (!ok) {
    Die(what + ": HTTP " + std::to_string(status) + " " + sink->error_body);
  }
  if (!sink->want.empty() && (sink->bad || sink->got != sink->want.size())) {
    Die(what + ": the body read back differs from what was written (" + std::to_string(sink->got) +
        " of " + std::to_string(sink->want.size()) + " bytes)");
  }
}

struct Handle {
  Handle() : h(curl_easy_init()) {}
  ~Handle() { curl_easy_cleanup(h); }
  CURL* h;
};

// Runs fn(i) for i in [0, count) on `conns` threads, each with its own handle; wall seconds.
double OnConnections(size_t count, int conns, const std::function<void(CURL*, size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  double t0 = Now();
  for (int c = 0; c < conns; ++c) {
    pool.emplace_back([&] {
      Handle h;
      for (size_t i; (i = next.fetch_add(1)) < count;) fn(h.h, i);
    });
  }
  for (auto& th : pool) th.join();
  return Now() - t0;
}

std::string SmallKey(int round, size_t i) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "r%d/small/o%05zu", round, i);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Measures.

struct Results {
  std::vector<double> put_mb_s, get_mb_s, put_obj_s, get_obj_s;
  std::vector<double> put2_mb_s, put2_obj_s;  // raw disk: the second method
  std::vector<double> cpu_put, cpu_get, cpu_small_put, cpu_small_get;  // this process, seconds
};

void Endpoint(const Target& t, const std::vector<uint8_t>& data, int round, int conns,
              Results& res) {
  const std::string big = "r" + std::to_string(round) + "/big.bin";
  Handle one;
  std::fprintf(stderr, "round %d %s: large PUT\n", round, t.name.c_str());
  double c0 = CpuSeconds(), t0 = Now();
  Perform(one.h, t, "PUT", big, data, nullptr);
  double secs = Now() - t0;
  res.put_mb_s.push_back(data.size() / secs / 1e6);
  res.cpu_put.push_back(CpuSeconds() - c0);
  DropCaches();
  Handle fresh;  // not the PUT's connection, whose server thread may still be finishing
  Sink sink{data, 256};
  c0 = CpuSeconds();
  t0 = Now();
  Perform(fresh.h, t, "GET", big, {}, &sink);
  secs = Now() - t0;
  res.get_mb_s.push_back(data.size() / secs / 1e6);
  res.cpu_get.push_back(CpuSeconds() - c0);
  Perform(fresh.h, t, "DELETE", big, {}, nullptr);  // untimed: keeps the disk from filling

  std::fprintf(stderr, "round %d %s: small PUTs\n", round, t.name.c_str());
  c0 = CpuSeconds();
  secs = OnConnections(t.small, conns, [&](CURL* h, size_t i) {
    Perform(h, t, "PUT", SmallKey(round, i), SmallBody(data, i), nullptr);
  });
  res.put_obj_s.push_back(t.small / secs);
  res.cpu_small_put.push_back(CpuSeconds() - c0);
  DropCaches();
  c0 = CpuSeconds();
  secs = OnConnections(t.small, conns, [&](CURL* h, size_t i) {
    Sink s{SmallBody(data, i), kSmallBytes};
    Perform(h, t, "GET", SmallKey(round, i), {}, &s);
  });
  res.get_obj_s.push_back(t.small / secs);
  res.cpu_small_get.push_back(CpuSeconds() - c0);
  std::fprintf(stderr,
               "round %d %-15s PUT %5.0f MB/s (%.1f s CPU), GET %5.0f MB/s (%.1f s CPU), "
               "%zu x 4 KiB: PUT %5.0f/s (%.1f s CPU), GET %5.0f/s (%.1f s CPU)\n",
               round, t.name.c_str(), res.put_mb_s.back(), res.cpu_put.back(), res.get_mb_s.back(),
               res.cpu_get.back(), t.small, res.put_obj_s.back(), res.cpu_small_put.back(),
               res.get_obj_s.back(), res.cpu_small_get.back());
}

// Writes `data` to `path` in 1 MiB pwrites, then one fdatasync; with `streaming`, writeback is
// started every 8 MiB (sync_file_range) as the Store does. MB/s.
double RawWrite(const std::string& path, const std::vector<uint8_t>& data, bool streaming) {
  auto f = platform::File::Open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  Check(f.status(), "open raw");
  double t0 = Now();
  for (uint64_t off = 0; off < data.size(); off += kMiB) {
    Check(f->PWrite(off, {data.data() + off, std::min<uint64_t>(kMiB, data.size() - off)}),
          "raw write");
    if (streaming && (off + kMiB) % (8 * kMiB) == 0) {
      ::sync_file_range(f->fd(), 0, 0, SYNC_FILE_RANGE_WRITE);
    }
  }
  Check(f->DataSync(), "raw fdatasync");
  return data.size() / (Now() - t0) / 1e6;
}

// The raw disk, large: the faster of the two ways of writing (put_mb_s is write + one
// fdatasync, put2_mb_s with writeback started every 8 MiB), then a cold read in 1 MiB preads.
void RawLarge(const std::string& dir, const std::vector<uint8_t>& data, Results& res) {
  std::string path = dir + "/raw.bin";
  res.put_mb_s.push_back(RawWrite(path, data, false));
  res.put2_mb_s.push_back(RawWrite(path, data, true));
  DropCaches();
  auto f = platform::File::Open(path, O_RDONLY);
  Check(f.status(), "open raw");
  std::vector<uint8_t> buf(kMiB);
  double t0 = Now();
  for (uint64_t off = 0; off < data.size(); off += kMiB) {
    auto n = f->PRead(off, buf);
    Check(n.status(), "raw read");
    if (*n != std::min<uint64_t>(kMiB, data.size() - off) ||
        std::memcmp(buf.data(), data.data() + off, 256) != 0) {
      Die("raw read: the bytes differ");
    }
  }
  res.get_mb_s.push_back(data.size() / (Now() - t0) / 1e6);
  fsys::remove(path);
}

// The raw disk, small, on `conns` threads in one directory: put_obj_s creates each file, writes
// 4 KiB, fdatasyncs and closes it (each file's data durable before the next, as a PUT's is
// before its reply), then one fsync of the directory; put2_obj_s only creates, writes and closes
// each, then one syncfs. GET: cold, open + read + close of each file of the first set. The
// files are left in `dir`.
void RawSmall(const std::string& dir, const std::vector<uint8_t>& data, size_t count, int conns,
              Results& res) {
  for (bool each : {true, false}) {
    std::string d = dir + (each ? "/small-fsync" : "/small-syncfs");
    fsys::create_directories(d);
    double t0 = Now();
    OnConnections(count, conns, [&](CURL*, size_t i) {
      std::string p = d + "/o" + std::to_string(i);
      int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      auto b = SmallBody(data, i);
      if (fd < 0 || ::write(fd, b.data(), b.size()) != static_cast<ssize_t>(b.size()) ||
          (each && ::fdatasync(fd) != 0) || ::close(fd) != 0) {
        Die("raw small write " + p);
      }
    });
    int dfd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd < 0 || (each ? ::fsync(dfd) : ::syncfs(dfd)) != 0) Die("raw dir sync");
    ::close(dfd);
    (each ? res.put_obj_s : res.put2_obj_s).push_back(count / (Now() - t0));
  }
  DropCaches();
  double secs = OnConnections(count, conns, [&](CURL*, size_t i) {
    std::string p = dir + "/small-fsync/o" + std::to_string(i);
    uint8_t buf[kSmallBytes + 1];
    int fd = ::open(p.c_str(), O_RDONLY);
    auto want = SmallBody(data, i);
    if (fd < 0 || ::read(fd, buf, sizeof buf) != static_cast<ssize_t>(kSmallBytes) ||
        std::memcmp(buf, want.data(), kSmallBytes) != 0) {
      Die("raw small read " + p);
    }
    ::close(fd);
  });
  res.get_obj_s.push_back(count / secs);
  // The files stay until the end of the run: deleting 20,000 inodes here would make ext4 scan
  // past them (recently_deleted) in every file the next target creates.
}

}  // namespace
}  // namespace fieldstack

int main(int argc, char** argv) {
  using namespace fieldstack;
  uint64_t large_mib = 1024;
  size_t small = 10000, azurite_small = 2000;
  int conns = 8, rounds = 3;
  bool azurite_on = true, tls_on = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] {
      if (i + 1 >= argc) Die(a + " needs a value");
      return std::string(argv[++i]);
    };
    if (a == "--large-mib") {
      large_mib = std::stoull(next());
    } else if (a == "--small") {
      small = std::stoul(next());
    } else if (a == "--azurite-small") {
      azurite_small = std::stoul(next());
    } else if (a == "--conns") {
      conns = std::stoi(next());
    } else if (a == "--rounds") {
      rounds = std::stoi(next());
    } else if (a == "--no-azurite") {
      azurite_on = false;
    } else if (a == "--no-tls") {
      tls_on = false;
    } else {
      Die("unknown argument " + a);
    }
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  testing::TempDir work;
  const std::string dir = work.path();
  std::fprintf(stderr, "endpoints_bench: data in %s; generating %llu MiB\n", dir.c_str(),
               static_cast<unsigned long long>(large_mib));
  const std::vector<uint8_t> data = MakeData(large_mib * kMiB);

  // The box: one encrypted Store, share "bench", its S3 and Blob APIs on loopback.
  auto opened = store::Store::Open({.data_dir = dir + "/store"});
  Check(opened.status(), "open store");
  store::Store& st = **opened;
  Check(st.CreateShare("bench", store::ShareKind::kLocal).status(), "create share");
  frontends::objects::Objects objects(st);
  std::vector<frontends::objects::AccessKey> keys = {
      {.user = "bench", .id = kAccessKeyId, .secret = kSecret, .read = {}, .write = {"*"}}};
  frontends::s3_api::S3Api s3(objects, keys, {});
  frontends::blob_api::BlobApi blob(objects, keys, {});
  frontends::http::HttpServer s3_http({}, [&](frontends::http::Exchange& ex) { s3.Handle(ex); });
  Check(s3_http.Start(), "start S3 server");
  frontends::http::ServerOptions tls_options;
  tls_options.tls_cert_file = dir + "/box.crt";
  tls_options.tls_key_file = dir + "/box.key";
  Check(crypto::EnsureSelfSignedCertificate(tls_options.tls_cert_file, tls_options.tls_key_file,
                                            {"127.0.0.1"}),
        "certificate");
  frontends::http::HttpServer s3_tls(tls_options,
                                     [&](frontends::http::Exchange& ex) { s3.Handle(ex); });
  Check(s3_tls.Start(), "start S3 TLS server");
  frontends::http::HttpServer blob_http({},
                                        [&](frontends::http::Exchange& ex) { blob.Handle(ex); });
  Check(blob_http.Start(), "start Blob server");

  std::vector<Target> targets;
  targets.push_back({.name = "S3 (ours)",
                     .s3 = true,
                     .base = "http://127.0.0.1:" + std::to_string(s3_http.port()) + "/bench",
                     .small = small});
  if (tls_on) {
    targets.push_back({.name = "S3 (ours, TLS)",
                       .s3 = true,
                       .base = "https://127.0.0.1:" + std::to_string(s3_tls.port()) + "/bench",
                       .ca_file = tls_options.tls_cert_file,
                       .small = small});
  }
  targets.push_back(
      {.name = "Blob (ours)",
       .s3 = false,
       .base = "http://127.0.0.1:" + std::to_string(blob_http.port()) + "/bench/objects",
       .account = "bench",
       .key_raw = crypto::Base64Decode(kSecret),
       .small = small});
  std::string azurite_version;
  if (azurite_on) {
    auto& az = testing::Azurite::Shared();
    if (az.endpoint().empty()) Die("azurite: " + az.error());
    azurite_version = AzuriteVersion();
    targets.push_back({.name = "Azurite " + azurite_version,
                       .s3 = false,
                       .base = az.endpoint() + "/bench",
                       .account = testing::Azurite::kAccount,
                       .key_raw = crypto::Base64Decode(testing::Azurite::kKey),
                       .small = azurite_small});
  }
  for (const Target& t : targets) {
    if (!t.s3) {
      Handle h;
      Perform(h.h, t, "PUT", "", {}, nullptr);  // the container
    }
  }

  Results raw;
  std::map<std::string, Results> res;
  for (int r = 1; r <= rounds; ++r) {
    // An unmeasured large write first (see the top of the file).
    RawWrite(dir + "/warmup.bin", data, false);
    fsys::remove(dir + "/warmup.bin");
    RawLarge(dir, data, raw);
    RawSmall(dir + "/raw-r" + std::to_string(r), data, small, conns, raw);
    std::fprintf(stderr,
                 "round %d raw disk        write %5.0f MB/s (streaming %.0f), read %5.0f MB/s, "
                 "%zu x 4 KiB: fdatasync each %5.0f/s, syncfs once %5.0f/s, read %5.0f/s\n",
                 r, raw.put_mb_s.back(), raw.put2_mb_s.back(), raw.get_mb_s.back(), small,
                 raw.put_obj_s.back(), raw.put2_obj_s.back(), raw.get_obj_s.back());
    for (const Target& t : targets) Endpoint(t, data, r, conns, res[t.name]);
  }

  // The table.
  const std::string size = large_mib % 1024 == 0 ? std::to_string(large_mib / 1024) + " GiB"
                                                 : std::to_string(large_mib) + " MiB";
  double raw_w = std::max(Median(raw.put_mb_s), Median(raw.put2_mb_s));
  double raw_r = Median(raw.get_mb_s), raw_p = Median(raw.put_obj_s), raw_g = Median(raw.get_obj_s);
  std::printf("\nMachine: %s.\n", Machine(dir).c_str());
  std::printf(
      "One %s object over 1 connection; %zu objects of 4 KiB over %d connections (Azurite: "
      "%zu). Medians of %d rounds (range); x raw = ratio to the raw disk row marked *.\n\n",
      size.c_str(), small, conns, azurite_small, rounds);
  std::printf(
      "| target | PUT %s, MB/s | x raw | GET %s (cold), MB/s | x raw | PUT 4 KiB, objects/s "
      "| x raw | GET 4 KiB (cold), objects/s | x raw |\n|---|---|---|---|---|---|---|---|---|\n",
      size.c_str(), size.c_str());
  std::printf(
      "| raw disk: 1 MiB pwrites + one fdatasync; files: write + fdatasync each | %.0f%s%s "
      "| - | %.0f%s * | - | %.0f%s * | - | %.0f%s * | - |\n",
      Median(raw.put_mb_s), Range(raw.put_mb_s).c_str(), raw_w == Median(raw.put_mb_s) ? " *" : "",
      raw_r, Range(raw.get_mb_s).c_str(), raw_p, Range(raw.put_obj_s).c_str(), raw_g,
      Range(raw.get_obj_s).c_str());
  std::printf(
      "| raw disk: writeback every 8 MiB + fdatasync; files: write, one syncfs | %.0f%s%s | - | "
      "- | - | %.0f%s | - | - | - |\n",
      Median(raw.put2_mb_s), Range(raw.put2_mb_s).c_str(),
      raw_w == Median(raw.put2_mb_s) && raw_w != Median(raw.put_mb_s) ? " *" : "",
      Median(raw.put2_obj_s), Range(raw.put2_obj_s).c_str());
  for (const Target& t : targets) {
    const Results& x = res[t.name];
    double pw = Median(x.put_mb_s), gr = Median(x.get_mb_s), ps = Median(x.put_obj_s),
           gs = Median(x.get_obj_s);
    std::printf("| %s | %.0f%s | %.2f | %.0f%s | %.2f | %.0f%s | %.2f | %.0f%s | %.2f |\n",
                t.name.c_str(), pw, Range(x.put_mb_s).c_str(), pw / raw_w, gr,
                Range(x.get_mb_s).c_str(), gr / raw_r, ps, Range(x.put_obj_s).c_str(), ps / raw_p,
                gs, Range(x.get_obj_s).c_str(), gs / raw_g);
  }
  std::printf(
      "\nCPU seconds of the client and the server together (this process, and Azurite's "
      "node process for its row), medians:\n\n| target | PUT %s | GET %s | PUT 4 KiB x N | "
      "GET 4 KiB x N |\n|---|---|---|---|---|\n",
      size.c_str(), size.c_str());
  for (const Target& t : targets) {
    const Results& x = res[t.name];
    std::printf("| %s | %.2f | %.2f | %.2f | %.2f |\n", t.name.c_str(), Median(x.cpu_put),
                Median(x.cpu_get), Median(x.cpu_small_put), Median(x.cpu_small_get));
  }
  const Results& ours = res["S3 (ours)"];
  std::printf(
      "\nGoals: S3 PUT of %s, encryption on: %.2f x raw disk write (goal 0.8: %s); "
      "S3 PUTs of 4 KiB: %.0f/s (goal 3,000: %s).\n",
      size.c_str(), Median(ours.put_mb_s) / raw_w,
      Median(ours.put_mb_s) / raw_w >= 0.8 ? "met" : "missed", Median(ours.put_obj_s),
      Median(ours.put_obj_s) >= 3000 ? "met" : "missed");
  return 0;
}
