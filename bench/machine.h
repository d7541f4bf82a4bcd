#pragma once

// What the benchmarks print about the machine they ran on, small statistics, test data.

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace fieldstack::bench {

// The value after ':' of the first line of `file` that starts with `prefix` ("?" if none).
inline std::string FirstLineWith(const std::string& file, const std::string& prefix) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(prefix)) {
      std::string v = line.substr(line.find(':') + 1);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.erase(0, 1);
      return v;
    }
  }
  return "?";
}

// The mount holding `path`: "ext4 on /dev/vda (mounted at /)".
inline std::string FilesystemOf(const std::string& path) {
  std::string real = std::filesystem::weakly_canonical(path).string(), best, desc = "?";
  std::ifstream in("/proc/mounts");
  std::string dev, mnt, type, rest;
  while (in >> dev >> mnt >> type && std::getline(in, rest)) {
    bool under = real == mnt || mnt == "/" || real.starts_with(mnt + "/");
    if (under && mnt.size() >= best.size()) {
      best = mnt;
      desc = type + " on " + dev + " (mounted at " + mnt + ")";
    }
  }
  return desc;
}

// "2 CPUs (model), 23.5 GiB RAM, kernel ..., data dir on ext4 on /dev/vda (mounted at /)".
inline std::string Machine(const std::string& dir) {
  utsname u{};
  ::uname(&u);
  char buf[512];
  double mem_gib = std::stod(FirstLineWith("/proc/meminfo", "MemTotal")) / 1024 / 1024;
  std::snprintf(buf, sizeof buf, "%ld CPUs (%s), %.1f GiB RAM, kernel %s, data dir on %s",
                ::sysconf(_SC_NPROCESSORS_ONLN),
                FirstLineWith("/proc/cpuinfo", "model name").c_str(), mem_gib, u.release,
                FilesystemOf(dir).c_str());
  return buf;
}

inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// `bytes` of xoshiro256** output: random enough that nothing compresses, fast to make.
inline std::vector<uint8_t> MakeData(uint64_t bytes, uint64_t seed = 42) {
  std::vector<uint8_t> data(bytes);
  uint64_t s[4] = {0x9E3779B97F4A7C15ull, 0xBF58476D1CE4E5B9ull, 0x94D049BB133111EBull, seed};
  auto rotl = [](uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
  for (uint64_t off = 0; off + 8 <= bytes; off += 8) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    std::memcpy(data.data() + off, &r, 8);
  }
  return data;
}

// CPU seconds of this process's children, as far as they ran; with `only`, of those whose
// /proc stat line holds it ("node": Azurite).
inline double ChildrenCpuSeconds(std::string_view only = {}) {
  double total = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream children(task.path() / "children");
    for (long pid; children >> pid;) {
      std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
      std::string text((std::istreambuf_iterator<char>(stat)), {});
      size_t paren = text.rfind(')');
      if (paren == std::string::npos) continue;
      if (!only.empty() && text.find(only) == std::string::npos) continue;
      std::istringstream fields(text.substr(paren + 2));
      std::string f;
      unsigned long long utime = 0, stime = 0;
      for (int i = 3; i <= 15 && fields >> f; ++i) {
        if (i == 14) utime = std::stoull(f);
        if (i == 15) stime = std::stoull(f);
      }
      total += static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    }
  }
  return total;
}

// The version of the Azurite the benchmarks start (from its package.json).
inline std::string AzuriteVersion() {
  std::ifstream in(FS_SOURCE_DIR "/.deps/npm/node_modules/azurite/package.json");
  std::string line;
  while (std::getline(in, line)) {
    size_t at = line.find("\"version\"");
    if (at == std::string::npos) continue;
    size_t q1 = line.find('"', line.find(':', at));
    size_t q2 = line.find('"', q1 + 1);
    return line.substr(q1 + 1, q2 - q1 - 1);
  }
  return "?";
}

}  // namespace fieldstack::bench
