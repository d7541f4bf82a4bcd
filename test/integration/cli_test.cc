// Drives the `fieldstack` command line against a real daemon on HTTPS with its own self-signed
// certificate (port 0, a temporary data directory): first-start setup with the code from the
// log, sign-in saved in a CLI config per user, roles, API tokens, shares, a cloud share on a
// local directory refreshed from the command line, schedules, cache, alerts, logs,
// diagnostics, the support package, the certificate, access keys, compute pipelines (from TOML),
// modules and ONNX models, JSON output and the exit codes of docs/cli.md.

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "platform/file.h"
#include "test/support/daemon_proc.h"
#include "test/support/shell.h"
#include "test/support/temp_dir.h"

namespace fieldstack {
namespace {

constexpr char kAdminPassword[] = "correct-horse-battery-staple";
constexpr char kReaderPassword[] = "reader-password-0001";
constexpr char kOperatorPassword[] = "operator-password-0001";

struct CliRun {
  int rc = -1;
  std::string out;  // stdout
  std::string err;  // stderr
  std::string All() const {
    return "rc=" + std::to_string(rc) + "\nstdout:\n" + out + "stderr:\n" + err;
  }
};

// Runs FS_BINARY with `args` and `env` added to a clean client environment; `input` is stdin.
CliRun RunCli(const std::vector<std::string>& args, const std::vector<std::string>& env,
              const std::string& cwd, const std::string& input = "") {
  int out[2], err[2], in[2];
  if (::pipe(out) != 0 || ::pipe(err) != 0 || ::pipe(in) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) ::close(fd);
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    for (const char* name : {"FIELDSTACK_SERVER", "FIELDSTACK_TOKEN", "FIELDSTACK_CACERT",
                             "FIELDSTACK_PASSWORD", "FIELDSTACK_NEW_PASSWORD"}) {
      ::unsetenv(name);
    }
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> argv = {const_cast<char*>(FS_BINARY)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(FS_BINARY, argv.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (!input.empty()) (void)!::write(in[1], input.data(), input.size());
  ::close(in[1]);
  CliRun r;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open = 2;
  while (open > 0) {
    if (::poll(fds, 2, 60000) <= 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      char buf[4096];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class CliTest : public ::testing::Test {
 protected:
  // One daemon for the suite; the first admin is set up and signed in (admin.json).
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    std::string config = *dir_ / "fieldstack.toml";
    ASSERT_TRUE(platform::WriteFileAtomic(
                    config, "data_dir = \"" + dir_->path() + "/data\"\n[http]\nport = 0\n")
                    .ok());
    daemon_ = testing::StartProc(FS_BINARY, {"serve", "--config", config}, dir_->path()).release();
    std::string port = daemon_->WaitFor("serving on https://127.0.0.1:");
    ASSERT_FALSE(port.empty()) << daemon_->output;
    url_ = "https://127.0.0.1:" + port.substr(0, port.find(' '));
    std::string code = daemon_->WaitFor("set the admin password with the setup code ");
    ASSERT_FALSE(code.empty()) << daemon_->output;
    code_ = code.substr(0, code.find(':'));
    cacert_ = dir_->path() + "/data/tls/box.crt";
    setup_ = new CliRun(
        Cli({"setup", "--server", url_, "--cacert", cacert_, "--code", code_, "--user", "admin"},
            {std::string("FIELDSTACK_PASSWORD=") + kAdminPassword}));
    login_ = new CliRun(
        Cli({"login", "--user", "admin"}, {std::string("FIELDSTACK_PASSWORD=") + kAdminPassword}));
  }
  static void TearDownTestSuite() {
    if (daemon_ != nullptr && daemon_->pid > 0) {
      ::kill(daemon_->pid, SIGTERM);
      EXPECT_EQ(daemon_->Wait(), 0) << daemon_->output;
    }
    delete daemon_;
    delete setup_;
    delete login_;
    delete dir_;
  }

  // Runs the CLI with the saved login `config` (a file in the test directory).
  static CliRun Cli(const std::vector<std::string>& args, std::vector<std::string> env = {},
                    const std::string& config = "admin.json", const std::string& input = "") {
    env.push_back("FIELDSTACK_CLI_CONFIG=" + (*dir_ / config));
    return RunCli(args, env, dir_->path(), input);
  }
  static nlohmann::json Json(const CliRun& r) {
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.All();
    return j;
  }
  // Adds a user and signs it in with its own saved login `<name>.json`.
  static void AddAndSignIn(const std::string& name, const std::string& role,
                           const std::string& password) {
    auto r = Cli({"user", "add", name, "--role", role}, {"FIELDSTACK_NEW_PASSWORD=" + password});
    ASSERT_EQ(r.rc, 0) << r.All();
    r = Cli({"login", "--server", url_, "--cacert", cacert_, "--user", name},
            {"FIELDSTACK_PASSWORD=" + password}, name + ".json");
    ASSERT_EQ(r.rc, 0) << r.All();
  }

  static testing::TempDir* dir_;
  static testing::DaemonProc* daemon_;
  static std::string url_, code_, cacert_;
  static CliRun* setup_;
  static CliRun* login_;
};

testing::TempDir* CliTest::dir_ = nullptr;
testing::DaemonProc* CliTest::daemon_ = nullptr;
std::string CliTest::url_, CliTest::code_, CliTest::cacert_;
CliRun* CliTest::setup_ = nullptr;
CliRun* CliTest::login_ = nullptr;

TEST_F(CliTest, SetsUpTheFirstAdminSignsInAndSavesTheLogin) {
  ASSERT_NE(setup_, nullptr);
  EXPECT_EQ(setup_->rc, 0) << setup_->All();
  EXPECT_NE(setup_->out.find("admin 'admin' is set up"), std::string::npos) << setup_->All();
  EXPECT_EQ(login_->rc, 0) << login_->All();
  EXPECT_NE(login_->out.find("signed in to " + url_ + " as admin (admin)"), std::string::npos)
      << login_->All();
  // The saved login is private and holds the server, the token and the certificate.
  struct stat st {};
  ASSERT_EQ(::stat((*dir_ / "admin.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto saved = nlohmann::json::parse(*platform::ReadFileToString(*dir_ / "admin.json"));
  EXPECT_EQ(saved["server"], url_);
  EXPECT_EQ(saved["cacert"], cacert_);
  EXPECT_TRUE(saved["token"].get<std::string>().starts_with("fss_"));
  // The setup code works once.
  auto again = Cli({"setup", "--code", code_}, {"FIELDSTACK_PASSWORD=another-password-1"});
  EXPECT_EQ(again.rc, 2) << again.All();

  auto r = Cli({"whoami"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_EQ(r.out, "admin (admin) on " + url_ + ", session\n");
  r = Cli({"status"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_NE(r.out.find("Alerts:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nNAME "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("default  local"), std::string::npos) << r.out;
  r = Cli({"device", "set", "--name", "field-box-7"});
  EXPECT_EQ(r.rc, 0) << r.All();
  r = Cli({"device", "show", "--output", "json"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_EQ(Json(r)["name"], "field-box-7");
  r = Cli({"status", "-o", "json"});
  EXPECT_EQ(r.rc, 0) << r.All();
  auto j = Json(r);
  EXPECT_EQ(j["device"]["name"], "field-box-7");
  EXPECT_TRUE(j["shares"].is_array());
  EXPECT_TRUE(j["metrics"].contains("pending_files"));
}

TEST_F(CliTest, RolesLimitWhatEachUserMayDo) {
  AddAndSignIn("rita", "reader", kReaderPassword);
  AddAndSignIn("otto", "operator", kOperatorPassword);
  auto r = Cli({"user", "list"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_NE(r.out.find("rita   reader"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("otto   operator"), std::string::npos) << r.out;
  r = Cli({"whoami"}, {}, "rita.json");
  EXPECT_EQ(r.out, "rita (reader) on " + url_ + ", session\n") << r.All();
  // A reader reads but does not change; an operator runs checks but does not manage users.
  r = Cli({"share", "list"}, {}, "rita.json");
  EXPECT_EQ(r.rc, 0) << r.All();
  r = Cli({"user", "list"}, {}, "rita.json");
  EXPECT_EQ(r.rc, 3) << r.All();
  EXPECT_NE(r.err.find("fieldstack: this needs the admin role; user 'rita' is reader"),
            std::string::npos)
      << r.err;
  r = Cli({"share", "create", "nope"}, {}, "otto.json");
  EXPECT_EQ(r.rc, 3) << r.All();
  r = Cli({"user", "add", "eve", "--role", "admin"}, {"FIELDSTACK_NEW_PASSWORD=eve-password-0001"},
          "otto.json");
  EXPECT_EQ(r.rc, 3) << r.All();
  // Wrong password: 3, nothing saved.
  r = Cli({"login", "--server", url_, "--cacert", cacert_, "--user", "rita"},
          {"FIELDSTACK_PASSWORD=not-the-password"}, "wrong.json");
  EXPECT_EQ(r.rc, 3) << r.All();
  EXPECT_NE(r.err.find("wrong user name or password"), std::string::npos) << r.err;
  EXPECT_FALSE(platform::PathExists(*dir_ / "wrong.json"));
  // The password from a file, then stdin; the role changes; logout ends the session.
  ASSERT_TRUE(
      platform::WriteFileAtomic(*dir_ / "pw.txt", std::string(kReaderPassword) + "\n").ok());
  r = Cli({"login", "--server", url_, "--cacert", cacert_, "--user", "rita", "--password-file",
           *dir_ / "pw.txt"},
          {}, "rita2.json");
  EXPECT_EQ(r.rc, 0) << r.All();
  r = Cli({"login", "--server", url_, "--cacert", cacert_, "--user", "rita"}, {}, "rita3.json",
          std::string(kReaderPassword) + "\n");
  EXPECT_EQ(r.rc, 0) << r.All();
  r = Cli({"logout"}, {}, "rita2.json");
  EXPECT_EQ(r.rc, 0) << r.All();
  r = Cli({"whoami"}, {}, "rita2.json");
  EXPECT_EQ(r.rc, 3) << r.All();
  EXPECT_NE(r.err.find("sign in with: fieldstack login --server " + url_), std::string::npos)
      << r.err;
  // Changing one's own password: old and new from the environment; signed in again.
  r = Cli({"user", "passwd"},
          {std::string("FIELDSTACK_PASSWORD=") + kReaderPassword,
           "FIELDSTACK_NEW_PASSWORD=reader-password-0002"},
          "rita3.json");
  EXPECT_EQ(r.rc, 0) << r.All();
  r = Cli({"whoami"}, {}, "rita3.json");
  EXPECT_EQ(r.rc, 0) << r.All();
  r = Cli({"user", "set-role", "rita", "operator"});
  EXPECT_EQ(r.rc, 0) << r.All();
  r = Cli({"user", "delete", "rita"});
  EXPECT_EQ(r.rc, 0) << r.All();
}

TEST_F(CliTest, ApiTokensWorkThroughTheEnvironment) {
  auto r = Cli({"token", "create", "--name", "nightly", "--role", "reader", "--expires-in", "1d"});
  ASSERT_EQ(r.rc, 0) << r.All();
  std::string token = r.out.substr(0, r.out.find('\n'));
  EXPECT_TRUE(token.starts_with("fst_")) << r.All();
  // No saved login at all: the server, certificate and token come from the environment.
  std::vector<std::string> env = {"FIELDSTACK_TOKEN=" + token, "FIELDSTACK_SERVER=" + url_,
                                  "FIELDSTACK_CACERT=" + cacert_};
  r = Cli({"whoami"}, env, "none.json");
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_EQ(r.out, "admin (reader) on " + url_ + ", API token\n");
  r = Cli({"share", "list"}, env, "none.json");
  EXPECT_EQ(r.rc, 0) << r.All();
  r = Cli({"share", "create", "x"}, env, "none.json");
  EXPECT_EQ(r.rc, 3) << r.All();
  r = Cli({"token", "list", "-o", "json"});
  ASSERT_EQ(r.rc, 0) << r.All();
  std::string id;
  auto tokens = Json(r);
  for (const auto& t : tokens["tokens"]) {
    if (t["name"] == "nightly") id = t["id"].get<std::string>();
  }
  ASSERT_FALSE(id.empty()) << r.out;
  r = Cli({"token", "revoke", id});
  EXPECT_EQ(r.rc, 0) << r.All();
  r = Cli({"whoami"}, env, "none.json");
  EXPECT_EQ(r.rc, 3) << r.All();
}

TEST_F(CliTest, CreatesListsUpdatesAndDeletesLocalShares) {
  auto r = Cli({"share", "create", "projects", "--kind", "local", "--no-nfs"});
  ASSERT_EQ(r.rc, 0) << r.All();
  EXPECT_NE(r.out.find("Name:"), std::string::npos) << r.out;
  r = Cli({"share", "list"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_NE(r.out.find("projects  local"), std::string::npos) << r.out;
  r = Cli({"share", "update", "projects", "--no-smb"});
  EXPECT_EQ(r.rc, 0) << r.All();
  r = Cli({"share", "show", "projects", "-o", "json"});
  ASSERT_EQ(r.rc, 0) << r.All();
  auto j = Json(r);
  EXPECT_EQ(j["smb"], false);
  EXPECT_EQ(j["nfs"], false);
  // Refused input: exit 2 with the API's message.
  r = Cli({"share", "create", "projects"});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("fieldstack: share 'projects' exists"), std::string::npos) << r.err;
  r = Cli({"share", "update", "projects", "--refresh-ttl", "60"});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("a local share has no cloud target"), std::string::npos) << r.err;
  r = Cli({"share", "delete", "projects"});
  EXPECT_EQ(r.rc, 0) << r.All();
  r = Cli({"share", "show", "projects"});
  EXPECT_EQ(r.rc, 2) << r.All();
}

TEST_F(CliTest, RefreshesACloudShareOnALocalDirectoryAndShowsTheStub) {
  std::string exported = *dir_ / "export";
  ASSERT_TRUE(platform::MakeDirs(exported + "/news").ok());
  ASSERT_TRUE(platform::WriteFileAtomic(exported + "/news/report.csv", "site,value\nA,1\n").ok());
  auto r = Cli({"account", "add", "lfs", "--type", "localfs", "--path", exported});
  ASSERT_EQ(r.rc, 0) << r.All();
  r = Cli({"account", "list"});
  EXPECT_NE(r.out.find("lfs   localfs  " + exported), std::string::npos) << r.All();
  r = Cli({"share", "create", "ingest", "--account", "lfs"});
  ASSERT_EQ(r.rc, 0) << r.All();
  r = Cli({"share", "refresh", "ingest", "--path", "news"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_NE(r.out.find("Failed:     0"), std::string::npos) << r.out;
  r = Cli({"share", "file-state", "ingest", "news/report.csv"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_NE(r.out.find("news/report.csv  stub   15 B"), std::string::npos) << r.out;
  r = Cli({"share", "file-state", "ingest", "news/report.csv", "-o", "json"});
  EXPECT_EQ(Json(r)["state"], "stub");
  // --no-wait gives the job; `jobs wait` waits for it.
  r = Cli({"share", "refresh", "ingest", "--no-wait"});
  ASSERT_EQ(r.rc, 0) << r.All();
  std::string job = r.out.substr(0, r.out.find('\n'));
  EXPECT_TRUE(job.starts_with("job-")) << r.out;
  r = Cli({"jobs", "wait", job, "-o", "json"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_EQ(Json(r)["state"], "succeeded");
  r = Cli({"logs", "refresh", "--share", "ingest"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_NE(r.out.find("news/report.csv"), std::string::npos) << r.out;
  // The account is in use; a local share has nothing to refresh; missing files are 2.
  r = Cli({"account", "delete", "lfs"});
  EXPECT_EQ(r.rc, 2) << r.All();
  r = Cli({"share", "refresh", "default"});
  EXPECT_EQ(r.rc, 2) << r.All();
  r = Cli({"share", "file-state", "ingest", "missing.txt"});
  EXPECT_EQ(r.rc, 2) << r.All();
}

TEST_F(CliTest, SetsTheScheduleAndCacheAndReadsAlertsAndLogs) {
  auto r = Cli({"schedule", "set", "--timetable", "08:00,512k 18:00,off", "--daily-budget", "5G"});
  EXPECT_EQ(r.rc, 0) << r.All();
  r = Cli({"schedule", "show"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_NE(r.out.find("Timetable:       08:00,512k 18:00,off"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Daily budget:    5.0 GiB"), std::string::npos) << r.out;
  r = Cli({"schedule", "set", "--timetable", "soon,fast"});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("fieldstack: field 'timetable'"), std::string::npos) << r.err;
  r = Cli({"cache", "set", "--high-watermark", "85%", "--low-watermark", "70%"});
  EXPECT_EQ(r.rc, 0) << r.All();
  r = Cli({"cache", "show", "-o", "json"});
  EXPECT_EQ(Json(r)["high_watermark"], "85%");
  r = Cli({"alerts", "list"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_TRUE(r.out.starts_with("SEQ  SEVERITY  ALERT")) << r.out;
  r = Cli({"alerts", "catalogue", "-o", "json"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_FALSE(Json(r)["alerts"].empty());
  r = Cli({"logs", "copy"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_TRUE(r.out.starts_with("TIME  RESULT  PATH")) << r.out;
  r = Cli({"logs", "api", "--limit", "5", "-o", "json"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_TRUE(Json(r)["entries"].is_array());
  r = Cli({"logs", "copy", "--limit", "0"});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("'limit'"), std::string::npos) << r.err;
}

TEST_F(CliTest, RunsDiagnosticsAndDownloadsTheSupportPackage) {
  auto r = Cli({"diagnostics"});
  EXPECT_TRUE(r.rc == 0 || r.rc == 1) << r.All();
  EXPECT_TRUE(r.out.starts_with("CHECK")) << r.out;
  EXPECT_NE(r.out.find("disk.space"), std::string::npos) << r.out;
  std::string out = *dir_ / "support.tar.zst";
  r = Cli({"support-package", "--out", out});
  ASSERT_EQ(r.rc, 0) << r.All();
  struct stat st {};
  ASSERT_EQ(::stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto tar = testing::Shell("tar --zstd -tf " + out);
  EXPECT_EQ(tar.rc, 0) << tar.out;
  EXPECT_NE(tar.out.find("diagnostics.json"), std::string::npos) << tar.out;
  r = Cli({"jobs", "list"});
  EXPECT_NE(r.out.find("support-package  succeeded"), std::string::npos) << r.out;
  r = Cli({"uploads", "drain"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_NE(r.out.find("none wait"), std::string::npos) << r.out;
}

TEST_F(CliTest, ShowsTheCertificateAndManagesAccessKeys) {
  auto r = Cli({"cert", "show"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_NE(r.out.find("Self-signed:  yes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("127.0.0.1"), std::string::npos) << r.out;
  r = Cli({"key", "create", "--user", "camera-7", "--write", "default", "-o", "json"});
  ASSERT_EQ(r.rc, 0) << r.All();
  auto key = Json(r);
  std::string id = key["id"].get<std::string>();
  EXPECT_FALSE(key["secret"].get<std::string>().empty());
  r = Cli({"key", "list"});
  EXPECT_NE(r.out.find(id + "  camera-7  -     default"), std::string::npos) << r.out;
  r = Cli({"key", "update", id, "--read", "default"});
  EXPECT_EQ(r.rc, 0) << r.All();
  r = Cli({"key", "create", "--user", "camera-8", "--write", "no-such-share"});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("no share or bucket named 'no-such-share'"), std::string::npos) << r.err;
  r = Cli({"key", "delete", id});
  EXPECT_EQ(r.rc, 0) << r.All();
  r = Cli({"key", "list", "-o", "json"});
  EXPECT_TRUE(Json(r)["access_keys"].empty()) << r.out;
}

TEST_F(CliTest, ManagesPipelinesFromTomlAndModules) {
  // A declaration in the config file's TOML form (the fields of one [[pipelines]] table).
  std::string toml = *dir_ / "hot.toml";
  ASSERT_TRUE(platform::WriteFileAtomic(toml, R"(name = "hot-sensors"
[trigger]
type = "file"
share = "default"
glob = "incoming/**/*.tsv"
settle_ms = 0
[input]
format = "csv"
delimiter = "\t"
[[steps]]
type = "filter"
where = "temp_c > 30"
[[sinks]]
type = "file"
share = "default"
path = "hot/{stem}.jsonl"
format = "jsonl"
[retry]
max_attempts = 3
)")
                  .ok());
  auto r = Cli({"pipeline", "create", "--file", toml});
  ASSERT_EQ(r.rc, 0) << r.All();
  EXPECT_EQ(r.out, "created pipeline 'hot-sensors' (file trigger)\n");
  r = Cli({"pipeline", "create", "--file", toml});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("pipeline 'hot-sensors' exists"), std::string::npos) << r.err;
  r = Cli({"pipeline", "list"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_TRUE(r.out.starts_with("NAME         TRIGGER  ENABLED  PENDING  DEAD")) << r.out;
  EXPECT_NE(r.out.find("\nhot-sensors  file     yes      0"), std::string::npos) << r.out;
  r = Cli({"pipeline", "show", "hot-sensors"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_NE(r.out.find("\nTrigger:" + std::string(12, ' ') + "file\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"where\": \"temp_c > 30\""), std::string::npos) << r.out;
  r = Cli({"pipeline", "show", "hot-sensors", "-o", "json"});
  ASSERT_EQ(r.rc, 0) << r.All();
  auto j = Json(r);
  EXPECT_EQ(j["declaration"]["input"]["delimiter"], "\t");
  EXPECT_EQ(j["declaration"]["retry"]["max_attempts"], 3);
  EXPECT_TRUE(j["status"].is_object()) << r.out;

  // Replaced from a [[pipelines]] table; the name must match the one given.
  std::string again = *dir_ / "hot2.toml";
  ASSERT_TRUE(platform::WriteFileAtomic(again, R"([[pipelines]]
name = "hot-sensors"
trigger = { type = "file", share = "default", glob = "incoming/*.csv" }
steps = [ { type = "filter", where = "temp_c > 40" } ]
sinks = [ { type = "file", share = "default" } ]
)")
                  .ok());
  r = Cli({"pipeline", "update", "hot-sensors", "--file", again});
  EXPECT_EQ(r.rc, 0) << r.All();
  r = Cli({"pipeline", "show", "hot-sensors", "-o", "json"});
  EXPECT_EQ(Json(r)["declaration"]["steps"][0]["where"], "temp_c > 40") << r.out;
  r = Cli({"pipeline", "update", "other-name", "--file", again});
  EXPECT_EQ(r.rc, 2) << r.All();

  // Runs and dead letters: none yet.
  r = Cli({"pipeline", "runs", "hot-sensors"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_EQ(r.out, "ID  STARTED  RESULT  ITEM  DURATION  ROWS IN  ROWS OUT  ERROR\n");
  r = Cli({"pipeline", "runs", "hot-sensors", "--limit", "5", "-o", "json"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_EQ(Json(r), nlohmann::json::parse(R"({"runs": []})"));
  r = Cli({"pipeline", "dead-letters", "hot-sensors"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_EQ(r.out, "ID  FAILED  ATTEMPTS  ITEM  ERROR\n");
  r = Cli({"pipeline", "run", "hot-sensors"});
  EXPECT_EQ(r.rc, 0) << r.All();
  r = Cli({"pipeline", "retry", "hot-sensors", "12345"});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("no dead letter 12345"), std::string::npos) << r.err;
  r = Cli({"pipeline", "discard", "hot-sensors", "12345"});
  EXPECT_EQ(r.rc, 2) << r.All();
  r = Cli({"pipeline", "runs", "no-such-pipeline"});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("no pipeline 'no-such-pipeline'"), std::string::npos) << r.err;

  // A module.
  std::string script = *dir_ / "clean.sh";
  ASSERT_TRUE(platform::WriteFileAtomic(script, "#!/bin/sh\nexec cat\n").ok());
  r = Cli({"module", "upload", "clean.sh", "--file", script});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_TRUE(r.out.starts_with("stored module 'clean.sh' (19 B, sha256 ")) << r.out;
  r = Cli({"module", "list"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_NE(r.out.find("\nclean.sh  19 B  "), std::string::npos) << r.out;
  r = Cli({"module", "list", "-o", "json"});
  ASSERT_EQ(r.rc, 0) << r.All();
  EXPECT_EQ(Json(r)["modules"][0]["size_bytes"], 19);
  r = Cli({"module", "upload", ".hidden", "--file", script});
  EXPECT_EQ(r.rc, 2) << r.All();

  r = Cli({"compute", "status"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_NE(r.out.find("MQTT broker:  off"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Pipelines:    1"), std::string::npos) << r.out;

  // Bad declarations: 2 with the box's message naming the field, or the file's problem.
  std::string bad = *dir_ / "bad.json";
  ASSERT_TRUE(platform::WriteFileAtomic(
                  bad, R"({"name": "bad", "trigger": {"type": "file", "share": "nowhere"},
                           "sinks": [{"type": "file", "share": "default"}]})")
                  .ok());
  r = Cli({"pipeline", "create", "--file", bad});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_EQ(r.err, "fieldstack: trigger.share: no share named 'nowhere'\n");
  ASSERT_TRUE(platform::WriteFileAtomic(bad, R"({"name": "bad", "trigger": {"type": "mqtt",
      "topics": ["sensors/#"]}, "sinks": [{"type": "file", "share": "default"}]})")
                  .ok());
  r = Cli({"pipeline", "create", "--file", bad});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("uses MQTT"), std::string::npos) << r.err;
  std::string broken = *dir_ / "broken.toml";
  ASSERT_TRUE(platform::WriteFileAtomic(broken, "name = \"x\"\n[trigger\n").ok());
  r = Cli({"pipeline", "create", "--file", broken});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("broken.toml: line 2"), std::string::npos) << r.err;
  r = Cli({"pipeline", "create", "--file", *dir_ / "missing.json"});
  EXPECT_EQ(r.rc, 2) << r.All();

  // Deleted: the module only once no pipeline uses it.
  r = Cli({"pipeline", "delete", "hot-sensors"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_EQ(r.out, "deleted pipeline 'hot-sensors'\n");
  r = Cli({"pipeline", "delete", "hot-sensors"});
  EXPECT_EQ(r.rc, 2) << r.All();
  r = Cli({"module", "delete", "clean.sh"});
  EXPECT_EQ(r.rc, 0) << r.All();
  r = Cli({"pipeline", "list", "-o", "json"});
  EXPECT_TRUE(Json(r)["pipelines"].empty()) << r.out;
  r = Cli({"module", "list", "-o", "json"});
  EXPECT_TRUE(Json(r)["modules"].empty()) << r.out;
}

TEST_F(CliTest, UploadsListsShowsAndDeletesModels) {
  // y = Relu(x), x and y float32 [3, 4, 5] (Debian's libonnx-testdata).
  const std::string relu = "/usr/share/libonnx-testdata/data/node/test_relu/model.onnx";
  if (!platform::PathExists(relu)) GTEST_SKIP() << relu << " is missing (libonnx-testdata)";
  auto r = Cli({"compute", "status", "-o", "json"});
  ASSERT_EQ(r.rc, 0) << r.All();
  std::string inference = Json(r).value("inference", "");
  if (inference.empty() || inference.starts_with("unavailable")) {
    GTEST_SKIP() << "no inference runtime on this box: " << inference;
  }
  r = Cli({"compute", "status"});
  EXPECT_NE(r.out.find("\nInference:    onnxruntime "), std::string::npos) << r.out;

  r = Cli({"model", "upload", "relu", "--file", relu});
  ASSERT_EQ(r.rc, 0) << r.All();
  EXPECT_TRUE(r.out.starts_with("registered model 'relu' version 1 (99 B, sha256 ")) << r.out;
  EXPECT_NE(r.out.find("\ninputs:  x:float32[3,4,5]\noutputs: y:float32[3,4,5]\n"),
            std::string::npos)
      << r.out;
  // Registered from a file on the box (the daemon runs here): the next version.
  r = Cli({"model", "register", "relu", "--path", relu, "-o", "json"});
  ASSERT_EQ(r.rc, 0) << r.All();
  auto j = Json(r);
  EXPECT_EQ(j["version"], 2) << r.out;
  EXPECT_EQ(j["inputs"],
            nlohmann::json::parse(R"([{"name": "x", "type": "float32", "shape": [3, 4, 5]}])"))
      << r.out;

  r = Cli({"model", "list"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_TRUE(r.out.starts_with("NAME  VERSION  SIZE  CREATED  ")) << r.out;
  EXPECT_NE(r.out.find("\nrelu  1        99 B  "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  x:float32[3,4,5]  y:float32[3,4,5]  "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nrelu  2        99 B  "), std::string::npos) << r.out;
  r = Cli({"model", "list", "-o", "json"});
  ASSERT_EQ(r.rc, 0) << r.All();
  j = Json(r);
  ASSERT_EQ(j["models"].size(), 2u) << r.out;
  EXPECT_EQ(j["models"][0]["outputs"][0]["shape"], nlohmann::json::parse("[3, 4, 5]"));
  EXPECT_EQ(j["models"][0]["size_bytes"], 99);
  r = Cli({"model", "show", "relu"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_TRUE(r.out.starts_with("Name:     relu\nVersion:  1\nSize:     99 B\n")) << r.out;
  EXPECT_NE(r.out.find("\nInputs:   x:float32[3,4,5]\nOutputs:  y:float32[3,4,5]\n\nName:     "
                       "relu\nVersion:  2\n"),
            std::string::npos)
      << r.out;
  r = Cli({"model", "show", "relu", "-o", "json"});
  ASSERT_EQ(r.rc, 0) << r.All();
  EXPECT_EQ(Json(r)["versions"].size(), 2u) << r.out;

  // Refused: a file that is not a model, sizes, names and paths: 2, with the message.
  std::string junk = *dir_ / "junk.onnx";
  ASSERT_TRUE(platform::WriteFileAtomic(junk, std::string(300, '\x07') + "not a model").ok());
  r = Cli({"model", "upload", "junk", "--file", junk});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_TRUE(r.err.starts_with("fieldstack: not a usable ONNX model: ")) << r.err;
  EXPECT_EQ(r.out, "");
  std::string empty = *dir_ / "empty.onnx";
  ASSERT_TRUE(platform::WriteFileAtomic(empty, "").ok());
  r = Cli({"model", "upload", "junk", "--file", empty});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("is empty"), std::string::npos) << r.err;
  r = Cli({"model", "upload", "junk", "--file", *dir_ / "missing.onnx"});
  EXPECT_EQ(r.rc, 2) << r.All();
  // Too big for the body: told to register it on the box instead, nothing sent.
  std::string big = *dir_ / "big.onnx";
  ASSERT_TRUE(platform::WriteFileAtomic(big, std::string(800 << 10, 'x')).ok());
  r = Cli({"model", "upload", "big", "--file", big});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("fieldstack model register big --path"), std::string::npos) << r.err;
  r = Cli({"model", "upload", "Relu", "--file", relu});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("is not a model name"), std::string::npos) << r.err;
  r = Cli({"model", "register", "junk", "--path", "relative/model.onnx"});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("field 'path'"), std::string::npos) << r.err;
  r = Cli({"model", "register", "junk", "--path", dir_->path()});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("is not a regular file"), std::string::npos) << r.err;
  r = Cli({"model", "register", "junk", "--path", junk});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("not a usable ONNX model"), std::string::npos) << r.err;
  r = Cli({"model", "show", "junk"});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_EQ(r.err, "fieldstack: no model 'junk'\n");

  // Deleted version by version; a version a pipeline uses stays.
  std::string anon = *dir_ / "anon.json";
  ASSERT_TRUE(platform::WriteFileAtomic(anon, R"({"name": "faces",
      "trigger": {"type": "file", "share": "default", "glob": "camera/*.jpg"},
      "steps": [{"type": "anonymize", "model": "relu", "version": 1}],
      "sinks": [{"type": "file", "share": "default", "path": "anon/{name}"}]})")
                  .ok());
  r = Cli({"pipeline", "create", "--file", anon});
  ASSERT_EQ(r.rc, 0) << r.All();
  r = Cli({"model", "delete", "relu", "1"});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("pipeline 'faces' uses this model"), std::string::npos) << r.err;
  r = Cli({"model", "delete", "relu", "2"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_EQ(r.out, "deleted model 'relu' version 2\n");
  r = Cli({"model", "delete", "relu", "2"});
  EXPECT_EQ(r.rc, 2) << r.All();
  r = Cli({"model", "delete", "relu", "two"});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("not a version number"), std::string::npos) << r.err;
  r = Cli({"pipeline", "delete", "faces"});
  ASSERT_EQ(r.rc, 0) << r.All();
  r = Cli({"model", "delete", "relu", "1", "-o", "json"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_EQ(r.out, "");
  r = Cli({"model", "list", "-o", "json"});
  EXPECT_EQ(Json(r), nlohmann::json::parse(R"({"models": []})")) << r.out;
}

TEST_F(CliTest, ExitCodesTellWhatWentWrong) {
  // Unreachable: 1, naming the server.
  auto r = Cli({"whoami", "--server", "https://127.0.0.1:1"});
  EXPECT_EQ(r.rc, 1) << r.All();
  EXPECT_NE(r.err.find("cannot reach the box at https://127.0.0.1:1"), std::string::npos) << r.err;
  // The box's certificate is not trusted without --cacert: 1, with the advice.
  r = Cli({"whoami", "--server", url_}, {}, "fresh.json");
  EXPECT_EQ(r.rc, 1) << r.All();
  EXPECT_NE(r.err.find("--cacert"), std::string::npos) << r.err;
  // --insecure works but warns.
  r = Cli({"whoami", "--server", url_, "--insecure"}, {}, "fresh.json");
  EXPECT_EQ(r.rc, 3) << r.All();
  EXPECT_NE(r.err.find("warning: --insecure"), std::string::npos) << r.err;
  // Bad usage: 2.
  r = Cli({"share", "create"});
  EXPECT_EQ(r.rc, 2) << r.All();
  r = Cli({"power", "restart"});
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("--yes"), std::string::npos) << r.err;
  r = Cli({"share", "list", "--output", "yaml"});
  EXPECT_EQ(r.rc, 2) << r.All();
  // No password anywhere (stdin is empty): 2.
  r = Cli({"login", "--server", url_, "--cacert", cacert_, "--user", "admin"}, {}, "x.json");
  EXPECT_EQ(r.rc, 2) << r.All();
  EXPECT_NE(r.err.find("FIELDSTACK_PASSWORD"), std::string::npos) << r.err;
  // Every command has help with an example.
  r = Cli({"share", "refresh", "--help"});
  EXPECT_EQ(r.rc, 0) << r.All();
  EXPECT_NE(r.out.find("Example:\n  fieldstack share refresh"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Exit codes:"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace fieldstack
