#include "management/diagnostics.h"

// Each check turns what it measured into a CheckResult whose detail carries the numbers and
// whose advice says what to do on warn or fail. Checks never throw and never return an error:
// an environment they cannot read is itself a finding (fail, or warn where the spec says so).
// Durations come from the steady clock (RunChecks); the wall clock comes from the injected
// Clock where a check compares times (certificates, time skew).

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <random>
#include <span>

#include "platform/file.h"

namespace fieldstack::management {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr int64_t kNanosPerSecond = 1'000'000'000;

int64_t MillisSince(SteadyClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count();
}

CheckResult MakeResult(CheckStatus status, std::string detail, std::string advice = "") {
  CheckResult r;
  r.status = status;
  r.detail = std::move(detail);
  if (status != CheckStatus::kPass) r.advice = std::move(advice);
  return r;
}

CheckStatus Worse(CheckStatus a, CheckStatus b) { return a > b ? a : b; }

// Reads a /proc or /sys file, whose size stat reports as 0 or 4096 whatever it holds.
Result<std::string> ReadPseudoFile(const std::string& path) {
  FS_ASSIGN_OR_RETURN(platform::File f, platform::File::Open(path, O_RDONLY));
  std::string out;
  char buf[4096];
  while (out.size() < (1 << 20)) {
    ssize_t n = ::read(f.fd(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read " + path);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

bool IsIpAddress(const std::string& s) {
  unsigned char b[16];
  return inet_pton(AF_INET, s.c_str(), b) == 1 || inet_pton(AF_INET6, s.c_str(), b) == 1;
}

// --- disk space ------------------------------------------------------------------------------

// Free space: warn under 15 % or 10 GiB, fail under 5 % or 1 GiB (whichever trips first: a big
// volume warns by percent, a small one by bytes). Inodes: the same percentages, no absolute
// floor; file systems that report no inode count (btrfs) skip it.
constexpr double kSpaceWarnFraction = 0.15;
constexpr double kSpaceFailFraction = 0.05;
constexpr uint64_t kSpaceWarnBytes = 10ULL << 30;
constexpr uint64_t kSpaceFailBytes = 1ULL << 30;

CheckResult RunDiskSpace(const std::string& dir) {
  struct statvfs vfs;
  if (::statvfs(dir.c_str(), &vfs) != 0) {
    return MakeResult(CheckStatus::kFail, ErrnoStatus(errno, "statvfs " + dir).ToString(),
                      "Check that the data directory exists and its volume is mounted");
  }
  uint64_t total = uint64_t{vfs.f_blocks} * vfs.f_frsize;
  uint64_t free_bytes = uint64_t{vfs.f_bavail} * vfs.f_frsize;
  double free_fraction = total == 0 ? 0.0 : static_cast<double>(free_bytes) / total;
  CheckStatus space = CheckStatus::kPass;
  if (free_fraction < kSpaceFailFraction || free_bytes < kSpaceFailBytes) {
    space = CheckStatus::kFail;
  } else if (free_fraction < kSpaceWarnFraction || free_bytes < kSpaceWarnBytes) {
    space = CheckStatus::kWarn;
  }
  std::string detail = fmt::format("{}: {:.2f} GiB free of {:.2f} GiB ({:.1f} % free)", dir,
                                   free_bytes / kGiB, total / kGiB, free_fraction * 100.0);
  CheckStatus inodes = CheckStatus::kPass;
  if (vfs.f_files > 0) {
    double inode_fraction = static_cast<double>(vfs.f_favail) / vfs.f_files;
    if (inode_fraction < kSpaceFailFraction) {
      inodes = CheckStatus::kFail;
    } else if (inode_fraction < kSpaceWarnFraction) {
      inodes = CheckStatus::kWarn;
    }
    detail += fmt::format("; inodes: {} free of {} ({:.1f} % free)", uint64_t{vfs.f_favail},
                          uint64_t{vfs.f_files}, inode_fraction * 100.0);
  } else {
    detail += "; inodes: not reported by this file system";
  }
  std::string advice;
  if (space != CheckStatus::kPass) {
    advice =
        "Free space: raise the cache low watermark or delete data; the box slows writers at the "
        "hard cap";
  }
  if (inodes != CheckStatus::kPass) {
    if (!advice.empty()) advice += ". ";
    advice +=
        "Free inodes: the volume holds too many small files; delete data or lower the cache "
        "watermarks, or recreate the file system with more inodes";
  }
  return MakeResult(Worse(space, inodes), std::move(detail), std::move(advice));
}

// --- disk health -----------------------------------------------------------------------------

constexpr size_t kProbeBytes = 1 << 20;
constexpr int64_t kSlowFsyncMs = 2000;

// Removes the probe file however the check ends.
struct ProbeRemover {
  std::string path;
  ~ProbeRemover() { (void)platform::RemoveFile(path); }
};

// The kernel's I/O error count of the device holding `dir`, from
// /sys/dev/block/<major>:<minor>/device/ioerr_cnt (SCSI and SATA disks; a partition's count is
// its disk's). -1 when /sys does not show one (virtual file systems, NVMe, containers).
int64_t KernelIoErrors(const std::string& dir, std::string* device) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return -1;
  std::string base = fmt::format("/sys/dev/block/{}:{}", major(st.st_dev), minor(st.st_dev));
  for (const char* rel : {"/device/ioerr_cnt", "/../device/ioerr_cnt"}) {
    auto text = ReadPseudoFile(base + rel);
    if (!text.ok()) continue;
    errno = 0;
    char* end = nullptr;
    long long n = std::strtoll(text->c_str(), &end, 0);  // "0x1f"
    if (errno != 0 || end == text->c_str() || n < 0) continue;
    char resolved[PATH_MAX];
    std::string dev_path = base + (rel[1] == '.' ? "/.." : "");
    if (::realpath(dev_path.c_str(), resolved) != nullptr) {
      *device = resolved;
      *device = device->substr(device->rfind('/') + 1);
    }
    return n;
  }
  return -1;
}

CheckResult RunDiskHealth(const std::string& dir) {
  std::random_device rd;
  std::string path =
      fmt::format("{}/.fieldstack-probe-{}-{:08x}{:08x}", dir, ::getpid(), rd(), rd());
  ProbeRemover remover{path};
  constexpr const char* kAdvice =
      "The data volume does not store data reliably: check the kernel log (dmesg) and the disk's "
      "SMART status, and replace the disk or fix the mount before the cache loses data";
  auto fail = [&](const Status& s) {
    return MakeResult(CheckStatus::kFail, s.ToString(), kAdvice);
  };

  std::vector<uint8_t> data(kProbeBytes);
  std::mt19937_64 rng((uint64_t{rd()} << 32) | rd());
  for (size_t i = 0; i < data.size(); i += 8) {
    uint64_t v = rng();
    std::memcpy(&data[i], &v, 8);
  }
  auto file = platform::File::Open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
  if (!file.ok()) return fail(file.status());
  auto start = SteadyClock::now();
  if (Status s = file->PWrite(0, data); !s.ok()) return fail(s);
  int64_t write_ms = MillisSince(start);
  start = SteadyClock::now();
  if (Status s = file->Sync(); !s.ok()) return fail(s);
  int64_t fsync_ms = MillisSince(start);
  if (Status s = file->Close(); !s.ok()) return fail(s);

  auto reader = platform::File::Open(path, O_RDONLY);
  if (!reader.ok()) return fail(reader.status());
  std::vector<uint8_t> back(kProbeBytes);
  auto n = reader->PRead(0, back);
  if (!n.ok()) return fail(n.status());
  if (*n != kProbeBytes || back != data) {
    size_t at = 0;
    while (at < *n && back[at] == data[at]) ++at;
    return MakeResult(CheckStatus::kFail,
                      fmt::format("{}: the 1 MiB probe read back differs from what was written "
                                  "({} bytes read, first difference at byte {})",
                                  dir, *n, at),
                      kAdvice);
  }

  std::string detail = fmt::format("{}: 1 MiB probe written in {} ms, fsync {} ms, read back OK",
                                   dir, write_ms, fsync_ms);
  std::string device;
  int64_t io_errors = KernelIoErrors(dir, &device);
  if (io_errors >= 0) {
    detail += fmt::format("; kernel I/O errors on {}: {}", device, io_errors);
  }
  if (fsync_ms > kSlowFsyncMs) {
    return MakeResult(
        CheckStatus::kWarn, detail + fmt::format(" (fsync over {} ms)", kSlowFsyncMs),
        "The data volume is slow to make writes durable: check for a failing disk "
        "(SMART, dmesg), a busy array rebuild or another process saturating the disk");
  }
  return MakeResult(CheckStatus::kPass, detail);
}

// --- DNS -------------------------------------------------------------------------------------

CheckResult RunDns(const std::vector<std::string>& hosts) {
  if (hosts.empty()) return MakeResult(CheckStatus::kPass, "no host names to resolve");
  std::string resolved;
  std::string failed;
  int ok_count = 0;
  for (const std::string& host : hosts) {
    if (IsIpAddress(host)) {
      ++ok_count;
      resolved += (resolved.empty() ? "" : ", ") + host + " (address)";
      continue;
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
    if (rc != 0 || res == nullptr) {
      failed += (failed.empty() ? "" : ", ") + host + " (" + ::gai_strerror(rc) + ")";
      continue;
    }
    char addr[INET6_ADDRSTRLEN] = "?";
    if (res->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, addr,
                sizeof addr);
    } else if (res->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr, addr,
                sizeof addr);
    }
    ::freeaddrinfo(res);
    ++ok_count;
    resolved += (resolved.empty() ? "" : ", ") + host + " -> " + addr;
  }
  std::string detail = fmt::format("{} of {} names resolve", ok_count, hosts.size());
  if (!resolved.empty()) detail += ": " + resolved;
  if (failed.empty()) return MakeResult(CheckStatus::kPass, detail);
  return MakeResult(
      CheckStatus::kFail, detail + "; cannot resolve: " + failed,
      "Check the DNS servers of the box (/etc/resolv.conf or the network settings) and "
      "that it can reach them; the names above must resolve for uploads to work");
}

// --- memory ----------------------------------------------------------------------------------

// The value in kB of `key` ("MemAvailable") in /proc/meminfo text; -1 when absent.
int64_t MeminfoKb(const std::string& text, const std::string& key) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + pos, eol - pos);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ':') {
      long long v = 0;
      if (std::sscanf(std::string(line.substr(key.size() + 1)).c_str(), "%lld", &v) == 1) {
        return v;
      }
      return -1;
    }
    pos = eol + 1;
  }
  return -1;
}

CheckResult RunMemory() {
  auto text = ReadPseudoFile("/proc/meminfo");
  if (!text.ok()) {
    return MakeResult(CheckStatus::kWarn, "cannot read /proc/meminfo: " + text.status().ToString(),
                      "Mount /proc so that the box can watch its memory");
  }
  int64_t total_kb = MeminfoKb(*text, "MemTotal");
  int64_t avail_kb = MeminfoKb(*text, "MemAvailable");
  if (total_kb <= 0 || avail_kb < 0) {
    return MakeResult(CheckStatus::kWarn, "/proc/meminfo shows no MemTotal or MemAvailable",
                      "Run a kernel of 3.14 or later so that the box can watch its memory");
  }
  double fraction = static_cast<double>(avail_kb) / total_kb;
  std::string detail = fmt::format("{:.0f} MiB available of {:.0f} MiB ({:.1f} %)",
                                   avail_kb / 1024.0, total_kb / 1024.0, fraction * 100.0);
  constexpr const char* kAdvice =
      "Memory is short: look for a process using too much memory (top), lower the read-ahead "
      "and upload concurrency settings, or add memory; the kernel kills processes when it runs "
      "out";
  if (fraction < 0.03) return MakeResult(CheckStatus::kFail, detail, kAdvice);
  if (fraction < 0.10) return MakeResult(CheckStatus::kWarn, detail, kAdvice);
  return MakeResult(CheckStatus::kPass, detail);
}

// --- certificate -----------------------------------------------------------------------------

constexpr int64_t kCertWarnSeconds = 30LL * 24 * 3600;

bool AsnTimeToUnix(const ASN1_TIME* t, int64_t* out) {
  tm parts{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &parts) != 1) return false;
  *out = static_cast<int64_t>(timegm(&parts));
  return true;
}

std::string FormatDate(int64_t unix_s) { return FormatUtc(unix_s * kNanosPerSecond, "%F %TZ"); }

CheckResult RunCertificate(const std::string& cert_file, const Clock& clock) {
  constexpr const char* kReplace =
      "Install a renewed certificate, or delete the certificate and its key so that the box "
      "makes a new self-signed one at its next start (clients must then trust it again)";
  auto pem = platform::ReadFileToString(cert_file);
  if (!pem.ok()) {
    return MakeResult(CheckStatus::kFail, "cannot read the certificate: " + pem.status().ToString(),
                      "Check the certificate path in the configuration and the file's permissions");
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr, X509_free);
  int64_t not_before = 0;
  int64_t not_after = 0;
  if (!cert || !AsnTimeToUnix(X509_get0_notBefore(cert.get()), &not_before) ||
      !AsnTimeToUnix(X509_get0_notAfter(cert.get()), &not_after)) {
    return MakeResult(CheckStatus::kFail, cert_file + " holds no readable PEM certificate",
                      "Replace it with a PEM (-----BEGIN CERTIFICATE-----) certificate");
  }
  char subject[256] = "";
  X509_NAME_oneline(X509_get_subject_name(cert.get()), subject, sizeof subject);
  int64_t now = clock.NowUnixNanos() / kNanosPerSecond;
  std::string detail = cert_file + " (" + subject + "): valid from " + FormatDate(not_before) +
                       " to " + FormatDate(not_after);
  if (now < not_before) {
    return MakeResult(CheckStatus::kFail,
                      detail + fmt::format("; not valid for another {} s (now {})",
                                           not_before - now, FormatDate(now)),
                      "The certificate is not valid yet: check the box's clock (NTP) or install a "
                      "certificate whose validity has started");
  }
  int64_t left = not_after - now;
  if (left < 0) {
    return MakeResult(CheckStatus::kFail,
                      detail + fmt::format("; expired {} days ago", -left / 86400), kReplace);
  }
  detail += fmt::format("; expires in {} days", left / 86400);
  if (left < kCertWarnSeconds) return MakeResult(CheckStatus::kWarn, detail, kReplace);
  return MakeResult(CheckStatus::kPass, detail);
}

// --- time skew -------------------------------------------------------------------------------

constexpr int64_t kSkewWarnSeconds = 60;
constexpr int64_t kSkewFailSeconds = 5 * 60;

void CurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t CollectDate(char* data, size_t size, size_t n, void* user) {
  std::string_view line(data, size * n);
  constexpr std::string_view kDate = "date:";
  if (line.size() > kDate.size() && strncasecmp(line.data(), kDate.data(), kDate.size()) == 0) {
    std::string value(line.substr(kDate.size()));
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) {
      value.pop_back();
    }
    size_t start = value.find_first_not_of(" \t");
    *static_cast<std::string*>(user) = start == std::string::npos ? "" : value.substr(start);
  }
  return size * n;
}

CheckResult RunTimeSkew(const std::string& url, const Clock& clock) {
  CurlGlobalInit();
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl)
    return MakeResult(CheckStatus::kWarn, "cannot start libcurl", "Report this to support");
  std::string date;
  char error[CURL_ERROR_SIZE] = "";
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);  // only the Date header is read
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, CollectDate);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &date);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  int64_t before = clock.NowUnixNanos();
  CURLcode rc = curl_easy_perform(h);
  int64_t after = clock.NowUnixNanos();
  if (rc != CURLE_OK) {
    return MakeResult(CheckStatus::kWarn,
                      "cannot reach " + url + ": " + (error[0] ? error : curl_easy_strerror(rc)),
                      "The clock could not be compared; check the network path to " + url +
                          " and that the box's clock is kept by NTP (timedatectl)");
  }
  time_t server = date.empty() ? -1 : curl_getdate(date.c_str(), nullptr);
  if (server < 0) {
    return MakeResult(CheckStatus::kWarn,
                      url + " answered without a readable Date header ('" + date + "')",
                      "Point the time check at a server that sends a Date header (any cloud "
                      "endpoint does), and keep the box's clock set by NTP");
  }
  // The Date header has whole seconds and is made while the request is in flight.
  double local = (static_cast<double>(before) + static_cast<double>(after)) / 2.0 / 1e9;
  double skew = local - static_cast<double>(server);
  std::string detail = fmt::format("local clock {}, {} says {}: skew {:+.0f} s",
                                   FormatDate(static_cast<int64_t>(local)), url, date, skew);
  constexpr const char* kAdvice =
      "Set the box's clock: enable NTP (timedatectl set-ntp true) or point it at a reachable "
      "time server; cloud requests are refused when the clock is 15 minutes off";
  double abs_skew = std::fabs(skew);
  if (abs_skew > kSkewFailSeconds) return MakeResult(CheckStatus::kFail, detail, kAdvice);
  if (abs_skew > kSkewWarnSeconds) return MakeResult(CheckStatus::kWarn, detail, kAdvice);
  return MakeResult(CheckStatus::kPass, detail);
}

// --- TCP -------------------------------------------------------------------------------------

constexpr int kConnectTimeoutMs = 3000;

// Connects to one address within the timeout; 0 on success, else an errno value.
int ConnectOnce(const addrinfo* ai) {
  int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) return errno;
  int err = 0;
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    err = errno;
    if (err == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int n;
      do {
        n = ::poll(&p, 1, kConnectTimeoutMs);
      } while (n < 0 && errno == EINTR);
      if (n == 0) {
        err = ETIMEDOUT;
      } else if (n < 0) {
        err = errno;
      } else {
        socklen_t len = sizeof err;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      }
    }
  }
  ::close(fd);
  return err;
}

CheckResult RunTcp(const std::string& host, uint16_t port, const std::string& advice) {
  std::string where = host.find(':') != std::string::npos ? "[" + host + "]:" + std::to_string(port)
                                                          : host + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port_text = std::to_string(port);
  int rc = ::getaddrinfo(host.c_str(), port_text.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    return MakeResult(CheckStatus::kFail, "cannot resolve " + host + ": " + ::gai_strerror(rc),
                      advice);
  }
  auto start = SteadyClock::now();
  int err = ECONNREFUSED;
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    err = ConnectOnce(ai);
    if (err == 0) break;
  }
  ::freeaddrinfo(res);
  if (err != 0) {
    return MakeResult(CheckStatus::kFail, "connect to " + where + ": " + std::strerror(err),
                      advice);
  }
  return MakeResult(CheckStatus::kPass,
                    fmt::format("{} accepts connections ({} ms)", where, MillisSince(start)));
}

}  // namespace

std::string_view CheckStatusName(CheckStatus s) {
  switch (s) {
    case CheckStatus::kPass:
      return "pass";
    case CheckStatus::kWarn:
      return "warn";
    case CheckStatus::kFail:
      return "fail";
  }
  return "fail";
}

std::vector<CheckResult> RunChecks(const std::vector<Check>& checks,
                                   const std::function<void(size_t, size_t)>& progress,
                                   const std::function<bool()>& cancelled) {
  std::vector<CheckResult> results;
  results.reserve(checks.size());
  for (size_t i = 0; i < checks.size(); ++i) {
    if (cancelled && cancelled()) break;
    const Check& check = checks[i];
    auto start = SteadyClock::now();
    CheckResult r;
    if (check.run) {
      r = check.run();
    } else {
      r = MakeResult(CheckStatus::kFail, "the check has nothing to run", "Report this to support");
    }
    r.id = check.id;
    r.name = check.name;
    r.duration_ms = MillisSince(start);
    results.push_back(std::move(r));
    if (progress) progress(i + 1, checks.size());
  }
  return results;
}

Check DiskSpaceCheck(const std::string& dir) {
  return {"disk.space", "Free space on the data volume", [dir] { return RunDiskSpace(dir); }};
}

Check DiskHealthCheck(const std::string& dir) {
  return {"disk.health", "Data volume writes, syncs and reads back",
          [dir] { return RunDiskHealth(dir); }};
}

Check DnsCheck(const std::vector<std::string>& hosts) {
  return {"dns", "Name resolution", [hosts] { return RunDns(hosts); }};
}

Check MemoryCheck() {
  return {"memory", "Available memory", [] { return RunMemory(); }};
}

Check CertificateCheck(const std::string& cert_file, const Clock& clock) {
  return {"tls.certificate", "TLS certificate validity",
          [cert_file, &clock] { return RunCertificate(cert_file, clock); }};
}

Check TimeSkewCheck(const std::string& url, const Clock& clock) {
  return {"time.skew", "Clock compared with " + url,
          [url, &clock] { return RunTimeSkew(url, clock); }};
}

Check TcpCheck(std::string id, std::string name, std::string host, uint16_t port,
               std::string advice) {
  return {std::move(id), std::move(name),
          [host = std::move(host), port, advice = std::move(advice)] {
            return RunTcp(host, port, advice);
          }};
}

}  // namespace fieldstack::management
