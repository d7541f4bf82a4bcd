#include "platform/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include "platform/file.h"

namespace fieldstack::platform {

Status RunCommand(const std::string& command, const std::string& input) {
  // A subshell, so that redirections inside `command` keep their meaning.
  FILE* p = ::popen(("(" + command + ") >/dev/null 2>&1").c_str(), "w");
  if (p == nullptr) return InternalError("cannot run " + command);
  // A command that exits without reading its input must not kill us with SIGPIPE: block it
  // while writing and take back one that is pending then.
  sigset_t pipe, old;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe, &old);
  if (!input.empty()) std::fwrite(input.data(), 1, input.size(), p);
  int rc = ::pclose(p);
  timespec zero{};
  while (::sigtimedwait(&pipe, nullptr, &zero) == SIGPIPE) {
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) {
    return InternalError(command + " failed (exit " +
                         std::to_string(WIFEXITED(rc) ? WEXITSTATUS(rc) : rc) + ")");
  }
  return Status::Ok();
}

uint16_t FreeTcpPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

bool AcceptsTcp(const std::string& address, uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (::inet_pton(AF_INET, address.c_str(), &a.sin_addr) != 1) {
    ::close(fd);
    return false;
  }
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

void StopLeftover(const std::string& pid_file, const std::string& marker) {
  auto text = ReadFileToString(pid_file);
  if (!text.ok()) return;
  pid_t old = static_cast<pid_t>(std::atol(text->c_str()));
  if (old <= 1) return;
  std::ifstream proc("/proc/" + std::to_string(old) + "/cmdline");  // size 0 to stat()
  std::string cmdline((std::istreambuf_iterator<char>(proc)), std::istreambuf_iterator<char>());
  if (cmdline.find(marker) == std::string::npos) return;
  spdlog::warn("stopping process {} left by an earlier run ({})", old, pid_file);
  ::kill(-old, SIGTERM);  // its process group: smbd's children hold the port too
  ::kill(old, SIGTERM);
  for (int i = 0; i < 50 && ::kill(old, 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(-old, SIGKILL);
  ::kill(old, SIGKILL);
  for (int i = 0; i < 50 && (::kill(old, 0) == 0 || ::kill(-old, 0) == 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Result<std::unique_ptr<Supervised>> Supervised::Start(std::string name,
                                                      std::vector<std::string> argv,
                                                      std::string output) {
  if (argv.empty() || ::access(argv[0].c_str(), X_OK) != 0) {
    return FailedPreconditionError(name + ": cannot run " + (argv.empty() ? "" : argv[0]) +
                                   " (is it installed? scripts/install-deps)");
  }
  auto s = std::unique_ptr<Supervised>(new Supervised);
  s->name_ = std::move(name);
  s->argv_ = std::move(argv);
  s->output_ = std::move(output);
  pid_t pid = s->Spawn();
  if (pid < 0) return InternalError(s->name_ + ": fork failed: " + std::strerror(errno));
  {
    MutexLock l(s->mu_);
    s->pid_ = pid;
  }
  s->supervisor_ = std::thread([p = s.get()] { p->Supervise(); });
  return s;
}

// Everything the child needs is prepared before fork: the parent has other threads.
pid_t Supervised::Spawn() {
  std::vector<char*> args;
  for (std::string& a : argv_) args.push_back(a.data());
  args.push_back(nullptr);
  int fd = ::open(output_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  pid_t pid = ::fork();
  if (pid == 0) {
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, 0);
    // Nothing else of ours: sockets of libraries that do not set close-on-exec (Boost.Asio's
    // listeners) would otherwise live on in the server.
    ::close_range(3, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // the daemon blocks its stop signals
    ::setpgid(0, 0);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  if (pid > 0) ::setpgid(pid, pid);  // also here, so that kill(-pid) works at once
  if (fd >= 0) ::close(fd);
  return pid;
}

void Supervised::Supervise() {
  RestartUntilStopped();
  reaped_ = true;
}

void Supervised::RestartUntilStopped() {
  while (true) {
    pid_t pid;
    {
      MutexLock l(mu_);
      pid = pid_;
    }
    int status = 0;
    if (pid > 0) {
      pid_t r;
      do {
        r = ::waitpid(pid, &status, 0);
      } while (r < 0 && errno == EINTR);
      if (r < 0) return;
      MutexLock l(mu_);
      pid_ = -1;  // never signal a reused pid
      if (stopping_) return;
    }
    spdlog::warn("{}: exited (status {}); restarting", name_, status);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    MutexLock l(mu_);
    if (stopping_) return;
    pid_ = Spawn();  // -1 when fork fails: tried again a second later
    ++restarts_;
  }
}

Status Supervised::Signal(int signal) {
  MutexLock l(mu_);
  if (pid_ <= 0 || ::kill(pid_, signal) != 0) {
    return UnavailableError(name_ + " is not running");
  }
  return Status::Ok();
}

Supervised::~Supervised() {
  pid_t pid;
  {
    MutexLock l(mu_);
    stopping_ = true;
    pid = pid_;
  }
  if (pid > 0) ::kill(-pid, SIGTERM);  // the server and its children
  for (int i = 0; i < 100 && supervisor_.joinable() && !reaped_; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (supervisor_.joinable() && !reaped_ && pid > 0) {
    spdlog::warn("{}: did not stop in 10 s; killing it", name_);
    ::kill(-pid, SIGKILL);
  }
  if (supervisor_.joinable()) supervisor_.join();
}

}  // namespace fieldstack::platform
