#pragma once

// The files of the tier crash test (child and parent agree on them).

#include <cstdint>
#include <string>
#include <vector>

#include "test/crash/crash_ops.h"

namespace fieldstack::testing {

inline constexpr int kTierFiles = 8;

inline std::string TierContent(uint64_t seed, int i) {
  static const size_t kSizes[kTierFiles] = {
      0, 1, 100 * 1000, 256 * 1024, 700 * 1024 + 3, 1 << 20, 2500 * 1000, 64 * 1024 - 1};
  std::vector<uint8_t> v = crashtest::Content(seed + static_cast<uint64_t>(i), kSizes[i]);
  return std::string(v.begin(), v.end());
}

}  // namespace fieldstack::testing
