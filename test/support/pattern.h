#pragma once

// Deterministic test bytes: the same (n, seed) always gives the same content, and different
// seeds give different content.

#include <cstdint>
#include <vector>

namespace fieldstack::testing {

inline std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 31 + seed + i / 251);
  return v;
}

}  // namespace fieldstack::testing
