// Runs the real `fieldstack` binary: start-up on defaults and on a config, /healthz and
// /metrics over HTTP, clean stop on SIGTERM, refusal of a second daemon on one data directory,
// one-line errors for bad configs, and `fieldstack keys rotate`.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cloud/localfs/localfs_store.h"
#include "cloud/s3/s3_store.h"
#include "platform/file.h"
#include "store/store.h"
#include "test/support/daemon_proc.h"
#include "test/support/private_net.h"
#include "test/support/rgw.h"
#include "test/support/temp_dir.h"

namespace fieldstack {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bh = boost::beast::http;

using Proc = testing::DaemonProc;

std::unique_ptr<Proc> Start(const std::vector<std::string>& args, const std::string& cwd,
                            const std::vector<std::string>& env = {}) {
  return testing::StartProc(FS_BINARY, args, cwd, env);
}

bh::response<bh::string_body> HttpGet(int port, const std::string& target) {
  asio::io_context io;
  asio::ip::tcp::socket sock(io);
  sock.connect({asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)});
  bh::request<bh::string_body> req{bh::verb::get, target, 11};
  req.set(bh::field::host, "localhost");
  bh::write(sock, req);
  beast::flat_buffer buf;
  bh::response<bh::string_body> res;
  bh::read(sock, buf, res);
  return res;
}

class DaemonTest : public ::testing::Test {
 protected:
  // A config on free ports. Unless `tls`, the API port speaks plain HTTP and /healthz and
  // /metrics answer without a token (what these tests read).
  std::string WriteConfig(const std::string& extra = "", bool tls = false) {
    std::string path = dir_ / "fieldstack.toml";
    std::string text = "data_dir = \"" + dir_.path() +
                       "/data\"\n[http]\nport = 0\npublic = [\"/healthz\", \"/metrics\"]\n" +
                       (tls ? "" : "[tls]\nallow_http = true\n") + extra;
    EXPECT_TRUE(platform::WriteFileAtomic(path, text).ok());
    return path;
  }
  int Port(Proc& p) {
    std::string rest = p.WaitFor("serving on http://127.0.0.1:");
    EXPECT_FALSE(rest.empty()) << p.output;
    return rest.empty() ? 0 : std::atoi(rest.c_str());
  }
  testing::TempDir dir_;
};

TEST_F(DaemonTest, ServesHealthAndMetricsAndStopsCleanlyOnSigterm) {
  auto p = Start({"serve", "--config", WriteConfig()}, dir_.path());
  int port = Port(*p);
  ASSERT_GT(port, 0);
  auto health = HttpGet(port, "/healthz");
  EXPECT_EQ(health.result(), bh::status::ok);
  EXPECT_NE(health.body().find("\"status\":\"ok\""), std::string::npos) << health.body();
  auto metrics = HttpGet(port, "/metrics");
  EXPECT_EQ(metrics.result(), bh::status::ok);
  EXPECT_NE(metrics.body().find("fieldstack_store_used_bytes{share=\"default\"} 0"),
            std::string::npos)
      << metrics.body();
  EXPECT_EQ(HttpGet(port, "/api/v1/nothing").result(), bh::status::not_found);
  ::kill(p->pid, SIGTERM);
  EXPECT_EQ(p->Wait(), 0) << p->output;
  EXPECT_NE(p->output.find("stopped cleanly"), std::string::npos) << p->output;
  // The data directory is private and holds the store.
  EXPECT_TRUE(platform::PathExists(dir_.path() + "/data/meta.db"));
  EXPECT_TRUE(platform::PathExists(dir_.path() + "/data/master.key"));
}

TEST_F(DaemonTest, JsonLogsAreOneObjectPerLine) {
  auto p = Start({"serve", "--config", WriteConfig("[log]\nformat = \"json\"\n")}, dir_.path());
  std::string port = p->WaitFor("serving on http://127.0.0.1:");
  ASSERT_FALSE(port.empty()) << p->output;
  ::kill(p->pid, SIGTERM);
  ASSERT_EQ(p->Wait(), 0);
  size_t lines = 0, pos = 0;
  while (pos < p->output.size()) {
    size_t nl = p->output.find('\n', pos);
    std::string line = p->output.substr(pos, nl - pos);
    pos = nl == std::string::npos ? p->output.size() : nl + 1;
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
    EXPECT_TRUE(j.contains("time") && j.contains("level") && j.contains("msg")) << line;
    ++lines;
  }
  EXPECT_GE(lines, 3u);
}

TEST_F(DaemonTest, RunsOnEmbeddedDefaultsWithoutConfig) {
  {
    // The default port may be taken on a shared machine; then this test cannot run.
    asio::io_context io;
    asio::ip::tcp::acceptor a(io);
    boost::system::error_code ec;
    a.open(asio::ip::tcp::v4(), ec);
    a.bind({asio::ip::make_address("127.0.0.1"), 8480}, ec);
    if (ec) GTEST_SKIP() << "port 8480 is in use";
  }
  auto p = Start({"serve"}, dir_.path());
  // HTTPS with the box's own certificate, and nothing answers without a token.
  EXPECT_NE(p->WaitFor("serving on https://127.0.0.1:8480"), "") << p->output;
  EXPECT_NE(p->WaitFor("first start: set the admin password with the setup code"), "") << p->output;
  EXPECT_NE(p->WaitFor("shares: "), "") << p->output;
  EXPECT_NE(p->output.find("shares: default (local)"), std::string::npos) << p->output;
  EXPECT_NE(p->output.find("data in ./fieldstack-data"), std::string::npos) << p->output;
  EXPECT_TRUE(platform::PathExists(dir_.path() + "/fieldstack-data/tls/box.crt"));
  ::kill(p->pid, SIGINT);
  EXPECT_EQ(p->Wait(), 0) << p->output;
  EXPECT_TRUE(platform::PathExists(dir_.path() + "/fieldstack-data/meta.db"));
}

TEST_F(DaemonTest, RefusesSecondDaemonOnSameDataDir) {
  std::string config = WriteConfig();
  auto first = Start({"serve", "--config", config}, dir_.path());
  ASSERT_GT(Port(*first), 0);
  auto second = Start({"serve", "--config", config}, dir_.path());
  EXPECT_EQ(second->Wait(), 1);
  EXPECT_NE(second->output.find("another fieldstack process (pid " + std::to_string(first->pid)),
            std::string::npos)
      << second->output;
  // Key rotation is refused too while the daemon runs.
  auto rotate = Start({"keys", "rotate", "--config", config}, dir_.path());
  EXPECT_EQ(rotate->Wait(), 1);
  EXPECT_NE(rotate->output.find("stop the daemon first"), std::string::npos) << rotate->output;
  ::kill(first->pid, SIGTERM);
  EXPECT_EQ(first->Wait(), 0);
}

TEST_F(DaemonTest, BadConfigGivesOneLineNamingTheKey) {
  struct Case {
    std::string extra, needle;
  };
  std::vector<Case> cases = {
      {"[log]\nlevel = \"loud\"\n", "'log.level'"},
      {"[http]\n", "line"},  // duplicate table
      {"[encryption]\nenable = true\n", "unknown key 'encryption.enable'"},
      {"[[shares]]\nname = \"..\"\n", "'shares[0].name'"},
  };
  for (const auto& c : cases) {
    auto p = Start({"serve", "--config", WriteConfig(c.extra)}, dir_.path());
    EXPECT_EQ(p->Wait(), 2) << p->output;
    EXPECT_NE(p->output.find(c.needle), std::string::npos) << p->output;
    EXPECT_EQ(std::count(p->output.begin(), p->output.end(), '\n'), 1) << p->output;
  }
  std::string bad_dir = dir_ / "bad.toml";
  ASSERT_TRUE(platform::WriteFileAtomic(bad_dir, "data_dir = \"/proc/fieldstack-no\"\n").ok());
  auto p = Start({"serve", "--config", bad_dir}, dir_.path());
  EXPECT_EQ(p->Wait(), 2);
  EXPECT_NE(p->output.find("'data_dir'"), std::string::npos) << p->output;
  auto missing = Start({"serve", "--config", dir_ / "absent.toml"}, dir_.path());
  EXPECT_EQ(missing->Wait(), 2);
  EXPECT_NE(missing->output.find("absent.toml"), std::string::npos) << missing->output;
}

TEST_F(DaemonTest, KeysRotateReplacesTheKeyAndTheDaemonStartsWithIt) {
  std::string config = WriteConfig();
  {
    auto p = Start({"serve", "--config", config}, dir_.path());
    ASSERT_GT(Port(*p), 0);
    ::kill(p->pid, SIGTERM);
    ASSERT_EQ(p->Wait(), 0);
  }
  auto before = platform::ReadFileToString(dir_.path() + "/data/master.key");
  auto rotate = Start({"keys", "rotate", "--config", config}, dir_.path());
  EXPECT_EQ(rotate->Wait(), 0) << rotate->output;
  EXPECT_NE(rotate->output.find("new key id 2"), std::string::npos) << rotate->output;
  EXPECT_NE(*platform::ReadFileToString(dir_.path() + "/data/master.key"), *before);
  auto p = Start({"serve", "--config", config}, dir_.path());
  ASSERT_GT(Port(*p), 0);
  EXPECT_EQ(p->WaitFor("master key id "), "2); master key file " + dir_.path() +
                                              "/data/master.key (back it up: without it the "
                                              "data cannot be read); shares: default (local)")
      << p->output;
  ::kill(p->pid, SIGTERM);
  EXPECT_EQ(p->Wait(), 0);
  // A key file that does not belong to the store stops the daemon with a clear error.
  ASSERT_TRUE(platform::WriteFileAtomic(dir_.path() + "/data/master.key", *before).ok());
  auto wrong = Start({"serve", "--config", config}, dir_.path());
  EXPECT_EQ(wrong->Wait(), 1);
  EXPECT_NE(wrong->output.find("does not match this store"), std::string::npos) << wrong->output;
}

TEST_F(DaemonTest, CloudShareFilesAreUploadedToTheirTarget) {
  // Files committed while the daemon was down (a front end will write them later).
  std::map<std::string, std::string> files = {{"a.csv", "x,y\n1,2\n"},
                                              {"b.bin", std::string(3 << 20, 'b')}};
  {
    auto s = store::Store::Open({.data_dir = dir_.path() + "/data"});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    auto share = (*s)->CreateShare("ingest", store::ShareKind::kCloud);
    ASSERT_TRUE(share.ok());
    for (auto& [name, data] : files) {
      auto h = (*s)->Create(share->root, name, {});
      ASSERT_TRUE(h.ok());
      ASSERT_TRUE(
          (*h)->Write(0, {reinterpret_cast<const uint8_t*>(data.data()), data.size()}).ok());
      ASSERT_TRUE((*h)->Close().ok());
    }
  }
  std::string exported = dir_.path() + "/export";
  auto p = Start({"serve", "--config",
                  WriteConfig("[upload]\npart_size_mib = 1\n[[shares]]\nname = \"ingest\"\n"
                              "kind = \"cloud\"\n[shares.target]\ntype = \"localfs\"\npath = \"" +
                              exported + "\"\n")},
                 dir_.path());
  int port = Port(*p);
  ASSERT_GT(port, 0);
  bool arrived = false;
  for (int i = 0; i < 100 && !arrived; ++i) {
    arrived = true;
    for (auto& [name, data] : files) {
      auto got = platform::ReadFileToString(exported + "/" + name);
      arrived = arrived && got.ok() && *got == data;
    }
    if (!arrived) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(arrived) << p->output;
  EXPECT_NE(HttpGet(port, "/metrics").body().find("fieldstack_upload_files_total 2"),
            std::string::npos);
  auto log = platform::ReadFileToString(dir_.path() + "/data/logs/ingest/upload.log");
  ASSERT_TRUE(log.ok());
  EXPECT_NE(log->find("\"result\":\"uploaded\""), std::string::npos);
  ::kill(p->pid, SIGTERM);
  EXPECT_EQ(p->Wait(), 0) << p->output;
}

TEST_F(DaemonTest, DrainUploadsEverythingPendingThenReturns) {
  {
    auto s = store::Store::Open({.data_dir = dir_.path() + "/data"});
    ASSERT_TRUE(s.ok());
    auto share = (*s)->CreateShare("ingest", store::ShareKind::kCloud);
    for (int i = 0; i < 30; ++i) {
      auto h = (*s)->Create(share->root, "f" + std::to_string(i), {});
      std::string data(1000 + i, 'a' + i % 26);
      ASSERT_TRUE(
          (*h)->Write(0, {reinterpret_cast<const uint8_t*>(data.data()), data.size()}).ok());
      ASSERT_TRUE((*h)->Close().ok());
    }
  }
  std::string shares = "[[shares]]\nname = \"ingest\"\nkind = \"cloud\"\n";
  // Without a target the files cannot go anywhere: a clear error, not a hang.
  auto stuck = Start({"drain", "--config", WriteConfig(shares)}, dir_.path());
  EXPECT_EQ(stuck->Wait(), 1);
  EXPECT_NE(stuck->output.find("without an upload target"), std::string::npos) << stuck->output;
  std::string exported = dir_.path() + "/export";
  auto p = Start(
      {"drain", "--config",
       WriteConfig(shares + "[shares.target]\ntype = \"localfs\"\npath = \"" + exported + "\"\n")},
      dir_.path());
  EXPECT_EQ(p->Wait(), 0) << p->output;
  EXPECT_NE(p->output.find("pending 0"), std::string::npos) << p->output;
  for (int i = 0; i < 30; ++i) {
    auto got = platform::ReadFileToString(exported + "/f" + std::to_string(i));
    ASSERT_TRUE(got.ok()) << i;
    EXPECT_EQ(*got, std::string(1000 + i, 'a' + i % 26));
  }
}

TEST_F(DaemonTest, DrainToS3StopsWithAClearErrorWhenTheDataBudgetIsSpent) {
  auto& rgw = testing::Rgw::Shared();
  ASSERT_FALSE(rgw.endpoint().empty()) << rgw.error();
  std::string big(12 << 20, 'x');  // three 5 MiB parts at most
  {
    auto s = store::Store::Open({.data_dir = dir_.path() + "/data"});
    ASSERT_TRUE(s.ok());
    auto share = (*s)->CreateShare("ingest", store::ShareKind::kCloud);
    for (std::string name : {"small.txt", "big.bin"}) {
      auto h = (*s)->Create(share->root, name, {});
      std::string data = name == "big.bin" ? big : "hello";
      ASSERT_TRUE(
          (*h)->Write(0, {reinterpret_cast<const uint8_t*>(data.data()), data.size()}).ok());
      ASSERT_TRUE((*h)->Close().ok());
    }
  }
  std::string creds = dir_.path() + "/s3.creds";
  ASSERT_TRUE(
      platform::WriteFileAtomic(creds, rgw.access_key() + "\n" + rgw.secret_key() + "\n", 0600)
          .ok());
  auto config = [&](const std::string& upload) {
    return WriteConfig(upload +
                       "[[shares]]\nname = \"ingest\"\nkind = \"cloud\"\n[shares.target]\n"
                       "type = \"s3\"\nendpoint = \"" +
                       rgw.endpoint() + "\"\nbucket = \"drained\"\ncredentials_file = \"" + creds +
                       "\"\n");
  };
  // 8 MiB a day and 5 MiB parts: the small file and one part fit, then the budget is spent.
  auto capped =
      Start({"drain", "--config", config("[upload]\npart_size_mib = 5\ndaily_budget = \"8M\"\n")},
            dir_.path());
  EXPECT_EQ(capped->Wait(), 1) << capped->output;
  EXPECT_NE(capped->output.find("data budget is spent until"), std::string::npos) << capped->output;
  // Without the cap the rest goes up: byte-identical, in native format.
  auto p = Start({"drain", "--config", config("[upload]\npart_size_mib = 5\n")}, dir_.path());
  EXPECT_EQ(p->Wait(), 0) << p->output;
  cloud::s3::S3Config c;
  c.endpoint = rgw.endpoint();
  c.bucket = "drained";
  c.credentials = {rgw.access_key(), rgw.secret_key(), ""};
  auto s3 = cloud::s3::S3Store::Open(c, RealClock::Get());
  ASSERT_TRUE(s3.ok());
  EXPECT_EQ(*(*s3)->Get("small.txt", 0, 100), "hello");
  auto got = (*s3)->Get("big.bin", 0, 64 << 20);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == big);
}

// serve with [smb]: the shares are mounted with FUSE and served by smbd; a file put over SMB
// is in the Store with the same bytes after a clean stop.
TEST_F(DaemonTest, ServesSharesOverSmb) {
  std::string pw = dir_.path() + "/field.smbpass";
  ASSERT_TRUE(platform::WriteFileAtomic(pw, "field-secret\n", 0600).ok());
  std::string config = WriteConfig(
      "[smb]\nenabled = true\nport = 0\n[[smb.users]]\nname = \"fstest-field\"\npassword_file = "
      "\"" +
      pw + "\"\n");
  auto p = Start({"serve", "--config", config}, dir_.path());
  std::string line = p->WaitFor("smbclient //127.0.0.1/default -p ", 20000);
  ASSERT_FALSE(line.empty()) << p->output;
  int port = std::atoi(line.c_str());
  ASSERT_GT(port, 0);
  std::string local = dir_.path() + "/hello.txt";
  ASSERT_TRUE(platform::WriteFileAtomic(local, "hello over smb").ok());
  std::string cmd = "smbclient //127.0.0.1/default -p " + std::to_string(port) +
                    " -m SMB3 -U fstest-field%field-secret -c 'put " + local + " hello.txt' 2>&1";
  EXPECT_EQ(::system(cmd.c_str()), 0);
  ::kill(p->pid, SIGTERM);
  EXPECT_EQ(p->Wait(), 0) << p->output;
  auto s = store::Store::Open({.data_dir = dir_.path() + "/data"});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto a = (*s)->Resolve("default", "hello.txt");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto h = (*s)->OpenFile(a->id, false);
  std::vector<uint8_t> got(100);
  EXPECT_EQ(std::string(got.begin(), got.begin() + static_cast<long>(*(*h)->Read(0, got))),
            "hello over smb");
  h->reset();  // handles before their store
  s->reset();  // the store's lock, for the daemons below
  // Killed, the daemon leaves a dead mount and a running smbd; the next start takes over.
  auto k = Start({"serve", "--config", config}, dir_.path());
  ASSERT_FALSE(k->WaitFor("smbclient //127.0.0.1/default -p ", 20000).empty()) << k->output;
  ::kill(k->pid, SIGKILL);
  k->Wait();
  auto again = Start({"serve", "--config", config}, dir_.path());
  line = again->WaitFor("smbclient //127.0.0.1/default -p ", 20000);
  ASSERT_FALSE(line.empty()) << again->output;
  cmd = "smbclient //127.0.0.1/default -p " + std::to_string(std::atoi(line.c_str())) +
        " -m SMB3 -U fstest-field%field-secret -c 'ls' 2>&1";
  EXPECT_EQ(::system(cmd.c_str()), 0);
  ::kill(again->pid, SIGTERM);
  EXPECT_EQ(again->Wait(), 0) << again->output;
  (void)::system("userdel fstest-field >/dev/null 2>&1");  // the one SMB user this test made
}

// serve with [nfs] and [smb]: shares are exported over NFS to their allowed clients; SIGHUP
// applies new shares, exports and SMB users without a restart, and a bad config changes nothing.
TEST_F(DaemonTest, ServesSharesOverNfsAndReloadsOnSighup) {
  std::string pw = dir_.path() + "/field.smbpass";
  ASSERT_TRUE(platform::WriteFileAtomic(pw, "field-secret\n", 0600).ok());
  std::string smb =
      "[smb]\nenabled = true\nport = 0\n[[smb.users]]\nname = \"fstest-nfs1\"\npassword_file = "
      "\"" +
      pw + "\"\n[nfs]\nenabled = true\nport = 0\n";
  std::string share = "[[shares]]\nname = \"default\"\nnfs_clients = [\"127.0.0.1\"]\n";
  std::string config = WriteConfig(smb + share);
  auto p = Start({"serve", "--config", config}, dir_.path());
  ASSERT_FALSE(p->WaitFor("NFS export 'default'", 20000).empty()) << p->output;
  std::string smb_port = p->WaitFor("smbclient //127.0.0.1/default -p ", 1000);
  smb_port = smb_port.substr(0, smb_port.find(' '));
  std::string local = dir_.path() + "/n.txt";
  ASSERT_TRUE(platform::WriteFileAtomic(local, "hello over nfs").ok());
  EXPECT_EQ(::system(("nfs-cp " + local + " nfs://127.0.0.1/default/n.txt").c_str()), 0);
  EXPECT_NE(::system("nfs-ls nfs://127.0.0.1/later >/dev/null 2>&1"), 0);

  // A new share, exported to everyone, and a second SMB user.
  ASSERT_TRUE(platform::WriteFileAtomic(config, "data_dir = \"" + dir_.path() +
                                                    "/data\"\n[http]\nport = 0\n" + smb +
                                                    "[[smb.users]]\nname = \"fstest-nfs2\"\n"
                                                    "password_file = \"" +
                                                    pw + "\"\n" + share +
                                                    "[[shares]]\nname = \"later\"\n"
                                                    "nfs_clients = [\"*\"]\n")
                  .ok());
  ::kill(p->pid, SIGHUP);
  ASSERT_FALSE(p->WaitFor("reload: settings applied", 20000).empty()) << p->output;
  int rc = 1;
  for (int i = 0; i < 50 && rc != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    rc = ::system(("nfs-cp " + local + " nfs://127.0.0.1/later/l.txt >/dev/null 2>&1").c_str());
  }
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(
      ::system(("smbclient //127.0.0.1/later -p " + smb_port +
                " -m SMB3 -U fstest-nfs2%field-secret -c 'get l.txt /dev/null' >/dev/null 2>&1")
                   .c_str()),
      0);
  // A bad config is refused; the running settings stay.
  ASSERT_TRUE(platform::WriteFileAtomic(config, "data_dir = \"" + dir_.path() +
                                                    "/data\"\n[[shares]]\nname = \"x\"\n"
                                                    "nfs_squash = \"maybe\"\n")
                  .ok());
  ::kill(p->pid, SIGHUP);
  ASSERT_FALSE(p->WaitFor("; the running settings", 20000).empty()) << p->output;
  EXPECT_NE(p->output.find("'shares[0].nfs_squash'"), std::string::npos) << p->output;
  EXPECT_EQ(::system("nfs-ls nfs://127.0.0.1/later >/dev/null 2>&1"), 0);
  ::kill(p->pid, SIGTERM);
  EXPECT_EQ(p->Wait(), 0) << p->output;
  (void)::system("userdel fstest-nfs1 >/dev/null 2>&1; userdel fstest-nfs2 >/dev/null 2>&1");
  auto s = store::Store::Open({.data_dir = dir_.path() + "/data"});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto a = (*s)->Resolve("default", "n.txt");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->size, 14u);
  EXPECT_TRUE((*s)->Resolve("later", "l.txt").ok());
  // Every change is in the audit log, written before the daemon stopped.
  auto audit = platform::ReadFileToString(dir_.path() + "/data/logs/audit.log");
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  EXPECT_NE(audit->find(R"("op":"create","path":"n.txt")"), std::string::npos) << *audit;
  EXPECT_NE(audit->find(R"("path":"l.txt")"), std::string::npos) << *audit;
  EXPECT_NE(audit->find(R"("via":"nfs")"), std::string::npos) << *audit;
}

TEST_F(DaemonTest, BadTargetConfigNamesTheKey) {
  auto p = Start({"serve", "--config",
                  WriteConfig("[[shares]]\nname = \"s\"\nkind = \"cloud\"\n"
                              "[shares.target]\ntype = \"ftp\"\n")},
                 dir_.path());
  EXPECT_EQ(p->Wait(), 2);
  EXPECT_NE(p->output.find("'shares[0].target.type'"), std::string::npos) << p->output;
  auto q = Start({"serve", "--config",
                  WriteConfig("[[shares]]\nname = \"s\"\nkind = \"cloud\"\n"
                              "[shares.target]\ntype = \"azure\"\nendpoint = \"http://x\"\n"
                              "container = \"c\"\naccount = \"a\"\nkey_file = \"/nonexistent\"\n")},
                 dir_.path());
  EXPECT_EQ(q->Wait(), 2);
  EXPECT_NE(q->output.find("key_file"), std::string::npos) << q->output;
}

// Runs a shell command; returns its exit status and output.
std::pair<int, std::string> Shell(const std::string& cmd) {
  std::string out;
  FILE* f = ::popen(("(" + cmd + ") 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = ::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  int rc = ::pclose(f);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

TEST_F(DaemonTest, ServesS3AndBlobOverHttpsUploadsWhatArrivesAndSurvivesAKillMidPut) {
  std::string secret = "dGVzdC1zZWNyZXQtZm9yLXRoZS1kYWVtb24tdGVzdCE=";
  ASSERT_TRUE(platform::WriteFileAtomic(dir_ / "key.secret", secret + "\n").ok());
  std::string exported = dir_ / "export";
  std::string config = WriteConfig(
      "[[shares]]\nname = \"ingest\"\nkind = \"cloud\"\n[shares.target]\ntype = \"localfs\"\n"
      "path = \"" +
          exported +
          "\"\n[s3]\nenabled = true\nport = 0\n[blob]\nenabled = true\n"
          "port = 0\n[[access_keys]]\nuser = \"field\"\nid = \"FIELDKEY1\"\nsecret_file = \"" +
          (dir_ / "key.secret") + "\"\nwrite = [\"ingest\"]\n",
      /*tls=*/true);
  auto p = Start({"serve", "--config", config}, dir_.path());
  std::string s3 = p->WaitFor("s3: serving https://127.0.0.1:");
  std::string blob = p->WaitFor("blob: serving https://127.0.0.1:");
  ASSERT_FALSE(s3.empty() || blob.empty()) << p->output;
  int s3_port = std::atoi(s3.c_str()), blob_port = std::atoi(blob.c_str());
  std::string ca = dir_.path() + "/data/tls/box.crt";
  ASSERT_TRUE(platform::PathExists(ca));
  auto cert = platform::ReadFileToString(ca);
  std::string data(6 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131) >> 7);
  ASSERT_TRUE(platform::WriteFileAtomic(dir_ / "a.bin", data).ok());
  std::string aws = "env -u AWS_CA_BUNDLE -u AWS_PROFILE HOME=" + dir_.path() +
                    " AWS_ACCESS_KEY_ID=FIELDKEY1 AWS_SECRET_ACCESS_KEY=" + secret +
                    " AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null /usr/bin/aws "
                    "--ca-bundle " +
                    ca + " --endpoint-url https://127.0.0.1:" + std::to_string(s3_port) + " ";
  auto r = Shell(aws + "s3 cp " + (dir_ / "a.bin") + " s3://ingest/in/a.bin");
  ASSERT_EQ(r.first, 0) << r.second << p->output;
  // Over Blob, with az-cli and the same key (the account is the share).
  std::string conn = "DefaultEndpointsProtocol=https;AccountName=ingest;AccountKey=" + secret +
                     ";BlobEndpoint=https://127.0.0.1:" + std::to_string(blob_port) + "/ingest;";
  r = Shell("env -u AZURE_STORAGE_CONNECTION_STRING HOME=" + dir_.path() +
            " REQUESTS_CA_BUNDLE=" + ca +
            " AZURE_CORE_COLLECT_TELEMETRY=false AZURE_CORE_ONLY_SHOW_ERRORS=1 /usr/bin/az storage "
            "blob download --no-progress --connection-string '" +
            conn + "' -c in -n a.bin -f " + (dir_ / "back.bin") + " -o none");
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_TRUE(platform::ReadFileToString(dir_ / "back.bin").value_or("") == data);
  // Plain HTTP is refused on the TLS port.
  r = Shell("curl -sS -m 5 http://127.0.0.1:" + std::to_string(s3_port) + "/ingest");
  EXPECT_NE(r.first, 0) << r.second;
  // What arrived over S3 is uploaded like any other file of a cloud share; nothing staged is.
  bool arrived = false;
  for (int i = 0; i < 100 && !arrived; ++i) {
    arrived = platform::ReadFileToString(exported + "/in/a.bin").value_or("") == data;
    if (!arrived) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(arrived) << p->output;
  // A PUT in flight when the daemon is killed leaves nothing behind.
  std::string big(40 << 20, 'k');
  ASSERT_TRUE(platform::WriteFileAtomic(dir_ / "big.bin", big).ok());
  std::string slow =
      "curl -sS -k --limit-rate 2M -T " + (dir_ / "big.bin") +
      " --aws-sigv4 aws:amz:us-east-1:s3 --user FIELDKEY1:" + secret +
      " -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' https://127.0.0.1:" + std::to_string(s3_port) +
      "/ingest/in/big.bin > /dev/null 2>&1 &";
  ASSERT_EQ(std::system(slow.c_str()), 0);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  ::kill(p->pid, SIGKILL);
  p->Wait();
  {
    // The kill came mid-body: the staged file is there, the object is not.
    auto st = store::Store::Open({.data_dir = dir_.path() + "/data"});
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    auto put_dir = (*st)->Resolve("ingest", ".fieldstack-staging/put");
    ASSERT_TRUE(put_dir.ok());
    auto left = (*st)->ReadDir(put_dir->id, "", 10);
    ASSERT_TRUE(left.ok());
    EXPECT_EQ(left->size(), 1u);
    EXPECT_EQ((*st)->Resolve("ingest", "in/big.bin").status().code(), StatusCode::kNotFound);
  }
  auto again = Start({"serve", "--config", config}, dir_.path());
  ASSERT_FALSE(again->WaitFor("s3: serving https://127.0.0.1:").empty()) << again->output;
  EXPECT_EQ(platform::ReadFileToString(ca).value_or(""), cert.value_or("x"))
      << "the box keeps its certificate";
  ::kill(again->pid, SIGTERM);
  EXPECT_EQ(again->Wait(), 0) << again->output;
  auto st = store::Store::Open({.data_dir = dir_.path() + "/data"});
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ((*st)->Resolve("ingest", "in/big.bin").status().code(), StatusCode::kNotFound);
  // The partial PUT's staging file was removed at start (with the whole "put" folder).
  EXPECT_EQ((*st)->Resolve("ingest", ".fieldstack-staging/put").status().code(),
            StatusCode::kNotFound);
  EXPECT_TRUE((*st)->Resolve("ingest", "in/a.bin").ok());
  EXPECT_FALSE(platform::PathExists(exported + "/.fieldstack-staging"));
}

// Refresh on demand with the CLI (and by TTL), the cache state of a file, bad input: the client
// commands talk to the running daemon.
TEST_F(DaemonTest, ShareRefreshAndFileStateFromTheCommandLine) {
  std::string exported = dir_.path() + "/export";
  auto cloud = cloud::localfs::LocalFsStore::Open(exported);
  ASSERT_TRUE(cloud.ok());
  std::string report = "site,value\nA,1\n";
  ASSERT_TRUE((*cloud)
                  ->Put("news/report.csv",
                        {reinterpret_cast<const uint8_t*>(report.data()), report.size()}, {})
                  .ok());
  auto p = Start({"serve", "--config",
                  WriteConfig("[[shares]]\nname = \"ingest\"\nkind = \"cloud\"\n"
                              "refresh_ttl_s = 1\n[shares.target]\ntype = \"localfs\"\n"
                              "path = \"" +
                              exported + "\"\n")},
                 dir_.path());
  int port = Port(*p);
  ASSERT_GT(port, 0);
  std::string code = p->WaitFor("set the admin password with the setup code ");
  ASSERT_FALSE(code.empty()) << p->output;
  code = code.substr(0, code.find(':'));
  // The CLI keeps its login in the test directory; the box speaks plain HTTP here.
  std::string cli = "FIELDSTACK_CLI_CONFIG=" + (dir_ / "cli.json") +
                    " FIELDSTACK_PASSWORD=admin-password-0001 " + std::string(FS_BINARY) + " ";
  std::string server = " --server http://127.0.0.1:" + std::to_string(port);
  auto r = Shell(cli + "setup --code " + code + server);
  ASSERT_EQ(r.first, 0) << r.second;
  r = Shell(cli + "login --user admin");
  ASSERT_EQ(r.first, 0) << r.second;
  r = Shell(cli + "share refresh ingest --path news --output json");
  EXPECT_EQ(r.first, 0) << r.second;
  auto j = nlohmann::json::parse(r.second, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.second;
  // The TTL refresh may have been first: either way the file is there, once.
  EXPECT_EQ(j["state"], "succeeded") << r.second;
  EXPECT_EQ(j["result"]["failed"], 0) << r.second;
  r = Shell(cli + "share file-state ingest news/report.csv");
  EXPECT_EQ(r.first, 0) << r.second;
  EXPECT_NE(r.second.find("news/report.csv  stub"), std::string::npos) << r.second;
  // The TTL refresh brings in what comes later.
  ASSERT_TRUE((*cloud)->Put("news/later.csv", {reinterpret_cast<const uint8_t*>("x"), 1}, {}).ok());
  bool arrived = false;
  for (int i = 0; i < 50 && !arrived; ++i) {
    arrived = Shell(cli + "share file-state ingest news/later.csv").first == 0;
    if (!arrived) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(arrived) << p->output;
  // Bad input: clear errors, exit 2.
  r = Shell(cli + "share refresh nope");
  EXPECT_EQ(r.first, 2) << r.second;
  EXPECT_NE(r.second.find("nope"), std::string::npos) << r.second;
  // The route checks the paths in the job (exit 4, a failed job) rather than at once (2).
  r = Shell(cli + "share refresh ingest --path ../up");
  EXPECT_TRUE(r.first == 2 || r.first == 4) << r.second;
  EXPECT_NE(r.second.find("'..' is not allowed"), std::string::npos) << r.second;
  r = Shell(cli + "share file-state ingest missing.txt");
  EXPECT_EQ(r.first, 2) << r.second;
  r = Shell(cli + "share refresh ingest --server http://127.0.0.1:1");
  EXPECT_EQ(r.first, 1) << r.second;
  EXPECT_NE(r.second.find("cannot reach the box"), std::string::npos) << r.second;
  std::string metrics = HttpGet(port, "/metrics").body();
  for (const char* m :
       {"fieldstack_cache_resident_bytes", "fieldstack_cache_stub_bytes",
        "fieldstack_refresh_duration_seconds", "fieldstack_cache_evictions_total"}) {
    EXPECT_NE(metrics.find(m), std::string::npos) << m;
  }
  ::kill(p->pid, SIGTERM);
  EXPECT_EQ(p->Wait(), 0) << p->output;
}

// Power: the API restarts the daemon in place (the same process, executed again, its data
// kept) and shuts it down cleanly; the host is touched only when [device] host_power allows.
TEST_F(DaemonTest, PowerRoutesRestartAndShutDownTheDaemon) {
  auto p = Start({"serve", "--config", WriteConfig()}, dir_.path());
  int port = Port(*p);
  ASSERT_GT(port, 0);
  std::string code = p->WaitFor("set the admin password with the setup code ");
  code = code.substr(0, code.find(':'));
  ASSERT_FALSE(code.empty()) << p->output;
  auto curl = [](int at, const std::string& method, const std::string& path,
                 const std::string& body, const std::string& token) {
    std::string cmd = "curl -s -w ' %{http_code}' -X " + method +
                      " http://127.0.0.1:" + std::to_string(at) + path;
    if (!token.empty()) cmd += " -H 'Authorization: Bearer " + token + "'";
    if (!body.empty()) cmd += " -d '" + body + "'";
    return Shell(cmd).second;
  };
  auto login = [&](int at) {
    std::string r =
        curl(at, "POST", "/api/v1/login", R"({"user":"admin","password":"power password 1"})", "");
    auto j = nlohmann::json::parse(r.substr(0, r.rfind(' ')), nullptr, false);
    return j.is_object() && j.contains("token") ? j["token"].get<std::string>() : std::string();
  };
  std::string r =
      curl(port, "POST", "/api/v1/setup",
           R"({"setup_code":")" + code + R"(","user":"admin","password":"power password 1"})", "");
  ASSERT_TRUE(r.ends_with(" 201")) << r;
  std::string token = login(port);
  ASSERT_FALSE(token.empty());
  // The host only with host_power; bad input changes nothing.
  r = curl(port, "POST", "/api/v1/power", R"({"action":"restart","scope":"host"})", token);
  EXPECT_TRUE(r.ends_with(" 409")) << r;
  EXPECT_NE(r.find("host_power"), std::string::npos) << r;
  r = curl(port, "POST", "/api/v1/power", R"({"action":"reboot"})", token);
  EXPECT_TRUE(r.ends_with(" 400")) << r;
  r = curl(port, "POST", "/api/v1/power", R"({"action":"restart"})", token);
  EXPECT_TRUE(r.ends_with(" 202")) << r;
  std::string again = p->WaitFor("sign in: fieldstack login --server http://127.0.0.1:", 20000);
  ASSERT_FALSE(again.empty()) << p->output;
  EXPECT_NE(p->output.find("restarting"), std::string::npos) << p->output;
  int port2 = std::atoi(again.c_str());
  // Users are kept; sessions are not (they live in memory).
  r = curl(port2, "GET", "/api/v1/me", "", token);
  EXPECT_TRUE(r.ends_with(" 401")) << r;
  token = login(port2);
  ASSERT_FALSE(token.empty());
  r = curl(port2, "POST", "/api/v1/power", R"({"action":"shutdown"})", token);
  EXPECT_TRUE(r.ends_with(" 202")) << r;
  EXPECT_EQ(p->Wait(), 0) << p->output;
  EXPECT_NE(p->output.rfind("stopped cleanly"), p->output.find("stopped cleanly"));
}

}  // namespace
}  // namespace fieldstack

int main(int argc, char** argv) {
  fieldstack::testing::EnterPrivateNetwork();  // rpcbind and ganesha need port 111 to themselves
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
