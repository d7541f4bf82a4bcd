#pragma once

// Child processes the daemon runs: a one-shot command, and a server it supervises (smbd,
// ganesha.nfsd, rpcbind) that is restarted when it dies and stopped with its process group.
//
// Thread safety: RunCommand is safe anywhere. A Supervised is started and destroyed from one
// thread; pid(), restarts() and Signal() from any.

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"

namespace fieldstack::platform {

// Runs `command` through /bin/sh with `input` on its stdin and its output discarded.
// Internal error naming the command and its exit status when it fails.
Status RunCommand(const std::string& command, const std::string& input = "");

// A free TCP port on loopback (0 when none could be found).
uint16_t FreeTcpPort();
// Whether something accepts TCP connections on address:port (IPv4).
bool AcceptsTcp(const std::string& address, uint16_t port);

// A process of an earlier daemon run that was killed outlives it, holding ports and state:
// stops the process `pid_file` names when its command line contains `marker` (a path only
// our runs pass), TERM first, KILL after 5 s. Nothing happens when the file is missing or
// names another process.
void StopLeftover(const std::string& pid_file, const std::string& marker);

class Supervised {
 public:
  // Starts argv[0] (a full path) in its own process group, stdout and stderr appended to
  // `output`, and restarts it, at most once a second, whenever it exits.
  static Result<std::unique_ptr<Supervised>> Start(std::string name, std::vector<std::string> argv,
                                                   std::string output);
  ~Supervised();  // SIGTERM to the process group, then waits

  pid_t pid() {
    MutexLock l(mu_);
    return pid_;
  }
  int restarts() const { return restarts_; }
  // Sends `signal` to the running process (e.g. SIGHUP to reload its config).
  Status Signal(int signal);

 private:
  Supervised() = default;
  pid_t Spawn();
  void Supervise();
  void RestartUntilStopped();

  std::string name_;
  std::vector<std::string> argv_;
  std::string output_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> restarts_{0};
  std::atomic<bool> reaped_{false};  // the supervisor has returned
  Mutex mu_;
  pid_t pid_ GUARDED_BY(mu_) = -1;
  std::thread supervisor_;
};

}  // namespace fieldstack::platform
