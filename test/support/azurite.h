#pragma once

// Azurite: starts the Azurite blob service (npm azurite, installed by scripts/install-deps
// under .deps/npm) on a free loopback port with a private data folder, for tests that need a
// real Azure Blob endpoint. One instance per test process (Shared()); stopped with SIGTERM at
// exit (Azurite is not crash-safe, so it is never SIGKILLed).

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "test/support/temp_dir.h"

namespace fieldstack::testing {

class Azurite {
 public:
  static constexpr char kAccount[] = "devstoreaccount1";
  static constexpr char kKey[] =
      "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

  // The shared instance; endpoint() is empty (and error() says why) if it could not start.
  static Azurite& Shared() {
    static Azurite instance;
    return instance;
  }

  // A private instance (for tests that stop and restart the service).
  Azurite() { Start(0); }

  // Stops the service (SIGTERM) and waits for it; its data stays in the folder.
  void Stop() {
    if (pid_ > 0) {
      ::kill(-pid_, SIGTERM);
      int status;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }
  // Starts it again on the same port and data folder.
  void Restart() {
    Stop();
    Start(port_);
  }

  const std::string& endpoint() const { return endpoint_; }
  const std::string& error() const { return error_; }

  ~Azurite() { Stop(); }

 private:
  void Start(int port) {
    endpoint_.clear();
    error_.clear();
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      error_ = "pipe failed";
      return;
    }
    std::string location = dir_.path();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::dup2(fds[1], 2);
      ::setpgid(0, 0);
      std::string p = std::to_string(port);
      ::execl(FS_AZURITE_BIN, FS_AZURITE_BIN, "--blobHost", "127.0.0.1", "--blobPort", p.c_str(),
              "--location", location.c_str(), "--skipApiVersionCheck", "--loose", "--silent",
              "--disableTelemetry", nullptr);
      ::_exit(127);
    }
    ::close(fds[1]);
    std::string out;
    const std::string marker = "successfully listens on ";
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      size_t at = out.find(marker);
      size_t eol = at == std::string::npos ? std::string::npos : out.find('\n', at);
      if (eol != std::string::npos) {
        endpoint_ = out.substr(at + marker.size(), eol - at - marker.size());
        while (!endpoint_.empty() && (endpoint_.back() == '\r' || endpoint_.back() == ' ')) {
          endpoint_.pop_back();
        }
        size_t colon = endpoint_.rfind(':');
        port_ = std::atoi(endpoint_.c_str() + colon + 1);
        endpoint_ += std::string("/") + kAccount;
        break;
      }
      pollfd p{fds[0], POLLIN, 0};
      if (::poll(&p, 1, 1000) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    // Keep draining Azurite's output so it never blocks on a full pipe.
    int fd = fds[0];
    std::thread([fd] {
      char buf[4096];
      while (::read(fd, buf, sizeof buf) > 0) {
      }
      ::close(fd);
    }).detach();
    if (endpoint_.empty()) error_ = "Azurite did not start (" FS_AZURITE_BIN "): " + out;
  }

  TempDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string endpoint_;
  std::string error_;
};

}  // namespace fieldstack::testing
