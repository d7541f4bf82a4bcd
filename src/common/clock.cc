#include "common/clock.h"

#include <cstdio>
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

std::string FormatRfc3339(int64_t unix_ns) {
  time_t secs = static_cast<time_t>(unix_ns / 1'000'000'000);
  tm t;
  gmtime_r(&secs, &t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                static_cast<int>(unix_ns / 1'000'000 % 1000));
  return buf;
}

std::string FormatUtc(int64_t unix_ns, const char* format) {
  time_t t = static_cast<time_t>(unix_ns / 1'000'000'000);
  tm g;
  gmtime_r(&t, &g);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, format, &g);
  return std::string(buf, n);
}

int64_t ParseUtc(const std::string& text, const char* format) {
  tm t{};
  if (strptime(text.c_str(), format, &t) == nullptr) return 0;
  return int64_t{timegm(&t)} * 1'000'000'000;
}

}  // namespace fieldstack
