#include "management/history.h"

namespace fieldstack::management {

void MetricsHistory::Sample(int64_t unix_s, uint64_t uploaded, uint64_t downloaded,
                            uint64_t pending_files) {
  MutexLock l(mu_);
  // Monotonic totals across counter resets.
  if (!first_) {
    total_up_ += uploaded >= last_up_ ? uploaded - last_up_ : uploaded;
    total_down_ += downloaded >= last_down_ ? downloaded - last_down_ : downloaded;
  }
  first_ = false;
  last_up_ = uploaded;
  last_down_ = downloaded;
  Add(hour_, unix_s, total_up_, total_down_, pending_files);
  Add(day_, unix_s, total_up_, total_down_, pending_files);
}

void MetricsHistory::Add(Series& s, int64_t unix_s, uint64_t up, uint64_t down, uint64_t pending) {
  if (s.start_s == 0) {
    s.start_s = unix_s;
    s.start_up = up;
    s.start_down = down;
    return;
  }
  if (unix_s < s.start_s) {  // the clock went back: start the step again
    s.start_s = unix_s;
    s.start_up = up;
    s.start_down = down;
    return;
  }
  int64_t elapsed = unix_s - s.start_s;
  if (elapsed < s.step_s) return;
  HistoryPoint p;
  p.unix_s = unix_s;
  p.upload_bytes_per_s = static_cast<double>(up - s.start_up) / static_cast<double>(elapsed);
  p.download_bytes_per_s = static_cast<double>(down - s.start_down) / static_cast<double>(elapsed);
  p.pending_files = pending;
  s.points.push_back(p);
  while (s.points.size() > s.capacity) s.points.pop_front();
  s.start_s = unix_s;
  s.start_up = up;
  s.start_down = down;
}

std::vector<HistoryPoint> MetricsHistory::Points(std::string_view window) const {
  MutexLock l(mu_);
  const Series& s = window == "day" ? day_ : hour_;
  return {s.points.begin(), s.points.end()};
}

}  // namespace fieldstack::management
