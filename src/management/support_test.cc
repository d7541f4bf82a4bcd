// Tests of the diagnostics checks and of the support package (writer, reader, redaction).

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zstd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "common/clock.h"
#include "crypto/certificate.h"
#include "frontends/http/server.h"
#include "management/diagnostics.h"
#include "management/support_package.h"
#include "platform/file.h"
#include "test/support/temp_dir.h"

namespace fieldstack::management {
namespace {

namespace http = frontends::http;
// EXPECT that `text` contains `part`, printing both otherwise.
#define EXPECT_HAS(text, part) \
  EXPECT_TRUE(Contains(text, part)) << "'" << (part) << "' not in: " << (text)

constexpr int64_t kDayNanos = 86400LL * 1'000'000'000LL;

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

void WriteFile(const std::string& path, std::string_view data) {
  std::ofstream f(path, std::ios::binary);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(f.good()) << path;
}

// A TCP port on 127.0.0.1 that refuses connections: bound (so nobody else takes it) but not
// listening. Closed with the object.
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~RefusingPort() { ::close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// ---- RunChecks ------------------------------------------------------------------------------

Check Fixed(std::string id, CheckStatus status, int* runs) {
  return {id, "check " + id, [status, runs] {
            ++*runs;
            CheckResult r;
            r.status = status;
            r.detail = "found 42";
            r.advice = status == CheckStatus::kPass ? "" : "do something";
            return r;
          }};
}

TEST(DiagnosticsTest, StatusNames) {
  EXPECT_EQ(CheckStatusName(CheckStatus::kPass), "pass");
  EXPECT_EQ(CheckStatusName(CheckStatus::kWarn), "warn");
  EXPECT_EQ(CheckStatusName(CheckStatus::kFail), "fail");
}

TEST(DiagnosticsTest, RunChecksFillsIdNameDurationAndReportsProgress) {
  int runs = 0;
  std::vector<Check> checks = {Fixed("a", CheckStatus::kPass, &runs),
                               Fixed("b", CheckStatus::kWarn, &runs),
                               Fixed("c", CheckStatus::kFail, &runs)};
  checks[1].run = [&runs] {
    ++runs;
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    CheckResult r;
    r.id = "ignored";
    r.status = CheckStatus::kWarn;
    return r;
  };
  std::vector<std::pair<size_t, size_t>> progress;
  auto results = RunChecks(checks, [&](size_t i, size_t n) { progress.emplace_back(i, n); });
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(runs, 3);
  EXPECT_EQ(results[0].id, "a");
  EXPECT_EQ(results[0].name, "check a");
  EXPECT_EQ(results[0].detail, "found 42");
  EXPECT_EQ(results[1].id, "b");  // RunChecks sets it, whatever the check said
  EXPECT_EQ(results[1].status, CheckStatus::kWarn);
  EXPECT_GE(results[1].duration_ms, 30);
  EXPECT_LT(results[0].duration_ms, 30);
  EXPECT_EQ(results[2].status, CheckStatus::kFail);
  EXPECT_EQ(results[2].advice, "do something");
  EXPECT_EQ(progress, (std::vector<std::pair<size_t, size_t>>{{1, 3}, {2, 3}, {3, 3}}));
}

TEST(DiagnosticsTest, RunChecksStopsWhenCancelled) {
  int runs = 0;
  std::vector<Check> checks = {Fixed("a", CheckStatus::kPass, &runs),
                               Fixed("b", CheckStatus::kPass, &runs),
                               Fixed("c", CheckStatus::kPass, &runs)};
  size_t progress_calls = 0;
  auto results = RunChecks(
      checks, [&](size_t, size_t) { ++progress_calls; }, [&] { return runs >= 2; });
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(progress_calls, 2u);
  EXPECT_EQ(results[1].id, "b");

  runs = 0;
  EXPECT_TRUE(RunChecks(checks, {}, [] { return true; }).empty());
  EXPECT_EQ(runs, 0);
}

// ---- disk -----------------------------------------------------------------------------------

TEST(DiagnosticsTest, DiskSpaceReportsNumbersAndFollowsThresholds) {
  testing::TempDir tmp;
  Check check = DiskSpaceCheck(tmp.path());
  EXPECT_EQ(check.id, "disk.space");
  CheckResult r = check.run();
  struct statvfs vfs;
  ASSERT_EQ(::statvfs(tmp.path().c_str(), &vfs), 0);
  double total = static_cast<double>(vfs.f_blocks) * vfs.f_frsize;
  double free_bytes = static_cast<double>(vfs.f_bavail) * vfs.f_frsize;
  double pct = free_bytes / total * 100;
  double gib = 1024.0 * 1024 * 1024;
  CheckStatus expected = CheckStatus::kPass;
  if (pct < 5 || free_bytes < gib) {
    expected = CheckStatus::kFail;
  } else if (pct < 15 || free_bytes < 10 * gib) {
    expected = CheckStatus::kWarn;
  }
  if (vfs.f_files > 0) {
    double inode_pct = static_cast<double>(vfs.f_favail) / vfs.f_files * 100;
    if (inode_pct < 5) {
      expected = CheckStatus::kFail;
    } else if (inode_pct < 15 && expected == CheckStatus::kPass) {
      expected = CheckStatus::kWarn;
    }
    EXPECT_HAS(r.detail, std::to_string(vfs.f_files));
  }
  EXPECT_EQ(r.status, expected) << r.detail;
  char total_text[32];
  std::snprintf(total_text, sizeof total_text, "%.2f GiB", total / gib);
  EXPECT_HAS(r.detail, std::string("free of ") + total_text) << r.detail;
  EXPECT_HAS(r.detail, "% free");
  EXPECT_EQ(r.advice.empty(), r.status == CheckStatus::kPass) << r.advice;
  if (r.status != CheckStatus::kPass) {
    EXPECT_HAS(r.advice, "watermark");
  }

  CheckResult missing = DiskSpaceCheck(tmp / "nope").run();
  EXPECT_EQ(missing.status, CheckStatus::kFail);
  EXPECT_HAS(missing.detail, "nope");
  EXPECT_FALSE(missing.advice.empty());
}

TEST(DiagnosticsTest, DiskHealthWritesProbeAndRemovesIt) {
  testing::TempDir tmp;
  CheckResult r = DiskHealthCheck(tmp.path()).run();
  EXPECT_EQ(r.status, CheckStatus::kPass) << r.detail;
  EXPECT_HAS(r.detail, "1 MiB probe written in");
  EXPECT_HAS(r.detail, "fsync");
  EXPECT_TRUE(r.advice.empty());
  auto left = platform::ListDir(tmp.path());
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty()) << (*left)[0];

  CheckResult missing = DiskHealthCheck(tmp / "gone").run();
  EXPECT_EQ(missing.status, CheckStatus::kFail);
  EXPECT_HAS(missing.detail, "gone");
  EXPECT_HAS(missing.advice, "disk");
}

TEST(DiagnosticsTest, DiskHealthFailsWhenTheProbeCannotBeWritten) {
  testing::TempDir tmp;
  WriteFile(tmp / "file", "x");  // a file where a directory should be
  CheckResult r = DiskHealthCheck(tmp / "file").run();
  EXPECT_EQ(r.status, CheckStatus::kFail);
  EXPECT_HAS(r.detail, "file/.fieldstack-probe-");
  EXPECT_FALSE(r.advice.empty());
}

// ---- DNS, memory ----------------------------------------------------------------------------

TEST(DiagnosticsTest, DnsResolvesNamesAndNamesTheFailures) {
  CheckResult ok = DnsCheck({"localhost", "192.0.2.1", "::1"}).run();
  EXPECT_EQ(ok.status, CheckStatus::kPass) << ok.detail;
  EXPECT_HAS(ok.detail, "3 of 3 names resolve");
  EXPECT_HAS(ok.detail, "localhost -> ");

  CheckResult bad = DnsCheck({"localhost", "no-such-host.invalid"}).run();
  EXPECT_EQ(bad.status, CheckStatus::kFail);
  EXPECT_HAS(bad.detail, "1 of 2 names resolve");
  EXPECT_HAS(bad.detail, "cannot resolve: no-such-host.invalid");
  EXPECT_HAS(bad.advice, "DNS");
}

TEST(DiagnosticsTest, MemoryFollowsProcMeminfo) {
  std::ifstream f("/proc/meminfo");
  std::string text{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  ASSERT_NE(text.find("MemAvailable:"), std::string::npos);
  long long total = 0, avail = 0;
  std::sscanf(text.substr(text.find("MemTotal:")).c_str(), "MemTotal: %lld", &total);
  std::sscanf(text.substr(text.find("MemAvailable:")).c_str(), "MemAvailable: %lld", &avail);
  ASSERT_GT(total, 0);
  CheckResult r = MemoryCheck().run();
  double fraction = static_cast<double>(avail) / total;
  CheckStatus expected = fraction < 0.03   ? CheckStatus::kFail
                         : fraction < 0.10 ? CheckStatus::kWarn
                                           : CheckStatus::kPass;
  EXPECT_EQ(r.status, expected) << r.detail;
  char total_text[32];
  std::snprintf(total_text, sizeof total_text, "of %.0f MiB", total / 1024.0);
  EXPECT_HAS(r.detail, total_text);
  EXPECT_HAS(r.detail, "MiB available");
}

// ---- certificate ----------------------------------------------------------------------------

TEST(DiagnosticsTest, CertificatePassesWarnsNearExpiryAndFailsWhenExpired) {
  testing::TempDir tmp;
  ASSERT_TRUE(
      crypto::EnsureSelfSignedCertificate(tmp / "box.pem", tmp / "box.key", {"box.local"}).ok());
  FakeClock clock;
  // The certificate is made with the real time; the fake clock starts a second after it so
  // that whole days left are 3649, not 3650 in the same second.
  clock.Advance(std::chrono::nanoseconds(RealClock::Get().NowUnixNanos() + 1'000'000'000LL -
                                         clock.NowUnixNanos()));
  Check check = CertificateCheck(tmp / "box.pem", clock);

  CheckResult now = check.run();
  EXPECT_EQ(now.status, CheckStatus::kPass) << now.detail;
  EXPECT_HAS(now.detail, "box.local");
  EXPECT_HAS(now.detail, "expires in 3649 days");
  EXPECT_TRUE(now.advice.empty());

  clock.Advance(std::chrono::nanoseconds((10 * 365 - 10) * kDayNanos));
  CheckResult soon = check.run();
  EXPECT_EQ(soon.status, CheckStatus::kWarn) << soon.detail;
  EXPECT_HAS(soon.detail, "expires in 9 days");
  EXPECT_HAS(soon.advice, "certificate");

  clock.Advance(std::chrono::nanoseconds((365 + 10) * kDayNanos));  // 11 years after making
  CheckResult expired = check.run();
  EXPECT_EQ(expired.status, CheckStatus::kFail) << expired.detail;
  EXPECT_HAS(expired.detail, "expired 365 days ago");
  EXPECT_FALSE(expired.advice.empty());
}

TEST(DiagnosticsTest, CertificateFailsWhenNotYetValidMissingOrGarbage) {
  testing::TempDir tmp;
  ASSERT_TRUE(crypto::EnsureSelfSignedCertificate(tmp / "c.pem", tmp / "c.key", {"x"}).ok());
  FakeClock clock;
  clock.Advance(std::chrono::nanoseconds(RealClock::Get().NowUnixNanos() - clock.NowUnixNanos() -
                                         2 * kDayNanos));
  CheckResult early = CertificateCheck(tmp / "c.pem", clock).run();
  EXPECT_EQ(early.status, CheckStatus::kFail);
  EXPECT_HAS(early.detail, "not valid for another");
  EXPECT_HAS(early.advice, "clock");

  CheckResult missing = CertificateCheck(tmp / "none.pem", clock).run();
  EXPECT_EQ(missing.status, CheckStatus::kFail);
  EXPECT_HAS(missing.detail, "none.pem");

  WriteFile(tmp / "junk.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
  CheckResult junk = CertificateCheck(tmp / "junk.pem", clock).run();
  EXPECT_EQ(junk.status, CheckStatus::kFail);
  EXPECT_HAS(junk.detail, "no readable PEM certificate");
}

// ---- time skew ------------------------------------------------------------------------------

class DiagnosticsTimeSkewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add(http::beast_http::verb::head, "/", [this](const http::Request& req) {
      auto res = http::MakeResponse(req, http::beast_http::status::ok, "text/plain", "");
      int64_t at = clock_.NowUnixNanos() + offset_s_.load() * 1'000'000'000LL;
      res.set(http::beast_http::field::date, FormatUtc(at, "%a, %d %b %Y %H:%M:%S GMT"));
      return res;
    });
    router_.Add(http::beast_http::verb::head, "/nodate", [](const http::Request& req) {
      return http::MakeResponse(req, http::beast_http::status::ok, "text/plain", "");
    });
    server_ = std::make_unique<http::HttpServer>(http::ServerOptions{}, router_);
    ASSERT_TRUE(server_->Start().ok());
    url_ = "http://127.0.0.1:" + std::to_string(server_->port());
  }

  FakeClock clock_;
  std::atomic<int64_t> offset_s_{0};
  http::Router router_;
  std::unique_ptr<http::HttpServer> server_;
  std::string url_;
};

TEST_F(DiagnosticsTimeSkewTest, PassesWarnsAndFailsByTheServersDate) {
  Check check = TimeSkewCheck(url_ + "/", clock_);
  CheckResult same = check.run();
  EXPECT_EQ(same.status, CheckStatus::kPass) << same.detail;
  EXPECT_HAS(same.detail, "skew +0 s");
  EXPECT_HAS(same.detail, "Thu, 01 Jan 2026 00:00:00 GMT");

  offset_s_ = 90;
  CheckResult warn = check.run();
  EXPECT_EQ(warn.status, CheckStatus::kWarn) << warn.detail;
  EXPECT_HAS(warn.detail, "skew -90 s");
  EXPECT_HAS(warn.advice, "NTP");

  offset_s_ = 10 * 60;
  CheckResult ahead = check.run();
  EXPECT_EQ(ahead.status, CheckStatus::kFail) << ahead.detail;
  EXPECT_HAS(ahead.detail, "skew -600 s");

  offset_s_ = -6 * 60;  // the box is ahead of the server
  CheckResult behind = check.run();
  EXPECT_EQ(behind.status, CheckStatus::kFail) << behind.detail;
  EXPECT_HAS(behind.detail, "skew +360 s");
}

TEST_F(DiagnosticsTimeSkewTest, WarnsWhenUnreachableOrWithoutDate) {
  RefusingPort closed;
  CheckResult down =
      TimeSkewCheck("http://127.0.0.1:" + std::to_string(closed.port()) + "/", clock_).run();
  EXPECT_EQ(down.status, CheckStatus::kWarn) << down.detail;
  EXPECT_HAS(down.detail, "cannot reach");
  EXPECT_FALSE(down.advice.empty());

  CheckResult no_date = TimeSkewCheck(url_ + "/nodate", clock_).run();
  EXPECT_EQ(no_date.status, CheckStatus::kWarn) << no_date.detail;
  EXPECT_HAS(no_date.detail, "without a readable Date header");
}

// ---- TCP ------------------------------------------------------------------------------------

TEST(DiagnosticsTest, TcpPassesWhenListeningAndFailsWhenRefused) {
  http::Router router;
  http::HttpServer server(http::ServerOptions{}, router);
  ASSERT_TRUE(server.Start().ok());
  Check up = TcpCheck("smbd", "SMB server", "127.0.0.1", server.port(), "restart smbd");
  EXPECT_EQ(up.id, "smbd");
  EXPECT_EQ(up.name, "SMB server");
  CheckResult ok = up.run();
  EXPECT_EQ(ok.status, CheckStatus::kPass) << ok.detail;
  EXPECT_HAS(ok.detail, "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_TRUE(ok.advice.empty());

  RefusingPort closed;
  CheckResult refused = TcpCheck("smbd", "SMB", "localhost", closed.port(), "restart smbd").run();
  EXPECT_EQ(refused.status, CheckStatus::kFail);
  EXPECT_HAS(refused.detail, "refused");
  EXPECT_EQ(refused.advice, "restart smbd");
}

// ---- support package ------------------------------------------------------------------------

std::string Base64Of(std::string_view s) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : s) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      out += kAlphabet[(acc >> (bits - 6)) & 63];
      bits -= 6;
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  while (out.size() % 4) out += '=';
  return out;
}

class SupportPackageTest : public ::testing::Test {
 protected:
  std::string Root() const { return "fieldstack-support-20260101T000000Z/"; }

  SupportPackageInput BasicInput() {
    SupportPackageInput in;
    in.versions_json = R"({"fieldstack":"1.2.3"})";
    in.diagnostics_json = R"([{"id":"disk.space","status":"pass"}])";
    in.metrics_text = "fs_cache_bytes 123\n";
    in.config_text = "[cache]\nlow_watermark = 0.8\n";
    in.now_unix = FakeClock::kStartUnixNanos / 1'000'000'000;
    return in;
  }

  Result<std::map<std::string, std::string>> WriteAndRead(const SupportPackageInput& in) {
    Status s = WriteSupportPackage(in, out_);
    if (!s.ok()) return s;
    return ReadSupportPackage(out_);
  }

  testing::TempDir tmp_;
  std::string out_ = tmp_ / "support.tar.zst";
};

TEST_F(SupportPackageTest, RoundTripsFilesAndLogs) {
  std::filesystem::create_directories(tmp_ / "logs");
  std::filesystem::create_directories(tmp_ / "logs/nested");
  std::string long_name = std::string(96, 'n') + ".log";  // 100 bytes
  WriteFile(tmp_ / "logs/fieldstack.log", "line one\nline two\n");
  WriteFile(tmp_ / "logs/empty.log", "");
  WriteFile(tmp_ / ("logs/" + long_name), "long name contents");
  WriteFile(tmp_ / "logs/nested/inner.log", "not included");
  std::filesystem::create_symlink(tmp_ / "logs/fieldstack.log", tmp_ / "logs/link.log");
  std::filesystem::create_directories(tmp_ / "other/logs");
  WriteFile(tmp_ / "other/logs/smbd.log", "smbd says hi");

  SupportPackageInput in = BasicInput();
  in.log_dirs = {tmp_ / "logs", tmp_ / "missing", tmp_ / "other/logs"};
  auto files = WriteAndRead(in);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  std::map<std::string, std::string> expected = {
      {Root() + "versions.json", in.versions_json},
      {Root() + "diagnostics.json", in.diagnostics_json},
      {Root() + "metrics.txt", in.metrics_text},
      {Root() + "config.toml", in.config_text},
      {Root() + "logs/logs/fieldstack.log", "line one\nline two\n"},
      {Root() + "logs/logs/empty.log", ""},
      {Root() + "logs/logs/" + long_name, "long name contents"},
      {Root() + "logs/logs-3/smbd.log", "smbd says hi"},
  };
  EXPECT_EQ(*files, expected);
  struct stat st;
  ASSERT_EQ(::stat(out_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto names = platform::ListDir(tmp_.path());
  ASSERT_TRUE(names.ok());
  for (const auto& n : *names) EXPECT_FALSE(Contains(n, ".tmp")) << "temporary file left";
}

TEST_F(SupportPackageTest, ArchiveIsReadableByTar) {
  std::filesystem::create_directories(tmp_ / "logs");
  std::string long_name = std::string(120, 'L') + ".log";  // cut to fit a ustar name
  WriteFile(tmp_ / "logs/a.log", "alpha\n");
  WriteFile(tmp_ / ("logs/" + long_name), "long\n");
  SupportPackageInput in = BasicInput();
  in.log_dirs = {tmp_ / "logs"};
  ASSERT_TRUE(WriteSupportPackage(in, out_).ok());

  auto run = [](const std::string& cmd) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[4096];
    for (size_t n; p && (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    int rc = p ? ::pclose(p) : -1;
    return std::make_pair(rc, out);
  };
  auto [rc, listing] = run("tar --zstd -tf " + out_ + " 2>&1");
  EXPECT_EQ(rc, 0) << listing;
  auto files = ReadSupportPackage(out_);
  ASSERT_TRUE(files.ok());
  std::string expected;
  // tar lists in archive order; ours writes the top files, then logs sorted by name.
  for (const char* n : {"versions.json", "diagnostics.json", "metrics.txt", "config.toml"}) {
    expected += Root() + n + "\n";
  }
  std::string cut_member;
  for (const auto& [name, data] : *files) {
    if (Contains(name, "/logs/logs/L")) cut_member = name;
  }
  ASSERT_FALSE(cut_member.empty());
  EXPECT_EQ(cut_member.substr(cut_member.rfind('/') + 1), std::string(100, 'L'));
  EXPECT_EQ(files->at(cut_member), "long\n");
  expected += cut_member + "\n" + Root() + "logs/logs/a.log\n";
  EXPECT_EQ(listing, expected);
  auto [rc2, contents] = run("tar --zstd -xOf " + out_ + " " + Root() + "logs/logs/a.log");
  EXPECT_EQ(rc2, 0);
  EXPECT_EQ(contents, "alpha\n");
  auto [rc3, verbose] = run("tar --zstd -tvf " + out_ + " " + Root() + "metrics.txt");
  EXPECT_EQ(rc3, 0);
  EXPECT_HAS(verbose, "-rw-------");
  EXPECT_HAS(verbose, "2026-01-01");
}

TEST_F(SupportPackageTest, KeepsOnlyTheNewestBytesOfBigLogs) {
  std::filesystem::create_directories(tmp_ / "logs");
  std::string big;
  for (int i = 0; i < 20000; ++i) big += "log line number " + std::to_string(i) + "\n";
  WriteFile(tmp_ / "logs/big.log", big);
  SupportPackageInput in = BasicInput();
  in.log_dirs = {tmp_ / "logs"};
  in.max_log_bytes = 10000;
  auto files = WriteAndRead(in);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  const std::string& tail = files->at(Root() + "logs/logs/big.log");
  // The newest 10000 bytes, from the first whole line in them.
  std::string window = big.substr(big.size() - 10000);
  std::string expected = window.substr(window.find('\n') + 1);
  EXPECT_EQ(tail, expected);
  EXPECT_LE(tail.size(), 10000u);
  EXPECT_TRUE(tail.ends_with("log line number 19999\n"));
  EXPECT_TRUE(tail.starts_with("log line number "));
}

TEST_F(SupportPackageTest, NoSecretSurvivesInAnyFileOrForm) {
  const std::string account_key = "c2VjcmV0LWFjY291bnQta2V5LXZhbHVlLTEyMzQ1Njc4OTA=";
  const std::string password = "hunter2!pa ss/word";
  const std::string token = "tok_ABCDEF0123456789";
  const std::vector<std::string> secrets = {account_key, password, token, ""};

  std::string planted = "clear: " + password + " and " + token + "\n" +
                        "b64: " + Base64Of(password) + " basic: " + Base64Of("admin:" + password) +
                        "\n" + "url: pw=x%20" + "hunter2%21pa%20ss%2Fword" + "&q=1\n" +
                        "lower url: hunter2%21pa%20ss%2fword\n" +
                        "json escaped: \"hunter2!pa ss\\/word\"\n";
  // Values that are not in `secrets`: only the key-shape rules catch them.
  std::string shapes =
      "password = other-password-1\n"
      "{\"token\":\"other-token-2\",\"user\":\"bob\"}\n"
      "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=other+key/3==;"
      "EndpointSuffix=core.windows.net\n"
      "GET https://acct.blob.core.windows.net/c/b?sv=2022-11-02&se=2026&sig=other%2Bsig4%3D HTTP\n"
      "Authorization: Bearer other-bearer-5\n"
      "client_secret: 'other-secret-6'\n";

  std::filesystem::create_directories(tmp_ / "logs");
  WriteFile(tmp_ / "logs/daemon.log", planted + shapes);
  SupportPackageInput in = BasicInput();
  in.log_dirs = {tmp_ / "logs"};
  in.secrets = secrets;
  in.config_text = "[cloud]\naccount_key = \"" + account_key + "\"\nkey_file = \"/etc/k.pem\"\n";
  in.metrics_text = "fs_info{key=\"" + account_key + "\"} 1\nfs_up " + token + "\n";
  in.diagnostics_json = R"([{"detail":"auth with )" + Base64Of(account_key) + R"( failed"}])";
  in.versions_json = "{\"v\":\"" + planted + "\"}";
  auto files = WriteAndRead(in);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 5u);

  std::vector<std::string> needles;
  for (const std::string& s : {account_key, password, token}) {
    needles.push_back(s);
    needles.push_back(Base64Of(s));
  }
  needles.insert(needles.end(),
                 {"hunter2%21pa%20ss%2Fword", "hunter2%21pa%20ss%2fword", "hunter2",
                  Base64Of("admin:" + password).substr(8, 12), "other-password-1", "other-token-2",
                  "other+key/3", "other%2Bsig4", "other-bearer-5", "other-secret-6"});
  for (const auto& [name, data] : *files) {
    for (const std::string& n : needles) {
      EXPECT_FALSE(Contains(data, n)) << "'" << n << "' in " << name << ":\n" << data;
    }
    EXPECT_FALSE(Contains(data, "]]")) << name << ":\n" << data;
  }
  // What is not secret stays readable.
  const std::string& log = files->at(Root() + "logs/logs/daemon.log");
  EXPECT_HAS(log, "AccountName=acct;AccountKey=[REDACTED];EndpointSuffix=");
  EXPECT_HAS(log, "?sv=2022-11-02&se=2026&sig=[REDACTED] HTTP");
  EXPECT_HAS(log, "Authorization: Bearer [REDACTED]\n");
  EXPECT_HAS(log, "{\"token\":\"[REDACTED]\",\"user\":\"bob\"}");
  EXPECT_HAS(log, "password = [REDACTED]\n");
  EXPECT_HAS(log, "client_secret: '[REDACTED]'");
  const std::string& config = files->at(Root() + "config.toml");
  EXPECT_EQ(config, "[cloud]\naccount_key = \"[REDACTED]\"\nkey_file = \"/etc/k.pem\"\n");
}

TEST(SupportPackageRedactTest, RedactsSecretFormsAndKeyShapesPrecisely) {
  const std::vector<std::string> secrets = {"s3cr3t-value!"};
  EXPECT_EQ(Redact("a s3cr3t-value! b", secrets), "a [REDACTED] b");
  EXPECT_EQ(Redact("a s3cr3t-value%21 b", secrets), "a [REDACTED] b");
  EXPECT_EQ(Redact("a " + Base64Of("s3cr3t-value!") + " b", secrets), "a [REDACTED] b");
  // Inside a longer base64 text, at each alignment.
  for (std::string pre : {"", "u", "us", "usr:"}) {
    std::string enc = Base64Of(pre + "s3cr3t-value!");
    std::string out = Redact("Basic " + enc, secrets);
    size_t at = out.find("[REDACTED]");
    ASSERT_NE(at, std::string::npos) << pre;
    // Left in clear: the prefix's own characters, then at most one character holding a few
    // bits of the secret and the padding.
    EXPECT_LE(at, 6 + (pre.size() * 8 + 5) / 6) << out;
    EXPECT_LE(out.size() - at - 10, 3u) << out;
  }
  EXPECT_EQ(Redact("no secrets here", {""}), "no secrets here");

  // Key shapes.
  EXPECT_EQ(Redact("password=abc def", {}), "password=[REDACTED] def");
  EXPECT_EQ(Redact("DB_PASSWORD: \"a \\\"q\\\" b\"\n", {}), "DB_PASSWORD: \"[REDACTED]\"\n");
  EXPECT_EQ(Redact("x-amz-security-token=abc&x=1", {}), "x-amz-security-token=[REDACTED]&x=1");
  EXPECT_EQ(Redact("{\"msg\":\"cfg {\\\"secret\\\":\\\"abc\\\"}\"}", {}),
            "{\"msg\":\"cfg {\\\"secret\\\":\\\"[REDACTED]\\\"}\"}");
  EXPECT_EQ(Redact("sas_url = https://a/c?sv=1&sig=xyz", {}),
            "sas_url = [REDACTED]&sig=[REDACTED]");
  EXPECT_EQ(Redact("https://a/c?sv=1&sig=xyz&se=2", {}), "https://a/c?sv=1&sig=[REDACTED]&se=2");
  EXPECT_EQ(Redact("Authorization: SharedKey acct:c2ln\n", {}),
            "Authorization: SharedKey [REDACTED]\n");
  EXPECT_EQ(Redact("authorization: rawtoken more", {}), "authorization: [REDACTED] more");
  EXPECT_EQ(Redact("apikey=k1, AccountKey=k2;", {}), "apikey=[REDACTED], AccountKey=[REDACTED];");
  // Not secrets: descriptors, look-alike words, URLs, times, comparisons, empty values.
  for (std::string keep :
       {"key_file = \"/x/y\"", "access_key_id=AKIA123", "secret_name: prod", "keyspace=main",
        "https://host:443/path", "at 12:30:45", "if a == b", "password = \"\"", "sasl: on",
        "signature_version = v4", "monkey business"}) {
    EXPECT_EQ(Redact(keep, {}), keep);
  }
  EXPECT_EQ(Redact("a\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\nxyz\n-----END EC PRIVATE "
                   "KEY-----\nb",
                   {}),
            "a\n-----BEGIN EC PRIVATE KEY-----\n[REDACTED]\n-----END EC PRIVATE KEY-----\nb");
  EXPECT_EQ(Redact("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", {}),
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
}

TEST_F(SupportPackageTest, TruncatedOrGarbageArchiveIsCorruption) {
  std::filesystem::create_directories(tmp_ / "logs");
  std::string noise(5000, '\0');
  std::mt19937 rng(7);
  for (char& c : noise) c = static_cast<char>(rng());
  WriteFile(tmp_ / "logs/noise.bin", noise);
  SupportPackageInput in = BasicInput();
  in.log_dirs = {tmp_ / "logs"};
  ASSERT_TRUE(WriteSupportPackage(in, out_).ok());
  auto packed = platform::ReadFileToString(out_);
  ASSERT_TRUE(packed.ok());
  ASSERT_TRUE(ReadSupportPackage(out_).ok());

  std::string cut = tmp_ / "cut.tar.zst";
  for (size_t len = 0; len < packed->size(); len += std::max<size_t>(1, packed->size() / 97)) {
    WriteFile(cut, packed->substr(0, len));
    auto r = ReadSupportPackage(cut);
    ASSERT_FALSE(r.ok()) << len;
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << len << r.status().ToString();
  }
  WriteFile(cut, *packed + "trailing junk");
  EXPECT_EQ(ReadSupportPackage(cut).status().code(), StatusCode::kCorruption);
  WriteFile(cut, noise);
  EXPECT_EQ(ReadSupportPackage(cut).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ReadSupportPackage(tmp_ / "absent").status().code(), StatusCode::kNotFound);

  // Valid zstd around a bad tar: a flipped header byte, a truncated tar, random bytes.
  std::string tar(8 << 20, '\0');
  size_t tar_size = ZSTD_decompress(tar.data(), tar.size(), packed->data(), packed->size());
  ASSERT_FALSE(ZSTD_isError(tar_size)) << ZSTD_getErrorName(tar_size);
  tar.resize(tar_size);
  EXPECT_EQ(tar.size() % 10240, 0u);
  auto repack = [&](const std::string& t) {
    std::string z(ZSTD_compressBound(t.size()), '\0');
    z.resize(ZSTD_compress(z.data(), z.size(), t.data(), t.size(), 1));
    WriteFile(cut, z);
    return ReadSupportPackage(cut).status();
  };
  EXPECT_TRUE(repack(tar).ok());
  std::string flipped = tar;
  flipped[3] ^= 1;  // in the first name
  Status s = repack(flipped);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_HAS(s.message(), "checksum");
  std::string big_size = tar;
  // The first member's size field claims far more than there is (checksum fixed up).
  std::memcpy(big_size.data() + 124, "77777777777", 11);
  uint32_t sum = 0;
  for (size_t i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : uint8_t(big_size[i]);
  std::snprintf(big_size.data() + 148, 8, "%06o", sum);
  s = repack(big_size);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_HAS(s.message(), "truncated");
  EXPECT_EQ(repack(tar.substr(0, tar.size() / 2)).code(), StatusCode::kCorruption);
  // Random byte flips in the tar and in the compressed file (fixed seed): ok or Corruption,
  // never a crash or a read past the end (run under ASan by the sanitizer presets).
  for (int i = 0; i < 200; ++i) {
    std::string t = i % 2 ? tar : *packed;
    for (int k = 0; k < 1 + i % 4; ++k) t[rng() % t.size()] ^= static_cast<char>(1 + rng() % 255);
    Status r = i % 2 ? repack(t) : (WriteFile(cut, t), ReadSupportPackage(cut).status());
    EXPECT_TRUE(r.ok() || r.code() == StatusCode::kCorruption) << i << " " << r.ToString();
  }
  EXPECT_EQ(repack(noise).code(), StatusCode::kCorruption);
  EXPECT_EQ(repack("").code(), StatusCode::kCorruption);
}

TEST_F(SupportPackageTest, CancelLeavesNoFile) {
  std::filesystem::create_directories(tmp_ / "logs");
  WriteFile(tmp_ / "logs/a.log", "a");
  SupportPackageInput in = BasicInput();
  in.log_dirs = {tmp_ / "logs"};
  int calls = 0;
  Status s = WriteSupportPackage(in, out_, [&] { return ++calls > 3; });
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(calls, 4);
  EXPECT_FALSE(platform::PathExists(out_));
  auto names = platform::ListDir(tmp_.path());
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"logs"});
}

TEST_F(SupportPackageTest, WritesIntoItsOwnLogDirAndFailsOnMissingOutputDir) {
  // A package written into a log directory does not swallow its own temporary file.
  std::filesystem::create_directories(tmp_ / "logs");
  WriteFile(tmp_ / "logs/a.log", "a");
  SupportPackageInput in = BasicInput();
  in.log_dirs = {tmp_ / "logs"};
  std::string inside = tmp_ / "logs/pkg.tar.zst";
  ASSERT_TRUE(WriteSupportPackage(in, inside).ok());
  auto files = ReadSupportPackage(inside);
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(files->size(), 5u);
  EXPECT_EQ(files->count(Root() + "logs/logs/a.log"), 1u);

  Status s = WriteSupportPackage(in, tmp_ / "no/such/dir/p.tar.zst");
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_HAS(s.message(), "no/such/dir/p.tar.zst");
}

}  // namespace
}  // namespace fieldstack::management
