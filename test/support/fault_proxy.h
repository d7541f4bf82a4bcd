#pragma once

// FaultProxy: an HTTP/1.1 proxy for tests that sits between a client (the uploader) and a
// service (Azurite) and, per request, by a seeded random draw, passes it through or injects
// a fault: answer 500 or 503 or 429 without forwarding, reset the connection, flip one byte of
// the request body, forward only part of the body and cut the connection, or add latency.
// Deterministic for a seed and a request order. One thread per connection; Stop() joins them.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace fieldstack::testing {

class FaultProxy {
 public:
  // kBlackhole: the request vanishes; the connection stays open and silent for blackhole_ms.
  enum class Fault { kNone, k500, k503, k429, kReset, kFlipByte, kTruncate, kDelay, kBlackhole };

  struct Options {
    uint64_t seed = 1;
    double fault_rate = 0.3;  // share of requests that get a fault
    std::vector<Fault> faults = {Fault::k500,   Fault::k503,      Fault::k429,
                                 Fault::kReset, Fault::kFlipByte, Fault::kTruncate,
                                 Fault::kDelay, Fault::kBlackhole};
    int delay_ms = 200;
    int blackhole_ms = 3000;
  };

  // Listens on a free loopback port and forwards to upstream_host:upstream_port.
  FaultProxy(std::string upstream_host, uint16_t upstream_port, Options options);
  ~FaultProxy();

  uint16_t port() const { return port_; }
  // Requests seen, and how many got each fault.
  int requests() const { return requests_; }
  std::map<Fault, int> counts() const;

 private:
  void Accept();
  void Serve(int client);
  Fault Draw();

  std::string upstream_host_;
  uint16_t upstream_port_;
  Options options_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
  mutable std::mutex mu_;
  std::mt19937_64 rng_;
  std::map<Fault, int> counts_;
  std::vector<std::thread> threads_;
  std::vector<int> open_fds_;
  std::thread acceptor_;
};

}  // namespace fieldstack::testing
