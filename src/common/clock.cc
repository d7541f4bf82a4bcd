#include "common/clock.h"

#include <ctime>

namespace fieldstack {
namespace {
int64_t Read(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000LL + ts.tv_nsec;
}
}  // namespace

int64_t RealClock::NowUnixNanos() const { return Read(CLOCK_REALTIME); }
int64_t RealClock::MonotonicNanos() const { return Read(CLOCK_MONOTONIC); }

RealClock& RealClock::Get() {
  static RealClock clock;
  return clock;
}

}  // namespace fieldstack
