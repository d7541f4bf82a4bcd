#pragma once

// A child process for tests that run the real `fieldstack` binary (the daemon, or the CLI):
// started with its stdout and stderr on one pipe, read with WaitFor until a log line appears,
// SIGKILLed if the test ends while it runs.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace fieldstack::testing {

struct DaemonProc {
  pid_t pid = -1;
  int out = -1;  // the child's stdout and stderr
  std::string output;

  // Reads output until `needle` appears or `timeout_ms` passes; returns the rest of that line
  // ("" on timeout).
  std::string WaitFor(const std::string& needle, int timeout_ms = 10000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      size_t at = output.find(needle);
      if (at != std::string::npos) {
        size_t from = at + needle.size();
        size_t eol = output.find('\n', from);
        if (eol != std::string::npos) return output.substr(from, eol - from);
      }
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - std::chrono::steady_clock::now())
                                      .count());
      if (left <= 0) return "";
      pollfd p{out, POLLIN, 0};
      if (::poll(&p, 1, left) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(out, buf, sizeof buf);
      if (n <= 0) return "";
      output.append(buf, static_cast<size_t>(n));
    }
  }

  // Waits for exit (reading the rest of the output); returns the exit code, or -signal.
  int Wait() {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(out, buf, sizeof buf)) > 0) output.append(buf, static_cast<size_t>(n));
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(out);
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }

  ~DaemonProc() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      Wait();
    }
  }
};

// Starts `binary` with `args` in `cwd`, with `env` ("NAME=value") added to the environment.
inline std::unique_ptr<DaemonProc> StartProc(const std::string& binary,
                                             const std::vector<std::string>& args,
                                             const std::string& cwd,
                                             const std::vector<std::string>& env = {}) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return nullptr;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> argv = {const_cast<char*>(binary.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  auto p = std::make_unique<DaemonProc>();
  p->pid = pid;
  p->out = fds[0];
  return p;
}

}  // namespace fieldstack::testing
