#pragma once

// Runs a command line through /bin/sh for tests that drive real clients (smbclient, nfs-cp,
// aws, az): its exit status (-1 when it did not exit normally) and stdout+stderr together.

#include <stdio.h>
#include <sys/wait.h>

#include <string>
#include <utility>

namespace fieldstack::testing {

struct ShellRun {
  int rc = -1;
  std::string out;
};

inline ShellRun Shell(const std::string& cmd) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  std::string out;
  char buf[4096];
  for (size_t n; (n = ::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, std::move(out)};
}

inline std::pair<int, std::string> RunShell(const std::string& cmd) {
  ShellRun r = Shell(cmd);
  return {r.rc, std::move(r.out)};
}

}  // namespace fieldstack::testing
