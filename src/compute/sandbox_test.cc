// Tests of the bubblewrap runner against the real bwrap and the real cgroups of this box: each
// limit is shown to be enforced by a module that breaks it.

#include "compute/sandbox.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fieldstack::compute {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fs-sandbox-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0755);  // the sandbox uid must reach the modules
    auto runner = MakeBwrapRunner(BwrapOptions{});
    ASSERT_TRUE(runner.ok()) << runner.status().ToString();
    runner_ = std::move(*runner);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes an executable module file and returns its path.
  std::string Module(const std::string& name, const std::string& text, mode_t mode = 0755) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }

  std::string MakeDir(const std::string& name, mode_t mode = 0755) {
    std::string path = dir_ + "/" + name;
    fs::create_directories(path);
    ::chmod(path.c_str(), mode);
    return path;
  }

  // Runs with stdin from `input`, returns the result and collects stdout into out_.
  ModuleResult RunWith(const ModuleSpec& spec, std::string input = "") {
    size_t pos = 0;
    out_.clear();
    auto source = [&](std::span<uint8_t> buf) -> Result<size_t> {
      size_t n = std::min(buf.size(), input.size() - pos);
      std::memcpy(buf.data(), input.data() + pos, n);
      pos += n;
      return n;
    };
    auto r = runner_->Run(
        spec, source,
        [&](std::string_view chunk) {
          out_.append(chunk);
          return Status::Ok();
        },
        nullptr);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ModuleResult{};
  }

  std::string dir_;
  std::unique_ptr<ModuleRunner> runner_;
  std::string out_;
};

TEST_F(SandboxTest, DescribesCgroupLimits) {
  std::string d = runner_->Describe();
  EXPECT_NE(d.find("cgroup v"), std::string::npos) << d;
  EXPECT_NE(d.find("host uid 65534"), std::string::npos) << d;
  RecordProperty("describe", d);
}

TEST_F(SandboxTest, PythonModuleTransformsJsonLinesStreaming10MB) {
  std::string module = Module("double.py",
                              "#!/usr/bin/python3\n"
                              "import json, sys\n"
                              "for line in sys.stdin:\n"
                              "    o = json.loads(line)\n"
                              "    o['n'] *= 2\n"
                              "    sys.stdout.write(json.dumps(o) + '\\n')\n");
  // All input is written before the module's output is read only if the loop is right: 10 MB
  // is far more than the pipe buffers.
  std::string input;
  int lines = 0;
  while (input.size() < (10u << 20)) {
    input +=
        "{\"n\": " + std::to_string(lines++) + ", \"pad\": \"" + std::string(40, 'x') + "\"}\n";
  }
  ModuleSpec spec{.argv = {module}};
  spec.limits.timeout_ms = 20000;
  ModuleResult r = RunWith(spec, input);
  ASSERT_TRUE(r.ok()) << r.error << r.stderr_tail;
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(std::count(out_.begin(), out_.end(), '\n'), lines);
  EXPECT_NE(out_.find("{\"n\": 2, "), std::string::npos);
  EXPECT_NE(out_.find("{\"n\": " + std::to_string(2 * (lines - 1)) + ", "), std::string::npos);
  EXPECT_GT(r.peak_memory_bytes, 0u);
}

TEST_F(SandboxTest, ShellModuleReadsStdinWritesStdout) {
  std::string module = Module("upper.sh", "#!/bin/sh\nexec tr a-z A-Z\n");
  ModuleResult r = RunWith(ModuleSpec{.argv = {module}}, "hello\nworld\n");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(out_, "HELLO\nWORLD\n");
}

TEST_F(SandboxTest, FilesContractInputReadOnlyOutputWritable) {
  std::string input_dir = MakeDir("in");
  std::string input = input_dir + "/data.txt";
  std::ofstream(input) << "abc\n";
  ::chmod(input.c_str(), 0644);
  std::string output_dir = MakeDir("out", 0700);
  std::string module = Module("copy.sh",
                              "#!/bin/sh\n"
                              "tr a-z A-Z < \"$1\" > \"$2/result.txt\" || exit 5\n"
                              "if echo x >> \"$1\" 2>/dev/null; then echo WROTE; "
                              "else echo READONLY; fi\n"
                              "if touch \"$(dirname \"$1\")/new\" 2>/dev/null; then echo "
                              "CREATED; fi\n"
                              "pwd\n");
  ModuleSpec spec{.argv = {module, input, output_dir},
                  .read_only_paths = {input_dir},
                  .output_dir = output_dir};
  ModuleResult r = RunWith(spec);
  ASSERT_TRUE(r.ok()) << r.error << r.stderr_tail;
  EXPECT_EQ(out_, "READONLY\n" + output_dir + "\n");
  EXPECT_EQ(ReadAll(output_dir + "/result.txt"), "ABC\n");
  EXPECT_EQ(ReadAll(input), "abc\n");
  EXPECT_FALSE(fs::exists(input_dir + "/new"));
  struct stat st {};
  ASSERT_EQ(::stat((output_dir + "/result.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);  // written by the unprivileged sandbox uid
}

TEST_F(SandboxTest, MemoryHogIsKilledAndReported) {
  std::string module = Module("hog.py",
                              "#!/usr/bin/python3\n"
                              "b = b'x' * (300 << 20)\n"
                              "print('survived', len(b))\n");
  ModuleSpec spec{.argv = {module}};
  spec.limits.memory_bytes = 64 << 20;
  spec.limits.timeout_ms = 20000;
  ModuleResult r = RunWith(spec);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.memory_exceeded) << r.error << r.stderr_tail;
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_EQ(r.error, "killed: memory limit 64 MiB exceeded");
  EXPECT_EQ(out_.find("survived"), std::string::npos);
  EXPECT_LE(r.peak_memory_bytes, 64u << 20);
  RecordProperty("peak_memory_bytes", std::to_string(r.peak_memory_bytes));
  // The box is unaffected: this process still allocates and the runner still works.
  std::string big(100 << 20, 'y');
  EXPECT_EQ(big.back(), 'y');
  std::string ok = Module("ok.sh", "#!/bin/sh\necho fine\n");
  EXPECT_TRUE(RunWith(ModuleSpec{.argv = {ok}}).ok());
}

bool ProcessWithArgExists(const std::string& arg) {
  DIR* d = ::opendir("/proc");
  bool found = false;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string cmdline = ReadAll(std::string("/proc/") + e->d_name + "/cmdline");
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    if (cmdline.find(arg) != std::string::npos && cmdline.rfind("sleep", 0) == 0) found = true;
  }
  ::closedir(d);
  return found;
}

TEST_F(SandboxTest, TimeoutKillsModuleAndItsChildren) {
  std::string module = Module("slow.sh",
                              "#!/bin/sh\n"
                              "setsid sleep 3017 &\n"
                              "sleep 3018 &\n"
                              "echo started\n"
                              "sleep 60\n");
  ModuleSpec spec{.argv = {module}};
  spec.limits.timeout_ms = 1000;
  ModuleResult r = RunWith(spec);
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error, "timed out after 1000 ms");
  EXPECT_EQ(out_, "started\n");
  EXPECT_GE(r.duration_ms, 1000);
  EXPECT_LT(r.duration_ms, 5000);
  EXPECT_FALSE(ProcessWithArgExists("3017"));
  EXPECT_FALSE(ProcessWithArgExists("3018"));
}

class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
  }
  ~Listener() { ::close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_;
  uint16_t port_;
};

TEST_F(SandboxTest, NetworkIsUnreachableUnlessAllowed) {
  Listener listener;
  std::string module = Module("net.py",
                              "#!/usr/bin/python3\n"
                              "import socket, sys\n"
                              "def try_connect(host, port):\n"
                              "    try:\n"
                              "        socket.create_connection((host, port), timeout=2).close()\n"
                              "        return 'connected'\n"
                              "    except OSError as e:\n"
                              "        return 'blocked'\n"
                              "print('loopback', try_connect('127.0.0.1', int(sys.argv[1])))\n"
                              "print('external', try_connect('1.1.1.1', 53))\n"
                              "try:\n"
                              "    socket.getaddrinfo('example.com', 80)\n"
                              "    print('dns resolved')\n"
                              "except OSError:\n"
                              "    print('dns blocked')\n");
  ModuleSpec spec{.argv = {module, std::to_string(listener.port())}};
  spec.limits.timeout_ms = 15000;
  ModuleResult r = RunWith(spec);
  ASSERT_TRUE(r.ok()) << r.error << r.stderr_tail;
  EXPECT_EQ(out_, "loopback blocked\nexternal blocked\ndns blocked\n");

  // The same module with the network shared does reach the host: the check above can fail.
  spec.limits.network = true;
  r = RunWith(spec);
  ASSERT_TRUE(r.ok()) << r.error << r.stderr_tail;
  EXPECT_EQ(out_.rfind("loopback connected\n", 0), 0u) << out_;
}

TEST_F(SandboxTest, ForkBombIsLimitedByProcessCount) {
  std::string module = Module("bomb.sh",
                              "#!/bin/sh\n"
                              "n=0\n"
                              "for i in $(seq 200); do\n"
                              "  sleep 2 2>/dev/null & n=$((n+1))\n"
                              "done\n"
                              "wait\n");
  ModuleSpec spec{.argv = {module}};
  spec.limits.max_processes = 32;
  spec.limits.timeout_ms = 15000;
  ModuleResult r = RunWith(spec);
  EXPECT_TRUE(r.pids_exceeded) << r.error << r.stderr_tail;
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.stderr_tail.find("fork"), std::string::npos) << r.stderr_tail;
}

TEST_F(SandboxTest, CpuQuotaThrottlesBusyLoop) {
  std::string module = Module("spin.py",
                              "#!/usr/bin/python3\n"
                              "import time\n"
                              "t = time.time()\n"
                              "while time.time() - t < 1.5:\n"
                              "    pass\n");
  ModuleSpec spec{.argv = {module}};
  spec.limits.cpus = 0.2;
  spec.limits.timeout_ms = 10000;
  ModuleResult r = RunWith(spec);
  ASSERT_TRUE(r.ok()) << r.error << r.stderr_tail;
  // Unthrottled it would use ~1500 ms; at 20% about 300 ms plus start-up.
  RecordProperty("cpu_usage_ms", static_cast<int>(r.cpu_usage_ms));
  EXPECT_GT(r.cpu_usage_ms, 50u);  // low bound loose: a busy box gives less
  EXPECT_LT(r.cpu_usage_ms, 700u);
}

TEST_F(SandboxTest, HostFilesOutsideBindsAreInvisible) {
  std::string module = Module("look.sh",
                              "#!/bin/sh\n"
                              "for p in /work /root /home /var /etc/shadow /sys " +
                                  dir_ +
                                  "/secret; do\n"
                                  "  test -e $p && echo \"visible $p\"\n"
                                  "done\n"
                                  "id -u\n");
  std::ofstream(dir_ + "/secret") << "s";
  ModuleResult r = RunWith(ModuleSpec{.argv = {module}});
  ASSERT_TRUE(r.ok()) << r.error << r.stderr_tail;
  EXPECT_EQ(out_, "65534\n");
}

TEST_F(SandboxTest, FailureReportsExitCodeAndLastStderrLine) {
  std::string module = Module("fail.sh", "#!/bin/sh\necho working\necho boom >&2\nexit 3\n");
  std::string err;
  auto r = runner_->Run(ModuleSpec{.argv = {module}}, nullptr, nullptr,
                        [&](std::string_view chunk) { err.append(chunk); });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->error, "exit code 3: boom");
  EXPECT_EQ(err, "boom\n");
  EXPECT_EQ(r->stderr_tail, "boom\n");
}

TEST_F(SandboxTest, StdoutHandlerErrorKillsModule) {
  std::string module = Module("yes.sh", "#!/bin/sh\nexec yes\n");
  size_t seen = 0;
  auto r = runner_->Run(
      ModuleSpec{.argv = {module}}, nullptr,
      [&](std::string_view chunk) {
        seen += chunk.size();
        return seen > (1 << 20) ? NoSpaceError("downstream full") : Status::Ok();
      },
      nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->io_status.code(), StatusCode::kNoSpace);
  EXPECT_EQ(r->error.rfind("killed: ", 0), 0u) << r->error;
}

TEST_F(SandboxTest, ModuleThatClosesStdinEarlyIsNotAnError) {
  std::string module = Module("head.sh", "#!/bin/sh\nhead -c 10\n");
  ModuleResult r = RunWith(ModuleSpec{.argv = {module}}, std::string(5 << 20, 'z'));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(out_, std::string(10, 'z'));
}

TEST_F(SandboxTest, BadSpecsAreRefusedClearly) {
  auto run = [&](const ModuleSpec& spec) {
    return runner_->Run(spec, nullptr, nullptr, nullptr).status();
  };
  EXPECT_EQ(run(ModuleSpec{}).code(), StatusCode::kInvalidArgument);
  Status s = run(ModuleSpec{.argv = {"bin/mod"}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("absolute"), std::string::npos) << s.ToString();
  s = run(ModuleSpec{.argv = {dir_ + "/missing"}});
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  std::string plain = Module("plain.sh", "#!/bin/sh\n", 0644);
  s = run(ModuleSpec{.argv = {plain}});
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("not executable"), std::string::npos) << s.ToString();
  s = run(ModuleSpec{.argv = {dir_}});
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  std::string ok = Module("ok.sh", "#!/bin/sh\n");
  EXPECT_EQ(run(ModuleSpec{.argv = {ok}, .read_only_paths = {"/proc/1/root"}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(run(ModuleSpec{.argv = {ok}, .read_only_paths = {"/"}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(run(ModuleSpec{.argv = {ok}, .read_only_paths = {dir_ + "/../etc"}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(run(ModuleSpec{.argv = {ok}, .output_dir = dir_ + "/none"}).code(),
            StatusCode::kNotFound);
  // Private to root: the unprivileged sandbox uid cannot run it.
  std::string hidden_dir = MakeDir("hidden", 0700);
  std::string hidden = hidden_dir + "/mod.sh";
  std::ofstream(hidden) << "#!/bin/sh\n";
  ::chmod(hidden.c_str(), 0755);
  s = run(ModuleSpec{.argv = {hidden}});
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("uid 65534"), std::string::npos) << s.ToString();
}

TEST(SandboxSetupTest, RemovesCgroupsLeftByADeadDaemon) {
  // A run group named after a pid that no longer exists, as a crashed daemon leaves it.
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_GT(dead, 0);
  ASSERT_EQ(::waitpid(dead, nullptr, 0), dead);
  std::string own = "/";
  std::ifstream self("/proc/self/cgroup");
  for (std::string line; std::getline(self, line);) {
    if (line.find(":pids:") != std::string::npos) own = line.substr(line.rfind(':') + 1);
  }
  std::string parent = "/sys/fs/cgroup/pids" + (own == "/" ? "" : own) + "/fieldstack-leftover";
  std::string stale = parent + "/run-" + std::to_string(dead) + "-0";
  ASSERT_TRUE(fs::create_directories(stale)) << stale;
  auto r = MakeBwrapRunner(BwrapOptions{.cgroup_parent = "fieldstack-leftover"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(fs::exists(stale));
  r = Result<std::unique_ptr<ModuleRunner>>(InternalError("drop"));  // removes the parents
  EXPECT_FALSE(fs::exists(parent));
}

TEST(SandboxSetupTest, MissingBwrapIsFailedPrecondition) {
  auto r = MakeBwrapRunner(BwrapOptions{.bwrap_path = "/nonexistent/bwrap"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
}

TEST(SandboxSetupTest, WithoutCgroupsFallsBackWhenAllowed) {
  BwrapOptions opts{.cgroup_root = "/nonexistent"};
  auto r = MakeBwrapRunner(opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  opts.require_cgroups = false;
  r = MakeBwrapRunner(opts);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE((*r)->Describe().find("no cgroups"), std::string::npos) << (*r)->Describe();
  auto res = (*r)->Run(ModuleSpec{.argv = {"/usr/bin/true"}}, nullptr, nullptr, nullptr);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_TRUE(res->ok()) << res->error;
}

}  // namespace
}  // namespace fieldstack::compute
