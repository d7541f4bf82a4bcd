#pragma once

// MetricsHistory: the box's throughput over time for the dashboard, kept in memory: the last
// hour in 10-second steps and the last day in 1-minute steps. The daemon calls Sample with its
// byte counters (uploaded, downloaded) and the files waiting for upload; rates are the
// counters' differences over the step. A restart starts an empty history.
//
// Thread safety: every method may be called from any thread.

#include <cstdint>
#include <deque>
#include <string_view>
#include <vector>

#include "common/mutex.h"

namespace fieldstack::management {

struct HistoryPoint {
  int64_t unix_s = 0;             // the end of the step
  double upload_bytes_per_s = 0;  // mean over the step
  double download_bytes_per_s = 0;
  uint64_t pending_files = 0;  // at the end of the step
};

class MetricsHistory {
 public:
  // `uploaded` and `downloaded` are counters (bytes since start; a smaller value than the last
  // one is a reset and counts from zero).
  void Sample(int64_t unix_s, uint64_t uploaded, uint64_t downloaded, uint64_t pending_files);

  // "hour": up to 360 points 10 s apart; "day": up to 1440 points 60 s apart. Oldest first.
  std::vector<HistoryPoint> Points(std::string_view window) const;
  static constexpr int64_t kHourStep = 10;
  static constexpr int64_t kDayStep = 60;

 private:
  struct Series {
    int64_t step_s;
    size_t capacity;
    int64_t start_s = 0;  // start of the step being filled; 0 before the first sample
    uint64_t start_up = 0, start_down = 0;
    std::deque<HistoryPoint> points;
  };
  void Add(Series& s, int64_t unix_s, uint64_t up, uint64_t down, uint64_t pending) REQUIRES(mu_);

  mutable Mutex mu_;
  Series hour_ GUARDED_BY(mu_){kHourStep, 360};
  Series day_ GUARDED_BY(mu_){kDayStep, 1440};
  uint64_t last_up_ GUARDED_BY(mu_) = 0, last_down_ GUARDED_BY(mu_) = 0;
  uint64_t total_up_ GUARDED_BY(mu_) = 0, total_down_ GUARDED_BY(mu_) = 0;
  bool first_ GUARDED_BY(mu_) = true;
};

}  // namespace fieldstack::management
