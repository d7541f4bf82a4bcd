#pragma once

// Bandwidth limits for transfers to and from the cloud: a weekly schedule of rates and a token
// bucket that paces bytes on the injected Clock.
//
// Schedule: entries (minute of the week, or every day at a time) with an upload and a download
// rate, each a number of bytes per second or unlimited. The rate in force at a moment is the
// latest entry at or before it, wrapping around the week. An rclone timetable is accepted:
//   "10M"                          always 10 MiB/s both ways
//   "08:00,512k 18:00,off"         every day: 512 KiB/s from 08:00, unlimited from 18:00
//   "Mon-08:00,512k:10M Sat-00:00,off"   upload:download per entry; days Mon..Sun
// Units as rclone: B, K, M, G, T (powers of 1024); a bare number is KiB. "off" is unlimited;
// 0 pauses that direction. Times are in the schedule's UTC offset (default UTC).
//
// Thread safety: BandwidthSchedule is immutable. TokenBucket is thread-safe.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"

namespace fieldstack::sync {

struct Rates {
  std::optional<uint64_t> up_bytes_per_s;    // nullopt: unlimited
  std::optional<uint64_t> down_bytes_per_s;  // nullopt: unlimited
  bool operator==(const Rates&) const = default;
};

// Parses "512k", "10M", "1.5G", "off" (nullopt), "0". InvalidArgument otherwise.
Result<std::optional<uint64_t>> ParseRate(std::string_view text);

class BandwidthSchedule {
 public:
  struct Entry {
    int day = -1;    // 0 = Monday .. 6 = Sunday; -1 = every day
    int minute = 0;  // minute of the day, 0 to 1439
    Rates rates;
  };

  BandwidthSchedule() = default;  // unlimited
  // InvalidArgument naming the bad entry.
  static Result<BandwidthSchedule> ParseTimetable(std::string_view text,
                                                  int utc_offset_minutes = 0);
  static Result<BandwidthSchedule> FromEntries(std::vector<Entry> entries,
                                               int utc_offset_minutes = 0);

  Rates At(int64_t unix_nanos) const;
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;               // as given
  std::vector<std::pair<int, Rates>> week_;  // minute of week -> rates, sorted
  int utc_offset_minutes_ = 0;
};

// Paces a stream of bytes to a rate. Reserve(n) takes n bytes' worth of tokens and says how
// long to wait before sending them; tokens accrue at the rate up to `burst_bytes`.
class TokenBucket {
 public:
  TokenBucket(Clock& clock, std::optional<uint64_t> rate_bytes_per_s, uint64_t burst_bytes);

  // Changes the rate (nullopt: unlimited) from now on; tokens already earned are kept.
  void SetRate(std::optional<uint64_t> rate_bytes_per_s);
  // How long to wait before sending `bytes`. Zero when unlimited. With a rate of 0 (paused),
  // returns a one-second wait and takes nothing: ask again later.
  std::chrono::nanoseconds Reserve(uint64_t bytes);

 private:
  void Refill() REQUIRES(mu_);

  Clock& clock_;
  Mutex mu_;
  std::optional<uint64_t> rate_ GUARDED_BY(mu_);
  uint64_t burst_ GUARDED_BY(mu_);
  double tokens_ GUARDED_BY(mu_);  // may go negative: a debt paid by waiting
  int64_t last_ns_ GUARDED_BY(mu_);
};

}  // namespace fieldstack::sync
