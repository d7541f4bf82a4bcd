// A real mosquitto (MosquittoBroker) and our Paho-based MqttClient: users and passwords, topic
// filters, TLS, persistent sessions across client and broker restarts, the supervisor bringing
// back a killed broker, handler failures, and the central promise: a subscriber killed in the
// middle of its handler loses no message (the broker had no PUBACK for it).
//
// The crash test runs this binary again as the subscriber (FS_MQTT_CHILD set; see
// MaybeRunChild) so that it can die by SIGKILL.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <thread>

#include "compute/broker.h"
#include "compute/mqtt_client.h"
#include "platform/file.h"
#include "platform/process.h"
#include "test/support/temp_dir.h"

namespace fieldstack::compute {
namespace {

using std::chrono::milliseconds;

// ---- The child: a subscriber that records what its handler took, and may die in it. ----
//
// Environment: FS_MQTT_CHILD=1, FS_MQTT_URI, FS_MQTT_PERSIST (persistence dir), FS_MQTT_OUT
// (file of handled message numbers, one per line, each fsynced), FS_MQTT_DIE_AT (SIGKILL itself
// in the handler of this message, before recording it; 0: never), FS_MQTT_EXPECT (exit 0 once
// this many distinct numbers are recorded; exit 3 after 20 s).
int RunChild() {
  std::string out = std::getenv("FS_MQTT_OUT");
  int die_at = std::atoi(std::getenv("FS_MQTT_DIE_AT"));
  int expect = std::atoi(std::getenv("FS_MQTT_EXPECT"));
  auto client = MqttClient::Create({.server_uri = std::getenv("FS_MQTT_URI"),
                                    .client_id = "crash-subscriber",
                                    .persistence_dir = std::getenv("FS_MQTT_PERSIST"),
                                    .keepalive_s = 5});
  if (!client.ok()) return 2;
  std::mutex mu;
  std::set<int> seen;  // recorded by this run and earlier ones
  if (auto before = platform::ReadFileToString(out); before.ok()) {
    std::istringstream in(*before);
    for (int n; in >> n;) seen.insert(n);
  }
  Status s = (*client)->Subscribe({"crash/#"}, 1, [&](const MqttMessage& m) {
    int n = std::atoi(m.payload.c_str());
    if (n == die_at) ::kill(::getpid(), SIGKILL);  // taken by Paho, not yet durable anywhere
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    std::string line = std::to_string(n) + "\n";
    if (fd < 0 || ::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
        ::fsync(fd) != 0) {
      if (fd >= 0) ::close(fd);
      return InternalError("cannot record");
    }
    ::close(fd);
    std::lock_guard<std::mutex> l(mu);
    seen.insert(n);
    return Status::Ok();
  });
  if (!s.ok() || !(*client)->Start().ok()) return 2;
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (static_cast<int>(seen.size()) >= expect) {
        (*client)->Stop();
        return 0;
      }
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  return 3;
}

[[maybe_unused]] const int kChildMode = [] {
  if (std::getenv("FS_MQTT_CHILD") != nullptr) ::_exit(RunChild());
  return 0;
}();

// ---- Helpers. ----

struct CommandRun {
  int rc;
  std::string out;
};

CommandRun Shell(const std::string& cmd) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

// Collects what a handler receives.
class Inbox {
 public:
  MessageHandler Handler() {
    return [this](const MqttMessage& m) {
      std::lock_guard<std::mutex> l(mu_);
      messages_.push_back(m);
      cv_.notify_all();
      return Status::Ok();
    };
  }
  // The first `n` messages, or fewer after `timeout_ms`.
  std::vector<MqttMessage> WaitFor(size_t n, int timeout_ms = 10000) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, milliseconds(timeout_ms), [&] { return messages_.size() >= n; });
    return messages_;
  }
  std::set<std::string> Payloads() {
    std::lock_guard<std::mutex> l(mu_);
    std::set<std::string> p;
    for (const auto& m : messages_) p.insert(m.payload);
    return p;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<MqttMessage> messages_;
};

class MqttTest : public ::testing::Test {
 protected:
  BrokerOptions Options(std::vector<MqttUser> users = {}) {
    return {.data_dir = dir_ / "broker", .port = 0, .users = std::move(users)};
  }
  void StartBroker(BrokerOptions o) {
    auto b = MosquittoBroker::Start(std::move(o));
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    broker_ = std::move(*b);
  }
  std::unique_ptr<MqttClient> Client(const std::string& id, MqttClientOptions o = {}) {
    if (o.server_uri.empty()) o.server_uri = broker_->uri();
    o.client_id = id;
    o.persistence_dir = dir_ / ("client-" + id);
    o.min_retry_ms = 100;
    o.max_retry_ms = 500;
    auto c = MqttClient::Create(std::move(o));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }
  std::unique_ptr<MqttClient> Connected(const std::string& id, MqttClientOptions o = {}) {
    auto c = Client(id, std::move(o));
    if (c == nullptr) return nullptr;
    EXPECT_TRUE(c->Start().ok());
    Status s = c->WaitConnected(10000);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return c;
  }
  std::string Pub(const std::string& auth) {
    return "mosquitto_pub -h 127.0.0.1 -p " + std::to_string(broker_->port()) +
           " -q 1 -t hello -m hi " + auth;
  }

  testing::TempDir dir_;
  std::unique_ptr<MosquittoBroker> broker_;
};

TEST_F(MqttTest, BrokerWithUsersRefusesAnonymousAndWrongPasswords) {
  StartBroker(Options({{"alice", "s3cret-pw"}, {"bob", "other"}}));
  EXPECT_NE(Shell(Pub("")).rc, 0);
  EXPECT_NE(Shell(Pub("-u alice -P wrong")).rc, 0);
  CommandRun ok = Shell(Pub("-u alice -P s3cret-pw"));
  EXPECT_EQ(ok.rc, 0) << ok.out;

  auto conf = platform::ReadFileToString(broker_->config_path());
  ASSERT_TRUE(conf.ok());
  EXPECT_NE(conf->find("allow_anonymous false"), std::string::npos);
  auto passwd = platform::ReadFileToString(dir_ / "broker/passwd");
  ASSERT_TRUE(passwd.ok());
  EXPECT_EQ(passwd->find("s3cret-pw"), std::string::npos);  // hashed
  EXPECT_NE(passwd->find("alice:"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "broker/passwd").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto wrong = Client("wrong", {.username = "alice", .password = "nope"});
  ASSERT_TRUE(wrong->Start().ok());
  EXPECT_EQ(wrong->WaitConnected(3000).code(), StatusCode::kUnauthenticated);
  auto right = Connected("right", {.username = "bob", .password = "other"});
  EXPECT_TRUE(right->connected());
  EXPECT_FALSE(broker_->status().last_error.size());
}

TEST_F(MqttTest, BrokerRefusesUnsafeOptions) {
  BrokerOptions o = Options();
  o.address = "0.0.0.0";  // no users: anonymous, off the box
  EXPECT_EQ(MosquittoBroker::Start(o).status().code(), StatusCode::kInvalidArgument);
  o = Options({{"a:b", "x"}});
  EXPECT_EQ(MosquittoBroker::Start(o).status().code(), StatusCode::kInvalidArgument);
  o = Options({{"a", "line\nbreak"}});
  EXPECT_EQ(MosquittoBroker::Start(o).status().code(), StatusCode::kInvalidArgument);
  o = Options();
  o.data_dir = "relative";
  EXPECT_EQ(MosquittoBroker::Start(o).status().code(), StatusCode::kInvalidArgument);
  auto conf = MosquittoBroker::RenderConfig(Options(), 1883, 0);
  ASSERT_TRUE(conf.ok());
  EXPECT_NE(conf->find("allow_anonymous true"), std::string::npos);
  EXPECT_NE(conf->find("persistence true"), std::string::npos);
  EXPECT_NE(conf->find("max_queued_messages 100000"), std::string::npos);
}

TEST_F(MqttTest, RoundTripWithTopicFilters) {
  StartBroker(Options());
  auto sub = Client("sub");
  Inbox inbox;
  ASSERT_TRUE(sub->Subscribe({"sensors/+/temp", "alarms/#"}, 1, inbox.Handler()).ok());
  ASSERT_TRUE(sub->Start().ok());
  ASSERT_TRUE(sub->WaitConnected(5000).ok());
  auto pub = Connected("pub");
  ASSERT_TRUE(pub->Publish("sensors/a/temp", R"({"c":21.5})", 1, false).ok());
  ASSERT_TRUE(pub->Publish("sensors/a/humidity", "no", 1, false).ok());
  ASSERT_TRUE(pub->Publish("sensors/a/b/temp", "no", 1, false).ok());
  ASSERT_TRUE(pub->Publish("alarms/door/front", "open", 0, false).ok());
  ASSERT_TRUE(pub->Publish("alarms", "parent", 1, false).ok());
  auto got = inbox.WaitFor(3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].topic, "sensors/a/temp");
  EXPECT_EQ(got[0].payload, R"({"c":21.5})");
  EXPECT_EQ(got[0].qos, 1);
  EXPECT_EQ(inbox.Payloads(), (std::set<std::string>{R"({"c":21.5})", "open", "parent"}));
  // A subscription made while connected applies at once.
  Inbox later;
  ASSERT_TRUE(sub->Subscribe({"late"}, 0, later.Handler()).ok());
  ASSERT_TRUE(pub->Publish("late", "x", 1, true).ok());
  EXPECT_EQ(later.WaitFor(1).size(), 1u);
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(inbox.Payloads().size(), 3u);
  EXPECT_GE(pub->counters().published, 6u);
  EXPECT_EQ(sub->counters().handled, 4u);
}

TEST_F(MqttTest, TlsListenerWithSelfSignedCertificate) {
  std::string cert = dir_ / "cert.pem", key = dir_ / "key.pem";
  CommandRun gen = Shell(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
      " -addext subjectAltName=IP:127.0.0.1 -keyout " +
      key + " -out " + cert);
  ASSERT_EQ(gen.rc, 0) << gen.out;
  BrokerOptions o = Options({{"dev", "pw"}});
  o.tls = BrokerTlsOptions{.cert_file = cert, .key_file = key, .port = 0};
  StartBroker(o);
  ASSERT_NE(broker_->tls_port(), 0);
  std::string tls_uri = "ssl://127.0.0.1:" + std::to_string(broker_->tls_port());
  MqttClientOptions co{.server_uri = tls_uri, .username = "dev", .password = "pw", .ca_file = cert};
  auto sub = Client("tls-sub", co);
  Inbox inbox;
  ASSERT_TRUE(sub->Subscribe({"secure/#"}, 1, inbox.Handler()).ok());
  ASSERT_TRUE(sub->Start().ok());
  Status s = sub->WaitConnected(10000);
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto pub = Connected("tls-pub", co);
  ASSERT_TRUE(pub->Publish("secure/a", "over tls", 1, false).ok());
  auto got = inbox.WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "over tls");

  // Plain MQTT to the TLS port, and TLS without trusting the certificate: no connection.
  auto plain =
      Client("plain", {.server_uri = "tcp://127.0.0.1:" + std::to_string(broker_->tls_port()),
                       .username = "dev",
                       .password = "pw",
                       .connect_timeout_s = 2});
  ASSERT_TRUE(plain->Start().ok());
  EXPECT_EQ(plain->WaitConnected(2500).code(), StatusCode::kUnavailable);
  auto untrusted =
      Client("untrusted",
             {.server_uri = tls_uri, .username = "dev", .password = "pw", .connect_timeout_s = 2});
  ASSERT_TRUE(untrusted->Start().ok());
  EXPECT_EQ(untrusted->WaitConnected(2500).code(), StatusCode::kUnavailable);
}

TEST_F(MqttTest, QueuedMessagesSurviveSubscriberDowntimeAndBrokerRestart) {
  StartBroker(Options());
  {
    auto sub = Client("durable");
    Inbox unused;
    ASSERT_TRUE(sub->Subscribe({"q/#"}, 1, unused.Handler()).ok());
    ASSERT_TRUE(sub->Start().ok());
    ASSERT_TRUE(sub->WaitConnected(5000).ok());
  }  // gone; the broker keeps its session
  {
    auto pub = Connected("pub1");
    for (int i = 1; i <= 10; ++i)
      ASSERT_TRUE(pub->Publish("q/x", std::to_string(i), 1, false).ok());
  }
  ASSERT_TRUE(broker_->Reload(Options()).ok());  // stop (saves its database) and start
  {
    auto pub = Connected("pub2");
    for (int i = 11; i <= 20; ++i) {
      ASSERT_TRUE(pub->Publish("q/x", std::to_string(i), 1, false).ok());
    }
  }
  auto sub = Client("durable");
  Inbox inbox;
  ASSERT_TRUE(sub->Subscribe({"q/#"}, 1, inbox.Handler()).ok());
  ASSERT_TRUE(sub->Start().ok());
  auto got = inbox.WaitFor(20);
  ASSERT_EQ(got.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(got[i].payload, std::to_string(i + 1));  // in order
}

// The promise of this component: a message is acknowledged only after the handler took it.
TEST_F(MqttTest, SubscriberKilledInItsHandlerLosesNothing) {
  StartBroker(Options());
  constexpr int kCount = 60, kDieAt = 23;
  std::string persist = dir_ / "crash-persist", out = dir_ / "handled.txt";
  {  // the session, so that the broker queues for it
    auto c = MqttClient::Create({.server_uri = broker_->uri(),
                                 .client_id = "crash-subscriber",
                                 .persistence_dir = persist});
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(
        (*c)->Subscribe({"crash/#"}, 1, [](const MqttMessage&) { return Status::Ok(); }).ok());
    ASSERT_TRUE((*c)->Start().ok());
    ASSERT_TRUE((*c)->WaitConnected(5000).ok());
  }
  {
    auto pub = Connected("crash-pub");
    for (int i = 1; i <= kCount; ++i) {
      ASSERT_TRUE(pub->Publish("crash/n", std::to_string(i), 1, false).ok());
    }
  }
  auto run_child = [&](int die_at) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::setenv("FS_MQTT_CHILD", "1", 1);
      ::setenv("FS_MQTT_URI", broker_->uri().c_str(), 1);
      ::setenv("FS_MQTT_PERSIST", persist.c_str(), 1);
      ::setenv("FS_MQTT_OUT", out.c_str(), 1);
      ::setenv("FS_MQTT_DIE_AT", std::to_string(die_at).c_str(), 1);
      ::setenv("FS_MQTT_EXPECT", std::to_string(kCount).c_str(), 1);
      ::execl("/proc/self/exe", "compute_mqtt_test", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
  };
  int first = run_child(kDieAt);
  ASSERT_TRUE(WIFSIGNALED(first) && WTERMSIG(first) == SIGKILL) << first;
  auto before = platform::ReadFileToString(out);
  ASSERT_TRUE(before.ok());
  std::set<int> handled_before;
  std::istringstream in1(*before);
  for (int n; in1 >> n;) handled_before.insert(n);
  EXPECT_EQ(handled_before.count(kDieAt), 0u);
  EXPECT_EQ(handled_before.size(), static_cast<size_t>(kDieAt - 1));

  int second = run_child(0);
  ASSERT_TRUE(WIFEXITED(second) && WEXITSTATUS(second) == 0) << second;
  auto after = platform::ReadFileToString(out);
  ASSERT_TRUE(after.ok());
  std::set<int> handled;
  std::istringstream in2(*after);
  for (int n; in2 >> n;) handled.insert(n);
  for (int i = 1; i <= kCount; ++i) EXPECT_EQ(handled.count(i), 1u) << "message " << i << " lost";
}

TEST_F(MqttTest, SupervisorRestartsKilledMosquittoAndClientsReconnect) {
  StartBroker(Options());
  auto sub = Client("watcher", {.keepalive_s = 2});
  Inbox inbox;
  ASSERT_TRUE(sub->Subscribe({"after/#"}, 1, inbox.Handler()).ok());
  ASSERT_TRUE(sub->Start().ok());
  ASSERT_TRUE(sub->WaitConnected(5000).ok());
  pid_t old = broker_->status().pid;
  ASSERT_GT(old, 0);
  ASSERT_EQ(::kill(old, SIGKILL), 0);
  for (int i = 0; i < 100 && !(broker_->status().restarts >= 1 && broker_->Healthy()); ++i) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(broker_->Healthy());
  BrokerStatus st = broker_->status();
  EXPECT_GE(st.restarts, 1);
  EXPECT_NE(st.pid, old);
  for (int i = 0; i < 100 && sub->counters().reconnects == 0; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_TRUE(sub->WaitConnected(5000).ok());
  EXPECT_GE(sub->counters().reconnects, 1u);
  auto pub = Connected("after-pub");
  ASSERT_TRUE(pub->Publish("after/kill", "back", 1, false).ok());
  EXPECT_EQ(inbox.WaitFor(1).size(), 1u);
}

TEST_F(MqttTest, FailingHandlerIsRetriedInOrderAndKeptAcrossStop) {
  StartBroker(Options());
  auto sub = Client("flaky");
  std::mutex mu;
  std::vector<std::string> order;
  int failures_left = 3;
  ASSERT_TRUE(sub->Subscribe({"f"}, 1,
                             [&](const MqttMessage& m) {
                               std::lock_guard<std::mutex> l(mu);
                               if (m.payload == "2" && failures_left > 0) {
                                 --failures_left;
                                 return UnavailableError("buffer full");
                               }
                               order.push_back(m.payload);
                               return Status::Ok();
                             })
                  .ok());
  ASSERT_TRUE(sub->Start().ok());
  ASSERT_TRUE(sub->WaitConnected(5000).ok());
  auto pub = Connected("flaky-pub");
  for (const char* p : {"1", "2", "3"}) ASSERT_TRUE(pub->Publish("f", p, 1, false).ok());
  for (int i = 0; i < 50; ++i) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (order.size() == 3) break;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  {
    std::lock_guard<std::mutex> l(mu);
    EXPECT_EQ(order, (std::vector<std::string>{"1", "2", "3"}));
  }
  EXPECT_EQ(sub->counters().handler_failures, 3u);

  // A handler that keeps failing, then Stop: the message is kept (Paho's persistence) and the
  // next client on the same persistence directory gets it.
  auto stuck = Client("stuck");
  std::atomic<int> attempts{0};
  ASSERT_TRUE(stuck
                  ->Subscribe({"s"}, 1,
                              [&](const MqttMessage&) {
                                ++attempts;
                                return UnavailableError("disk full");
                              })
                  .ok());
  ASSERT_TRUE(stuck->Start().ok());
  ASSERT_TRUE(stuck->WaitConnected(5000).ok());
  // From another process: Paho has one receive thread for all clients of a process, and the
  // failing handler holds it (see mqtt_client.h), so `pub` would get no PUBACK meanwhile.
  CommandRun precious = Shell("mosquitto_pub -h 127.0.0.1 -p " + std::to_string(broker_->port()) +
                              " -q 1 -t s -m precious");
  ASSERT_EQ(precious.rc, 0) << precious.out;
  for (int i = 0; i < 50 && attempts < 2; ++i) std::this_thread::sleep_for(milliseconds(50));
  EXPECT_GE(attempts.load(), 2);
  stuck.reset();
  auto again = Client("stuck");
  Inbox inbox;
  ASSERT_TRUE(again->Subscribe({"s"}, 1, inbox.Handler()).ok());
  ASSERT_TRUE(again->Start().ok());
  auto got = inbox.WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "precious");
}

TEST_F(MqttTest, BadInputGivesClearErrorsWithoutHanging) {
  std::string p = dir_ / "bad";
  for (const char* uri : {"http://127.0.0.1:1883", "tcp://127.0.0.1", "tcp://:1883",
                          "tcp://127.0.0.1:99999", "127.0.0.1:1883"}) {
    EXPECT_EQ(MqttClient::Create({.server_uri = uri, .client_id = "x", .persistence_dir = p})
                  .status()
                  .code(),
              StatusCode::kInvalidArgument)
        << uri;
  }
  EXPECT_EQ(MqttClient::Create({.server_uri = "tcp://h:1", .client_id = "", .persistence_dir = p})
                .status()
                .code(),
            StatusCode::kInvalidArgument);

  uint16_t closed = platform::FreeTcpPort();
  auto c = MqttClient::Create({.server_uri = "tcp://127.0.0.1:" + std::to_string(closed),
                               .client_id = "nobody",
                               .persistence_dir = p,
                               .connect_timeout_s = 1});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto dup = MqttClient::Create(
      {.server_uri = "tcp://127.0.0.1:1", .client_id = "nobody2", .persistence_dir = p});
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  MqttClient& client = **c;
  auto ok = [](const MqttMessage&) { return Status::Ok(); };
  for (const char* f : {"a/#/b", "a+", "a/b#", ""}) {
    EXPECT_EQ(client.Subscribe({f}, 1, ok).code(), StatusCode::kInvalidArgument) << f;
  }
  EXPECT_EQ(client.Subscribe({"a"}, 2, ok).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client.Publish("a/+", "x", 1, false).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client.Publish("", "x", 1, false).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(client.Start().ok());
  auto t0 = std::chrono::steady_clock::now();
  Status s = client.WaitConnected(1500);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find(std::to_string(closed)), std::string::npos) << s.ToString();
  EXPECT_EQ(client.Publish("a", "x", 1, false, 1000).code(), StatusCode::kUnavailable);
  client.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(client.Publish("a", "x", 1, false).code(), StatusCode::kFailedPrecondition);
}

TEST(MqttTopicTest, FiltersMatchLikeTheSpec) {
  EXPECT_TRUE(MqttClient::TopicMatches("a/+/c", "a/b/c"));
  EXPECT_FALSE(MqttClient::TopicMatches("a/+/c", "a/b/d/c"));
  EXPECT_TRUE(MqttClient::TopicMatches("a/#", "a"));
  EXPECT_TRUE(MqttClient::TopicMatches("a/#", "a/b/c"));
  EXPECT_TRUE(MqttClient::TopicMatches("#", "x/y"));
  EXPECT_FALSE(MqttClient::TopicMatches("#", "$SYS/broker"));
  EXPECT_TRUE(MqttClient::TopicMatches("+/+", "/x"));
  EXPECT_FALSE(MqttClient::TopicMatches("a/b", "a/b/c"));
  EXPECT_TRUE(MqttClient::ValidFilter("+/a/#"));
  EXPECT_FALSE(MqttClient::ValidFilter("a/#/"));
}

}  // namespace
}  // namespace fieldstack::compute
