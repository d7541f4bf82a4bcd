// Tests of alerts.h (catalogue, lifecycle, alerts.log, webhook) and jobs.h.

#include "management/alerts.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "frontends/http/server.h"
#include "management/jobs.h"
#include "platform/file.h"
#include "test/support/temp_dir.h"

namespace fieldstack::management {
namespace {

using namespace std::chrono_literals;
namespace http = frontends::http;

// Polls `pred` (real threads are at work) for up to `timeout`.
bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A local port on which nothing listens.
uint16_t ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

const std::vector<std::string> kHeaderIds = {
    "cloud.unreachable",      "cloud.auth_failed",   "capacity.volume_low",
    "capacity.cache_full",    "upload.failures",     "upload.budget_spent",
    "certificate.expiring",   "certificate.expired", "security.login_lockout",
    "hardware.disk_errors",   "hardware.clock_skew", "hardware.memory_low",
    "service.smb_down",       "service.nfs_down",    "compute.pipeline_failed",
    "compute.pipeline_alert",
};

// ---------------------------------------------------------------------------------------------
// Catalogue

TEST(AlertCatalogueTest, HasEveryIdOfTheHeaderWithTitleAndAction) {
  const auto& catalogue = AlertCatalogue();
  EXPECT_EQ(catalogue.size(), kHeaderIds.size());
  std::set<std::string_view> seen;
  for (const AlertDefinition& d : catalogue) {
    EXPECT_TRUE(seen.insert(d.id).second) << "duplicate " << d.id;
    EXPECT_EQ(d.id.substr(0, d.id.find('.')), d.category) << d.id;
    EXPECT_FALSE(d.title.empty()) << d.id;
    EXPECT_GT(d.action.size(), 40u) << d.id << ": the action should say what to do";
  }
  for (const std::string& id : kHeaderIds) {
    const AlertDefinition* d = FindAlert(id);
    ASSERT_NE(d, nullptr) << id;
    EXPECT_EQ(d->id, id);
  }
  EXPECT_EQ(FindAlert("no.such"), nullptr);
  EXPECT_EQ(FindAlert("cloud.unreachable")->severity, Severity::kCritical);
  EXPECT_EQ(SeverityName(Severity::kInfo), "info");
  EXPECT_EQ(SeverityName(Severity::kWarning), "warning");
  EXPECT_EQ(SeverityName(Severity::kCritical), "critical");
}

TEST(AlertCatalogueTest, DocsTableListsEveryAlertWithItsSeverity) {
  std::string docs = ReadFile(std::string(FS_SOURCE_DIR) + "/docs/alerts.md");
  ASSERT_FALSE(docs.empty()) << "docs/alerts.md is missing";
  for (const AlertDefinition& d : AlertCatalogue()) {
    size_t row = docs.find("| `" + std::string(d.id) + "` |");
    ASSERT_NE(row, std::string::npos) << d.id << " is not in the table of docs/alerts.md";
    std::string line = docs.substr(row, docs.find('\n', row) - row);
    EXPECT_NE(line.find("| " + std::string(d.category) + " |"), std::string::npos)
        << d.id << ": category differs in docs/alerts.md";
    EXPECT_NE(line.find("| " + std::string(SeverityName(d.severity)) + " |"), std::string::npos)
        << d.id << ": severity differs in docs/alerts.md";
    EXPECT_NE(line.find(std::string(d.title)), std::string::npos)
        << d.id << ": title differs in docs/alerts.md";
  }
}

// ---------------------------------------------------------------------------------------------
// Lifecycle and alerts.log

class AlertsTest : public ::testing::Test {
 protected:
  std::unique_ptr<Alerts> Open(AlertsOptions o = {}) {
    if (o.dir.empty()) o.dir = dir_ / "alerts";
    auto alerts = Alerts::Open(o, clock_);
    EXPECT_TRUE(alerts.ok()) << alerts.status().ToString();
    return alerts.ok() ? std::move(alerts).value() : nullptr;
  }
  std::string LogPath() { return dir_ / "alerts/alerts.log"; }
  int64_t NowUnix() { return clock_.NowUnixNanos() / 1'000'000'000; }

  testing::TempDir dir_;
  FakeClock clock_;
};

TEST_F(AlertsTest, RaiseUpdateAcknowledgeClear) {
  auto alerts = Open();
  ASSERT_NE(alerts, nullptr);
  int64_t t0 = NowUnix();
  ASSERT_TRUE(alerts->Raise("cloud.unreachable", "acct1", "connect timed out").ok());
  EXPECT_TRUE(alerts->IsActive("cloud.unreachable", "acct1"));
  EXPECT_FALSE(alerts->IsActive("cloud.unreachable", "acct2"));

  clock_.Advance(30s);
  ASSERT_TRUE(alerts->Raise("cloud.unreachable", "acct1", "DNS failed").ok());
  auto active = alerts->Active();
  ASSERT_EQ(active.size(), 1u);
  const Alert a = active[0];  // a copy: `active` is reassigned below
  EXPECT_EQ(a.id, "cloud.unreachable");
  EXPECT_EQ(a.category, "cloud");
  EXPECT_EQ(a.severity, Severity::kCritical);
  EXPECT_EQ(a.title, FindAlert("cloud.unreachable")->title);
  EXPECT_EQ(a.action, FindAlert("cloud.unreachable")->action);
  EXPECT_EQ(a.subject, "acct1");
  EXPECT_EQ(a.detail, "DNS failed");
  EXPECT_EQ(a.count, 2u);
  EXPECT_EQ(a.raised_unix, t0);
  EXPECT_EQ(a.updated_unix, t0 + 30);
  EXPECT_EQ(a.cleared_unix, 0);
  EXPECT_FALSE(a.acknowledged);

  ASSERT_TRUE(alerts->Acknowledge(a.seq, "admin").ok());
  active = alerts->Active();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_TRUE(active[0].acknowledged);
  EXPECT_EQ(active[0].acknowledged_by, "admin");

  clock_.Advance(60s);
  alerts->Clear("cloud.unreachable", "acct1");
  EXPECT_FALSE(alerts->IsActive("cloud.unreachable", "acct1"));
  EXPECT_TRUE(alerts->Active().empty());
  alerts->Clear("cloud.unreachable", "acct1");  // not active: no-op
  auto history = alerts->History(10);
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].seq, a.seq);
  EXPECT_EQ(history[0].cleared_unix, t0 + 90);
  EXPECT_EQ(history[0].count, 2u);

  // A raise after the clear is a new alert with a new seq.
  ASSERT_TRUE(alerts->Raise("cloud.unreachable", "acct1", "again").ok());
  active = alerts->Active();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_GT(active[0].seq, a.seq);
  EXPECT_EQ(active[0].count, 1u);
  EXPECT_FALSE(active[0].acknowledged);
  EXPECT_EQ(alerts->History(10).size(), 2u);

  // Every change is one JSON line of alerts.log.
  std::vector<std::string> events;
  std::istringstream lines(ReadFile(LogPath()));
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line);
    events.push_back(j.at("event").get<std::string>());
    EXPECT_EQ(j.at("id"), "cloud.unreachable");
    EXPECT_EQ(j.at("subject"), "acct1");
  }
  EXPECT_EQ(events, (std::vector<std::string>{"raise", "update", "ack", "clear", "raise"}));
}

TEST_F(AlertsTest, UnknownIdIsInvalidArgument) {
  auto alerts = Open();
  ASSERT_NE(alerts, nullptr);
  Status s = alerts->Raise("cloud.on_fire", "", "");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(alerts->Active().empty());
  EXPECT_TRUE(alerts->History(10).empty());
}

TEST_F(AlertsTest, AcknowledgeOfUnknownOrClearedSeqIsNotFound) {
  auto alerts = Open();
  ASSERT_NE(alerts, nullptr);
  EXPECT_EQ(alerts->Acknowledge(42, "admin").code(), StatusCode::kNotFound);
  ASSERT_TRUE(alerts->Raise("hardware.memory_low", "", "95% used").ok());
  uint64_t seq = alerts->Active().at(0).seq;
  alerts->Clear("hardware.memory_low", "");
  EXPECT_EQ(alerts->Acknowledge(seq, "admin").code(), StatusCode::kNotFound);
}

TEST_F(AlertsTest, HistoryIsNewestFirstAndPagesWithBefore) {
  auto alerts = Open();
  ASSERT_NE(alerts, nullptr);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(alerts->Raise("upload.failures", "share" + std::to_string(i), "").ok());
    clock_.Advance(1s);
  }
  alerts->Clear("upload.failures", "share1");
  auto all = alerts->History(100);
  ASSERT_EQ(all.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(all[i].subject, "share" + std::to_string(4 - i));
  EXPECT_NE(all[3].cleared_unix, 0);  // share1
  EXPECT_EQ(all[2].cleared_unix, 0);

  auto page1 = alerts->History(2);
  ASSERT_EQ(page1.size(), 2u);
  EXPECT_EQ(page1[0].subject, "share4");
  EXPECT_EQ(page1[1].subject, "share3");
  auto page2 = alerts->History(2, page1.back().seq);
  ASSERT_EQ(page2.size(), 2u);
  EXPECT_EQ(page2[0].subject, "share2");
  EXPECT_EQ(page2[1].subject, "share1");
  auto page3 = alerts->History(2, page2.back().seq);
  ASSERT_EQ(page3.size(), 1u);
  EXPECT_EQ(page3[0].subject, "share0");
  EXPECT_TRUE(alerts->History(2, page3.back().seq).empty());
  EXPECT_TRUE(alerts->History(0).empty());
}

TEST_F(AlertsTest, ActiveAlertsSurviveReopenAndClearedOnesAreHistory) {
  uint64_t last_seq = 0;
  {
    auto alerts = Open();
    ASSERT_NE(alerts, nullptr);
    ASSERT_TRUE(alerts->Raise("capacity.volume_low", "", "12% free").ok());
    ASSERT_TRUE(alerts->Raise("capacity.volume_low", "", "8% free").ok());
    ASSERT_TRUE(alerts->Raise("security.login_lockout", "bob", "from 10.0.0.9").ok());
    ASSERT_TRUE(alerts->Acknowledge(alerts->Active().at(0).seq, "admin").ok());  // bob's
    ASSERT_TRUE(alerts->Raise("service.smb_down", "", "smbd exited").ok());
    alerts->Clear("service.smb_down", "");
    last_seq = alerts->History(1).at(0).seq;
  }
  auto alerts = Open();
  ASSERT_NE(alerts, nullptr);
  auto active = alerts->Active();
  ASSERT_EQ(active.size(), 2u);
  EXPECT_EQ(active[0].id, "security.login_lockout");
  EXPECT_TRUE(active[0].acknowledged);
  EXPECT_EQ(active[0].acknowledged_by, "admin");
  EXPECT_EQ(active[1].id, "capacity.volume_low");
  EXPECT_EQ(active[1].count, 2u);
  EXPECT_EQ(active[1].detail, "8% free");
  EXPECT_TRUE(alerts->IsActive("capacity.volume_low", ""));
  EXPECT_FALSE(alerts->IsActive("service.smb_down", ""));

  auto history = alerts->History(10);
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[0].id, "service.smb_down");
  EXPECT_NE(history[0].cleared_unix, 0);

  // Seqs go on from where they were; clearing after the restart works.
  ASSERT_TRUE(alerts->Raise("hardware.clock_skew", "", "").ok());
  EXPECT_GT(alerts->History(1).at(0).seq, last_seq);
  alerts->Clear("capacity.volume_low", "");
  EXPECT_FALSE(alerts->IsActive("capacity.volume_low", ""));
}

TEST_F(AlertsTest, CorruptLinesOfTheLogAreSkipped) {
  {
    auto alerts = Open();
    ASSERT_NE(alerts, nullptr);
    ASSERT_TRUE(alerts->Raise("hardware.disk_errors", "sda", "EIO").ok());
  }
  {
    std::ofstream out(LogPath(), std::ios::app);
    out << "{not json\n";
    out << "{\"event\":\"raise\",\"seq\":\"seven\"}\n";  // a field of the wrong type
    out << "\n";
  }
  {
    auto alerts = Open();
    ASSERT_NE(alerts, nullptr);
    ASSERT_TRUE(alerts->Raise("upload.failures", "s", "").ok());
  }
  {
    std::ofstream out(LogPath(), std::ios::app);
    out << "{\"event\":\"clear\",\"seq\":1,\"id\":\"hardware.disk";  // torn last line
  }
  auto alerts = Open();
  ASSERT_NE(alerts, nullptr);
  EXPECT_TRUE(alerts->IsActive("hardware.disk_errors", "sda"));
  EXPECT_TRUE(alerts->IsActive("upload.failures", "s"));
  EXPECT_EQ(alerts->Active().size(), 2u);
}

TEST_F(AlertsTest, ActiveAlertsSurviveRotationOfTheLog) {
  AlertsOptions o;
  o.log_max_bytes = 2000;  // a few lines a file
  {
    auto alerts = Open(o);
    ASSERT_NE(alerts, nullptr);
    ASSERT_TRUE(alerts->Raise("certificate.expiring", "box", "expires 2026-02-01").ok());
    // Enough changes to rotate the raise line out of alerts.log, .1 and .2.
    for (int i = 0; i < 60; ++i) {
      ASSERT_TRUE(alerts->Raise("upload.failures", "share", std::to_string(i)).ok());
      alerts->Clear("upload.failures", "share");
    }
  }
  // The raise line is gone; what kept the alert are the "active" lines of the newer files.
  ASSERT_TRUE(platform::PathExists(LogPath() + ".2"));
  int raise_lines = 0;
  int active_lines = 0;
  for (const char* suffix : {".2", ".1", ""}) {
    std::istringstream lines(ReadFile(LogPath() + suffix));
    for (std::string line; std::getline(lines, line);) {
      auto j = nlohmann::json::parse(line);
      if (j.at("id") != "certificate.expiring") continue;
      if (j.at("event") == "raise") ++raise_lines;
      if (j.at("event") == "active") ++active_lines;
    }
  }
  EXPECT_EQ(raise_lines, 0);
  EXPECT_GT(active_lines, 0);
  auto alerts = Open(o);
  ASSERT_NE(alerts, nullptr);
  auto active = alerts->Active();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].id, "certificate.expiring");
  EXPECT_EQ(active[0].detail, "expires 2026-02-01");
  EXPECT_EQ(active[0].seq, 1u);
}

// ---------------------------------------------------------------------------------------------
// Webhook

// A local HTTP server that records the POSTs to /hook and answers with `statuses` in turn
// (200 once they run out).
class WebhookServer {
 public:
  explicit WebhookServer(std::vector<int> statuses = {}) : statuses_(std::move(statuses)) {
    router_.Add(http::beast_http::verb::post, "/hook", [this](const http::Request& req) {
      int status = 200;
      {
        std::lock_guard<std::mutex> l(mu_);
        bodies_.push_back(req.body());
        content_types_.push_back(std::string(req[http::beast_http::field::content_type]));
        if (!statuses_.empty()) {
          status = statuses_.front();
          statuses_.erase(statuses_.begin());
        }
      }
      if (gate_) gate_->wait();
      return http::MakeResponse(req, static_cast<http::beast_http::status>(status), "text/plain",
                                "ok");
    });
    server_ = std::make_unique<http::HttpServer>(http::ServerOptions{}, router_);
    Status s = server_->Start();
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  ~WebhookServer() { server_->Stop(); }

  // Handlers wait for `gate` before they answer.
  void Hold(std::shared_future<void> gate) { gate_ = std::move(gate); }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + "/hook";
  }
  size_t calls() {
    std::lock_guard<std::mutex> l(mu_);
    return bodies_.size();
  }
  std::vector<std::string> bodies() {
    std::lock_guard<std::mutex> l(mu_);
    return bodies_;
  }
  std::vector<std::string> content_types() {
    std::lock_guard<std::mutex> l(mu_);
    return content_types_;
  }

 private:
  std::mutex mu_;
  std::vector<int> statuses_;
  std::vector<std::string> bodies_;
  std::vector<std::string> content_types_;
  std::optional<std::shared_future<void>> gate_;
  http::Router router_;
  std::unique_ptr<http::HttpServer> server_;
};

class AlertWebhookTest : public AlertsTest {};

TEST_F(AlertWebhookTest, PostsEachChangeAsJson) {
  WebhookServer server;
  AlertsOptions o;
  o.webhook = server.url();
  auto alerts = Open(o);
  ASSERT_NE(alerts, nullptr);
  ASSERT_TRUE(alerts->Raise("upload.budget_spent", "", "2G a day").ok());
  alerts->Clear("upload.budget_spent", "");
  ASSERT_TRUE(WaitFor([&] { return alerts->webhook_delivered() == 2; }));
  EXPECT_EQ(alerts->webhook_failed(), 0u);

  auto bodies = server.bodies();
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_EQ(server.content_types().at(0), "application/json");
  auto raise = nlohmann::json::parse(bodies[0]);
  EXPECT_EQ(raise.at("event"), "raise");
  EXPECT_EQ(raise.at("id"), "upload.budget_spent");
  EXPECT_EQ(raise.at("category"), "upload");
  EXPECT_EQ(raise.at("severity"), "info");
  EXPECT_EQ(raise.at("title"), FindAlert("upload.budget_spent")->title);
  EXPECT_EQ(raise.at("action"), FindAlert("upload.budget_spent")->action);
  EXPECT_EQ(raise.at("detail"), "2G a day");
  EXPECT_EQ(raise.at("seq"), 1);
  EXPECT_EQ(raise.at("count"), 1);
  EXPECT_EQ(raise.at("raised_unix"), NowUnix());
  EXPECT_EQ(raise.at("cleared_unix"), 0);
  EXPECT_EQ(raise.at("time"), "2026-01-01T00:00:00.000Z");
  auto clear = nlohmann::json::parse(bodies[1]);
  EXPECT_EQ(clear.at("event"), "clear");
  EXPECT_EQ(clear.at("seq"), 1);
  EXPECT_EQ(clear.at("cleared_unix"), NowUnix());
}

TEST_F(AlertWebhookTest, RetriesAfterAServerError) {
  WebhookServer server({500, 503});
  AlertsOptions o;
  o.webhook = server.url();
  o.webhook_retry_base_ms = 10;
  auto alerts = Open(o);
  ASSERT_NE(alerts, nullptr);
  ASSERT_TRUE(alerts->Raise("cloud.auth_failed", "acct", "403").ok());
  ASSERT_TRUE(WaitFor([&] { return alerts->webhook_delivered() == 1; }));
  EXPECT_EQ(server.calls(), 3u);
  EXPECT_EQ(alerts->webhook_failed(), 0u);
  auto bodies = server.bodies();
  EXPECT_EQ(bodies[0], bodies[2]);  // the same post again
}

TEST_F(AlertWebhookTest, GivesUpAfterFiveTries) {
  WebhookServer server({500, 500, 500, 500, 500, 500});
  AlertsOptions o;
  o.webhook = server.url();
  o.webhook_retry_base_ms = 5;
  auto alerts = Open(o);
  ASSERT_NE(alerts, nullptr);
  ASSERT_TRUE(alerts->Raise("cloud.auth_failed", "acct", "403").ok());
  ASSERT_TRUE(WaitFor([&] { return alerts->webhook_failed() == 1; }));
  EXPECT_EQ(server.calls(), 5u);
  EXPECT_EQ(alerts->webhook_delivered(), 0u);
}

TEST_F(AlertWebhookTest, UnreachableWebhookDoesNotBlockRaiseAndCountsFailed) {
  AlertsOptions o;
  o.webhook = "http://127.0.0.1:" + std::to_string(ClosedPort()) + "/hook";
  o.webhook_retry_base_ms = 5;
  auto alerts = Open(o);
  ASSERT_NE(alerts, nullptr);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(alerts->Raise("hardware.clock_skew", "", std::to_string(i)).ok());
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 200ms);
  EXPECT_TRUE(alerts->IsActive("hardware.clock_skew", ""));
  ASSERT_TRUE(WaitFor([&] { return alerts->webhook_failed() == 3; }));
  EXPECT_EQ(alerts->webhook_delivered(), 0u);
}

TEST_F(AlertWebhookTest, FullQueueDropsTheOldestAndCountsThemFailed) {
  WebhookServer server;
  std::promise<void> release;
  server.Hold(release.get_future().share());
  AlertsOptions o;
  o.webhook = server.url();
  auto alerts = Open(o);
  ASSERT_NE(alerts, nullptr);
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::err);  // 1010 lines of warnings otherwise
  ASSERT_TRUE(alerts->Raise("upload.failures", "s", "first").ok());
  ASSERT_TRUE(WaitFor([&] { return server.calls() == 1; }));  // in flight, held
  for (int i = 0; i < 1005; ++i) {
    ASSERT_TRUE(alerts->Raise("upload.failures", "s", std::to_string(i)).ok());
  }
  EXPECT_EQ(alerts->webhook_failed(), 5u);
  release.set_value();
  ASSERT_TRUE(WaitFor([&] { return alerts->webhook_delivered() == 1001; }, 8s));
  spdlog::set_level(level);
  EXPECT_EQ(alerts->webhook_failed(), 5u);
  // The newest survive: the last post is the last raise.
  auto last = nlohmann::json::parse(server.bodies().back());
  EXPECT_EQ(last.at("detail"), "1004");
  EXPECT_EQ(last.at("count"), 1006);
}

TEST_F(AlertWebhookTest, DestructorDoesNotWaitForRetries) {
  AlertsOptions o;
  o.webhook = "http://127.0.0.1:" + std::to_string(ClosedPort()) + "/hook";
  o.webhook_retry_base_ms = 60'000;
  auto alerts = Open(o);
  ASSERT_NE(alerts, nullptr);
  ASSERT_TRUE(alerts->Raise("service.nfs_down", "", "").ok());
  std::this_thread::sleep_for(50ms);  // the first try fails; the thread waits to retry
  auto start = std::chrono::steady_clock::now();
  alerts.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST_F(AlertWebhookTest, RejectsAWebhookThatIsNotHttp) {
  AlertsOptions o;
  o.dir = dir_ / "alerts";
  o.webhook = "ftp://example.com/hook";
  EXPECT_EQ(Alerts::Open(o, clock_).status().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Jobs

class JobsTest : public ::testing::Test {
 protected:
  FakeClock clock_;
};

// Runs until cancelled; `started` is set when it runs.
std::function<Status(JobContext&)> UntilCancelled(std::atomic<bool>* started) {
  return [started](JobContext& ctx) {
    started->store(true);
    while (!ctx.cancelled()) std::this_thread::sleep_for(1ms);
    return Status::Ok();
  };
}

TEST_F(JobsTest, SucceedsWithResultProgressAndFile) {
  Jobs jobs(clock_);
  std::promise<void> go;
  std::shared_future<void> gate = go.get_future().share();
  std::string id = jobs.Start("support-package", "admin", [gate](JobContext& ctx) {
    ctx.Progress(0.5, "collecting logs");
    gate.wait();
    ctx.SetResult(R"({"files":3})");
    ctx.SetFile("/tmp/pkg.tar.zst", "support.tar.zst");
    return Status::Ok();
  });
  EXPECT_TRUE(std::regex_match(id, std::regex("job-[0-9a-f]{12}"))) << id;
  ASSERT_TRUE(WaitFor([&] { return jobs.Get(id)->progress == 0.5; }));
  auto running = jobs.Get(id);
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(running->state, JobState::kRunning);
  EXPECT_EQ(running->message, "collecting logs");
  EXPECT_EQ(running->kind, "support-package");
  EXPECT_EQ(running->created_by, "admin");
  EXPECT_EQ(running->created_unix, FakeClock::kStartUnixNanos / 1'000'000'000);

  clock_.Advance(5s);
  go.set_value();
  auto done = jobs.Wait(id, 5000);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, JobState::kSucceeded);
  EXPECT_EQ(done->progress, 1.0);
  EXPECT_EQ(done->result, R"({"files":3})");
  EXPECT_EQ(done->file, "/tmp/pkg.tar.zst");
  EXPECT_EQ(done->download_name, "support.tar.zst");
  EXPECT_EQ(done->error, "");
  EXPECT_EQ(done->finished_unix, done->created_unix + 5);
  EXPECT_EQ(JobStateName(done->state), "succeeded");
}

TEST_F(JobsTest, FailureKeepsTheStatusMessage) {
  Jobs jobs(clock_);
  std::string id = jobs.Start("refresh", "admin", [](JobContext&) {
    return UnavailableError("the storage account does not answer");
  });
  auto done = jobs.Wait(id, 5000);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, JobState::kFailed);
  EXPECT_EQ(done->error, "the storage account does not answer");
  EXPECT_EQ(JobStateName(done->state), "failed");
}

TEST_F(JobsTest, CancelStopsARunningJob) {
  Jobs jobs(clock_);
  std::atomic<bool> started{false};
  std::string id = jobs.Start("drain", "admin", UntilCancelled(&started));
  ASSERT_TRUE(WaitFor([&] { return started.load(); }));
  EXPECT_EQ(jobs.Get(id)->state, JobState::kRunning);
  ASSERT_TRUE(jobs.Cancel(id).ok());
  auto done = jobs.Wait(id, 5000);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, JobState::kCancelled);  // though fn returned Ok
  EXPECT_EQ(done->error, "");
}

TEST_F(JobsTest, CancelledQueuedJobNeverRuns) {
  Jobs jobs(clock_, 1);
  std::atomic<bool> first_started{false};
  std::string first = jobs.Start("drain", "admin", UntilCancelled(&first_started));
  ASSERT_TRUE(WaitFor([&] { return first_started.load(); }));
  std::atomic<bool> second_ran{false};
  std::string second = jobs.Start("refresh", "admin", [&](JobContext&) {
    second_ran = true;
    return Status::Ok();
  });
  EXPECT_EQ(jobs.Get(second)->state, JobState::kQueued);
  ASSERT_TRUE(jobs.Cancel(second).ok());
  auto info = jobs.Get(second);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, JobState::kCancelled);
  EXPECT_EQ(info->started_unix, 0);
  ASSERT_TRUE(jobs.Cancel(first).ok());
  EXPECT_EQ(jobs.Wait(first, 5000)->state, JobState::kCancelled);
  // The worker is free now; the cancelled job must still not run.
  std::string third = jobs.Start("refresh", "admin", [](JobContext&) { return Status::Ok(); });
  EXPECT_EQ(jobs.Wait(third, 5000)->state, JobState::kSucceeded);
  EXPECT_FALSE(second_ran.load());
  info = jobs.Get(second);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, JobState::kCancelled);
  EXPECT_EQ(info->started_unix, 0);
}

TEST_F(JobsTest, OneWorkerRunsOneJobAtATime) {
  Jobs jobs(clock_, 1);
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  std::promise<void> go;
  std::shared_future<void> gate = go.get_future().share();
  auto fn = [&, gate](JobContext&) {
    int now = ++running;
    most = std::max(most.load(), now);
    gate.wait();
    --running;
    return Status::Ok();
  };
  std::string a = jobs.Start("refresh", "admin", fn);
  std::string b = jobs.Start("refresh", "admin", fn);
  ASSERT_TRUE(WaitFor([&] { return jobs.Get(a)->state == JobState::kRunning; }));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(jobs.Get(b)->state, JobState::kQueued);
  go.set_value();
  EXPECT_EQ(jobs.Wait(a, 5000)->state, JobState::kSucceeded);
  EXPECT_EQ(jobs.Wait(b, 5000)->state, JobState::kSucceeded);
  EXPECT_EQ(most.load(), 1);
}

TEST_F(JobsTest, TwoWorkersRunTwoJobsAtOnce) {
  Jobs jobs(clock_, 2);
  std::atomic<bool> a_started{false};
  std::atomic<bool> b_started{false};
  std::string a = jobs.Start("drain", "admin", UntilCancelled(&a_started));
  std::string b = jobs.Start("drain", "admin", UntilCancelled(&b_started));
  std::string c = jobs.Start("drain", "admin", [](JobContext&) { return Status::Ok(); });
  ASSERT_TRUE(WaitFor([&] { return a_started && b_started; }));
  EXPECT_EQ(jobs.Get(c)->state, JobState::kQueued);
  ASSERT_TRUE(jobs.Cancel(a).ok());
  EXPECT_EQ(jobs.Wait(c, 5000)->state, JobState::kSucceeded);
  ASSERT_TRUE(jobs.Cancel(b).ok());
}

TEST_F(JobsTest, GetListAndNotFound) {
  Jobs jobs(clock_);
  std::string a = jobs.Start("refresh", "alice", [](JobContext&) { return Status::Ok(); });
  clock_.Advance(1s);
  std::string b = jobs.Start("diagnostics", "bob", [](JobContext&) { return Status::Ok(); });
  EXPECT_NE(a, b);
  ASSERT_TRUE(jobs.Wait(a, 5000).ok());
  ASSERT_TRUE(jobs.Wait(b, 5000).ok());
  auto list = jobs.List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, b);  // newest first
  EXPECT_EQ(list[0].kind, "diagnostics");
  EXPECT_EQ(list[1].id, a);
  EXPECT_EQ(list[1].created_by, "alice");
  EXPECT_EQ(jobs.Get(a)->kind, "refresh");
  EXPECT_EQ(jobs.Get("job-000000000000").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(jobs.Cancel("job-000000000000").code(), StatusCode::kNotFound);
  EXPECT_EQ(jobs.Wait("job-000000000000", 10).status().code(), StatusCode::kNotFound);
}

TEST_F(JobsTest, CancelOfAFinishedJobIsFailedPrecondition) {
  Jobs jobs(clock_);
  std::string id = jobs.Start("refresh", "admin", [](JobContext&) { return Status::Ok(); });
  ASSERT_EQ(jobs.Wait(id, 5000)->state, JobState::kSucceeded);
  EXPECT_EQ(jobs.Cancel(id).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(jobs.Get(id)->state, JobState::kSucceeded);
}

TEST_F(JobsTest, WaitReturnsTheRunningInfoAfterItsTimeout) {
  Jobs jobs(clock_);
  std::atomic<bool> started{false};
  std::string id = jobs.Start("drain", "admin", UntilCancelled(&started));
  ASSERT_TRUE(WaitFor([&] { return started.load(); }));
  auto start = std::chrono::steady_clock::now();
  auto info = jobs.Wait(id, 50);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, JobState::kRunning);
  ASSERT_TRUE(jobs.Cancel(id).ok());
}

TEST_F(JobsTest, KeepsTheNewestHundredFinishedJobs) {
  Jobs jobs(clock_, 1);
  std::vector<std::string> ids;
  for (int i = 0; i < 105; ++i) {
    ids.push_back(jobs.Start("refresh", "admin", [](JobContext&) { return Status::Ok(); }));
  }
  ASSERT_EQ(jobs.Wait(ids.back(), 5000)->state, JobState::kSucceeded);
  EXPECT_EQ(jobs.List().size(), 100u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(jobs.Get(ids[i]).status().code(), StatusCode::kNotFound) << i;
  }
  EXPECT_TRUE(jobs.Get(ids[5]).ok());
  EXPECT_EQ(jobs.List().back().id, ids[5]);
}

TEST_F(JobsTest, DestructorCancelsARunningJobPromptly) {
  std::atomic<bool> started{false};
  std::atomic<bool> queued_ran{false};
  auto jobs = std::make_unique<Jobs>(clock_, 1);
  jobs->Start("drain", "admin", UntilCancelled(&started));
  jobs->Start("refresh", "admin", [&](JobContext&) {
    queued_ran = true;
    return Status::Ok();
  });
  ASSERT_TRUE(WaitFor([&] { return started.load(); }));
  auto start = std::chrono::steady_clock::now();
  jobs.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_FALSE(queued_ran.load());
}

}  // namespace
}  // namespace fieldstack::management
