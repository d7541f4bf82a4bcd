#include "sync/bandwidth.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>

namespace fieldstack::sync {
namespace {

constexpr int kMinutesPerWeek = 7 * 24 * 60;
constexpr const char* kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};

Result<Rates> ParseRates(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    FS_ASSIGN_OR_RETURN(auto both, ParseRate(text));
    return Rates{both, both};
  }
  FS_ASSIGN_OR_RETURN(auto up, ParseRate(text.substr(0, colon)));
  FS_ASSIGN_OR_RETURN(auto down, ParseRate(text.substr(colon + 1)));
  return Rates{up, down};
}

// "HH:MM" -> minute of day.
Result<int> ParseTime(std::string_view t) {
  if (t.size() != 5 || t[2] != ':' || !std::isdigit(t[0]) || !std::isdigit(t[1]) ||
      !std::isdigit(t[3]) || !std::isdigit(t[4])) {
    return InvalidArgumentError("time '" + std::string(t) + "' is not HH:MM");
  }
  int h = (t[0] - '0') * 10 + (t[1] - '0'), m = (t[3] - '0') * 10 + (t[4] - '0');
  if (h > 23 || m > 59)
    return InvalidArgumentError("time '" + std::string(t) + "' is out of range");
  return h * 60 + m;
}

}  // namespace

Result<std::optional<uint64_t>> ParseRate(std::string_view text) {
  std::string s(text);
  if (s == "off" || s == "unlimited") return std::optional<uint64_t>();
  if (s.empty()) return InvalidArgumentError("empty rate");
  double mult = 1024;  // rclone: a bare number is KiB
  char last = s.back();
  if (std::isalpha(static_cast<unsigned char>(last))) {
    switch (std::tolower(last)) {
      case 'b':
        mult = 1;
        break;
      case 'k':
        mult = 1024;
        break;
      case 'm':
        mult = 1024.0 * 1024;
        break;
      case 'g':
        mult = 1024.0 * 1024 * 1024;
        break;
      case 't':
        mult = 1024.0 * 1024 * 1024 * 1024;
        break;
      default:
        return InvalidArgumentError("rate '" + s + "' has an unknown unit");
    }
    s.pop_back();
  }
  if (s.empty() || s.size() > 24 || s.find_first_not_of("0123456789.") != std::string::npos ||
      s.find_first_of("0123456789") == std::string::npos ||
      std::count(s.begin(), s.end(), '.') > 1) {
    return InvalidArgumentError("rate '" + std::string(text).substr(0, 64) +
                                "' is not a number with a unit");
  }
  double v = std::strtod(s.c_str(), nullptr) * mult;
  if (v > 1e15) return InvalidArgumentError("rate '" + std::string(text) + "' is too large");
  return std::optional<uint64_t>(static_cast<uint64_t>(std::llround(v)));
}

Result<BandwidthSchedule> BandwidthSchedule::ParseTimetable(std::string_view text,
                                                            int utc_offset_minutes) {
  std::vector<Entry> entries;
  std::istringstream in{std::string(text)};
  std::string item;
  std::vector<std::string> items;
  while (in >> item) items.push_back(item);
  if (items.empty()) return InvalidArgumentError("empty bandwidth timetable");
  if (items.size() == 1 && items[0].find(',') == std::string::npos) {
    FS_ASSIGN_OR_RETURN(Rates r, ParseRates(items[0]));
    entries.push_back({-1, 0, r});
    return FromEntries(std::move(entries), utc_offset_minutes);
  }
  for (const std::string& it : items) {
    size_t comma = it.find(',');
    if (comma == std::string::npos) {
      return InvalidArgumentError("timetable entry '" + it + "' is not [Day-]HH:MM,RATE");
    }
    std::string_view when(it.data(), comma);
    Entry e;
    if (when.size() > 4 && when[3] == '-') {
      std::string_view day = when.substr(0, 3);
      e.day = -2;
      for (int d = 0; d < 7; ++d) {
        if (day == kDays[d]) e.day = d;
      }
      if (e.day == -2) {
        return InvalidArgumentError("timetable entry '" + it + "': unknown day (Mon..Sun)");
      }
      when = when.substr(4);
    }
    auto minute = ParseTime(when);
    if (!minute.ok()) return minute.status().WithContext("timetable entry '" + it + "'");
    e.minute = *minute;
    auto rates = ParseRates(std::string_view(it).substr(comma + 1));
    if (!rates.ok()) return rates.status().WithContext("timetable entry '" + it + "'");
    e.rates = *rates;
    entries.push_back(e);
  }
  return FromEntries(std::move(entries), utc_offset_minutes);
}

Result<BandwidthSchedule> BandwidthSchedule::FromEntries(std::vector<Entry> entries,
                                                         int utc_offset_minutes) {
  BandwidthSchedule s;
  s.utc_offset_minutes_ = utc_offset_minutes;
  for (const Entry& e : entries) {
    if (e.day < -1 || e.day > 6 || e.minute < 0 || e.minute >= 1440) {
      return InvalidArgumentError("schedule entry has a bad day or time");
    }
    for (int d = 0; d < 7; ++d) {
      if (e.day == -1 || e.day == d) s.week_.push_back({d * 1440 + e.minute, e.rates});
    }
  }
  // A later entry for the same minute wins.
  std::stable_sort(s.week_.begin(), s.week_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  s.entries_ = std::move(entries);
  return s;
}

Rates BandwidthSchedule::At(int64_t unix_nanos) const {
  if (week_.empty()) return Rates{};
  int64_t minutes = unix_nanos / 60'000'000'000LL + utc_offset_minutes_;
  // 1970-01-01 was a Thursday (day 3 with Monday = 0).
  int64_t mow = ((minutes + 3 * 1440) % kMinutesPerWeek + kMinutesPerWeek) % kMinutesPerWeek;
  const Rates* current = &week_.back().second;  // wraps from the end of the week
  for (const auto& [m, r] : week_) {
    if (m > mow) break;
    current = &r;
  }
  return *current;
}

TokenBucket::TokenBucket(Clock& clock, std::optional<uint64_t> rate_bytes_per_s,
                         uint64_t burst_bytes)
    : clock_(clock),
      rate_(rate_bytes_per_s),
      burst_(burst_bytes),
      tokens_(static_cast<double>(burst_bytes)),
      last_ns_(clock.MonotonicNanos()) {}

void TokenBucket::Refill() {
  int64_t now = clock_.MonotonicNanos();
  if (rate_ && *rate_ > 0) {
    tokens_ = std::min(static_cast<double>(burst_),
                       tokens_ + static_cast<double>(*rate_) * (now - last_ns_) / 1e9);
  }
  last_ns_ = now;
}

void TokenBucket::SetRate(std::optional<uint64_t> rate_bytes_per_s) {
  MutexLock l(mu_);
  Refill();
  rate_ = rate_bytes_per_s;
}

std::chrono::nanoseconds TokenBucket::Reserve(uint64_t bytes) {
  MutexLock l(mu_);
  Refill();
  if (!rate_) return std::chrono::nanoseconds(0);
  if (*rate_ == 0) return std::chrono::seconds(1);
  tokens_ -= static_cast<double>(bytes);
  if (tokens_ >= 0) return std::chrono::nanoseconds(0);
  return std::chrono::nanoseconds(static_cast<int64_t>(-tokens_ * 1e9 / *rate_));
}

}  // namespace fieldstack::sync
