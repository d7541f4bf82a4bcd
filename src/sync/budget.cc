#include "sync/budget.h"

#include <spdlog/spdlog.h>

#include <ctime>
#include <sstream>

namespace fieldstack::sync {
namespace {

constexpr int64_t kNs = 1'000'000'000;

tm LocalTm(int64_t unix_ns, int offset_minutes) {
  time_t t = static_cast<time_t>(unix_ns / kNs + int64_t{offset_minutes} * 60);
  tm out;
  gmtime_r(&t, &out);
  return out;
}

// Unix ns of the local midnight that starts the day after `t` (or the next month).
int64_t LocalStart(tm t, int offset_minutes, bool next_month) {
  t.tm_hour = t.tm_min = t.tm_sec = 0;
  if (next_month) {
    t.tm_mday = 1;
    t.tm_mon += 1;
  } else {
    t.tm_mday += 1;
  }
  return (int64_t{timegm(&t)} - int64_t{offset_minutes} * 60) * kNs;
}

std::string Format(const tm& t, const char* fmt) {
  char buf[32];
  std::strftime(buf, sizeof buf, fmt, &t);
  return buf;
}

}  // namespace

void DataBudget::Roll(int64_t now_ns) {
  if (!loaded_) {
    loaded_ = true;
    auto saved = store_.GetValue(kStoreKey);
    if (saved.ok()) {
      std::istringstream in(*saved);
      Usage u;
      if (in >> u.day >> u.day_bytes >> u.month >> u.month_bytes) usage_ = u;
    }
  }
  tm t = LocalTm(now_ns, limits_.utc_offset_minutes);
  std::string day = Format(t, "%Y-%m-%d"), month = Format(t, "%Y-%m");
  if (usage_.day != day) {
    usage_.day = day;
    usage_.day_bytes = 0;
  }
  if (usage_.month != month) {
    usage_.month = month;
    usage_.month_bytes = 0;
  }
}

Status DataBudget::Save() {
  return store_.SetValue(kStoreKey, usage_.day + " " + std::to_string(usage_.day_bytes) + " " +
                                        usage_.month + " " + std::to_string(usage_.month_bytes));
}

Status DataBudget::Charge(uint64_t bytes, int64_t* resume_at_ns) {
  if (!limits_.any()) return Status::Ok();
  int64_t now = clock_.NowUnixNanos();
  MutexLock l(mu_);
  Roll(now);
  tm t = LocalTm(now, limits_.utc_offset_minutes);
  if (limits_.monthly_bytes && usage_.month_bytes + bytes > *limits_.monthly_bytes) {
    if (resume_at_ns) *resume_at_ns = LocalStart(t, limits_.utc_offset_minutes, true);
    return ResourceExhaustedError("the monthly upload budget of " +
                                  std::to_string(*limits_.monthly_bytes) + " bytes for " +
                                  usage_.month + " is spent; uploads resume next month");
  }
  if (limits_.daily_bytes && usage_.day_bytes + bytes > *limits_.daily_bytes) {
    if (resume_at_ns) *resume_at_ns = LocalStart(t, limits_.utc_offset_minutes, false);
    return ResourceExhaustedError("the daily upload budget of " +
                                  std::to_string(*limits_.daily_bytes) + " bytes for " +
                                  usage_.day + " is spent; uploads resume tomorrow");
  }
  usage_.day_bytes += bytes;
  usage_.month_bytes += bytes;
  Status saved = Save();  // the count in memory still holds; a restart may forget this charge
  if (!saved.ok()) spdlog::warn("upload budget: cannot save the usage: {}", saved.ToString());
  return Status::Ok();
}

DataBudget::Usage DataBudget::Current() {
  MutexLock l(mu_);
  Roll(clock_.NowUnixNanos());
  return usage_;
}

}  // namespace fieldstack::sync
