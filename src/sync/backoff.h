#pragma once

// Retry delays of the uploader and the recaller.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>

namespace fieldstack::sync {

// base * 2^(attempt - 1), at most `cap`, times a jitter in [1/2, 1] so that many files (or
// boxes on one link) do not retry in step. REQUIRES: the caller serializes use of `rng`.
template <class Rep1, class Period1, class Rep2, class Period2>
std::chrono::nanoseconds JitteredBackoff(std::chrono::duration<Rep1, Period1> base,
                                         std::chrono::duration<Rep2, Period2> cap, uint32_t attempt,
                                         std::mt19937_64& rng) {
  double b = std::chrono::duration<double>(base).count();
  double c = std::chrono::duration<double>(cap).count();
  double delay =
      std::min(c, b * std::pow(2.0, std::min<uint32_t>(std::max<uint32_t>(attempt, 1), 30) - 1));
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return std::chrono::nanoseconds(static_cast<int64_t>(delay * jitter(rng) * 1e9));
}

}  // namespace fieldstack::sync
