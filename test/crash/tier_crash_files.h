#pragma once

// The files of the tier crash test (child and parent agree on them).

#include <cstdint>
#include <string>

namespace fieldstack::testing {

inline constexpr int kTierFiles = 8;

inline std::string TierContent(uint64_t seed, int i) {
  static const size_t kSizes[kTierFiles] = {
      0, 1, 100 * 1000, 256 * 1024, 700 * 1024 + 3, 1 << 20, 2500 * 1000, 64 * 1024 - 1};
  std::string s(kSizes[i], '\0');
  uint64_t x = (seed + static_cast<uint64_t>(i)) * 0x9E3779B97F4A7C15ull + 7;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return s;
}

}  // namespace fieldstack::testing
