#pragma once

// Clock: the injected source of time (STYLE.md "Concurrency"). Production code takes a Clock&;
// tests pass a FakeClock and move time by hand, so schedules, retries and expiry are testable.
//
// Thread safety: all methods may be called concurrently.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace fieldstack {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time in nanoseconds since the Unix epoch (for file times and logs).
  virtual int64_t NowUnixNanos() const = 0;
  // Monotonic time in nanoseconds from an arbitrary origin (for durations and deadlines).
  virtual int64_t MonotonicNanos() const = 0;
};

class RealClock final : public Clock {
 public:
  int64_t NowUnixNanos() const override;
  int64_t MonotonicNanos() const override;
  // The process-wide real clock.
  static RealClock& Get();
};

// A clock that moves only when told. Starts at 2026-01-01T00:00:00Z.
class FakeClock final : public Clock {
 public:
  static constexpr int64_t kStartUnixNanos = 1767225600LL * 1'000'000'000LL;

  int64_t NowUnixNanos() const override { return kStartUnixNanos + offset_ns_.load(); }
  int64_t MonotonicNanos() const override { return offset_ns_.load(); }
  void Advance(std::chrono::nanoseconds d) { offset_ns_ += d.count(); }

 private:
  std::atomic<int64_t> offset_ns_{0};
};

// `unix_ns` as RFC 3339 UTC with milliseconds: 2026-11-27T03:52:01.123Z (logs).
std::string FormatRfc3339(int64_t unix_ns);
// `unix_ns` in UTC, formatted with strftime's `format` ("%Y%m%dT%H%M%SZ", RFC 1123, ...).
std::string FormatUtc(int64_t unix_ns, const char* format);
// `text` read as UTC with strptime's `format` (whole seconds); 0 when it does not match.
int64_t ParseUtc(const std::string& text, const char* format);

}  // namespace fieldstack
