#pragma once

// PacketLoss: drops a share of the loopback TCP packets to and from one port with iptables
// (`-m statistic --mode random`), for tests of uploads over a lossy link; Blackhole() drops
// all of them for a while. Rules are removed when the object goes. Needs root and iptables
// (scripts/install-deps); ok() is false, with error() saying why, when the rules could not be
// added.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace fieldstack::testing {

class PacketLoss {
 public:
  PacketLoss(int port, double probability) {
    char p[32];
    std::snprintf(p, sizeof p, "%.2f", probability);
    for (const char* dir : {"--dport", "--sport"}) {
      std::string rule = std::string("INPUT -i lo -p tcp ") + dir + " " + std::to_string(port) +
                         " -m statistic --mode random --probability " + p + " -j DROP";
      if (!Run("-I " + rule)) return;
      rules_.push_back(rule);
    }
    port_ = port;
  }
  ~PacketLoss() {
    for (const auto& r : rules_) Run("-D " + r);
  }
  PacketLoss(const PacketLoss&) = delete;
  PacketLoss& operator=(const PacketLoss&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  // Packets the random-drop rules have dropped so far.
  long Dropped() {
    FILE* f = popen("iptables -w -L INPUT -v -x -n 2>/dev/null", "r");
    long total = 0;
    char line[512];
    std::string mark = "statistic mode random";
    while (f && fgets(line, sizeof line, f)) {
      std::string l = line;
      if (l.find(mark) == std::string::npos ||
          l.find(":" + std::to_string(port_)) == std::string::npos) {
        continue;
      }
      total += std::atol(line);
    }
    if (f) pclose(f);
    return total;
  }

  // Drops every packet of the port for `d` (blocking).
  void Blackhole(std::chrono::milliseconds d) {
    std::vector<std::string> all;
    for (const char* dir : {"--dport", "--sport"}) {
      std::string rule =
          std::string("INPUT -i lo -p tcp ") + dir + " " + std::to_string(port_) + " -j DROP";
      if (Run("-I " + rule)) all.push_back(rule);
    }
    std::this_thread::sleep_for(d);
    for (const auto& r : all) Run("-D " + r);
  }

 private:
  bool Run(const std::string& args) {
    std::string cmd = "iptables -w " + args + " 2>&1";
    FILE* f = popen(cmd.c_str(), "r");
    std::string out;
    char buf[256];
    while (f && fgets(buf, sizeof buf, f)) out += buf;
    int rc = f ? pclose(f) : -1;
    if (rc != 0 && error_.empty()) error_ = "iptables " + args + ": " + out;
    return rc == 0;
  }

  int port_ = 0;
  std::vector<std::string> rules_;
  std::string error_;
};

}  // namespace fieldstack::testing
