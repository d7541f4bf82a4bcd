#include "compute/cron.h"

#include <charconv>
#include <ctime>
#include <vector>

namespace fieldstack::compute {
namespace {

constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A number or a name of the field.
bool ParseAtom(std::string_view s, int field, int* out) {
  if (field == 3 || field == 4) {
    std::string l = Lower(s);
    const char* const* names = field == 3 ? kMonthNames : kDayNames;
    int n = field == 3 ? 12 : 7;
    for (int i = 0; i < n; ++i) {
      if (l == names[i]) {
        *out = field == 3 ? i + 1 : i;
        return true;
      }
    }
  }
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// Sets bits lo..hi of a field from its text; `restricted` is false for a bare '*'.
Status ParseField(std::string_view text, int field, int lo, int hi, std::vector<bool>* bits,
                  bool* restricted) {
  static constexpr const char* kFieldNames[] = {"minute", "hour", "day of month", "month",
                                                "day of week"};
  auto bad = [&](std::string_view part) {
    return InvalidArgumentError(std::string("cron ") + kFieldNames[field] + ": '" +
                                std::string(part) + "' is not valid (allowed " +
                                std::to_string(lo) + "-" + std::to_string(hi) + ")");
  };
  bits->assign(static_cast<size_t>(hi + 1), false);
  // As Vixie cron: a field that starts with '*' ("*", "*/2") does not restrict the day.
  *restricted = text.empty() || text[0] != '*';
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view part = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (part.empty()) return bad(text);
    int step = 1;
    std::string_view range = part;
    size_t slash = part.find('/');
    if (slash != std::string_view::npos) {
      range = part.substr(0, slash);
      std::string_view s = part.substr(slash + 1);
      auto r = std::from_chars(s.data(), s.data() + s.size(), step);
      if (r.ec != std::errc() || r.ptr != s.data() + s.size() || step <= 0) return bad(part);
    }
    int a = lo, b = hi;
    if (range != "*") {
      size_t dash = range.find('-');
      if (dash == std::string_view::npos) {
        if (!ParseAtom(range, field, &a)) return bad(part);
        b = slash != std::string_view::npos ? hi : a;
      } else {
        if (!ParseAtom(range.substr(0, dash), field, &a) ||
            !ParseAtom(range.substr(dash + 1), field, &b))
          return bad(part);
      }
    }
    // Day of week 7 is Sunday: bit 7 is folded onto bit 0 by Parse (v % 7). (The old special
    // case here turned "7" into 0-6, i.e. every day, and set Sunday for "2-7/2".)
    if (a < lo || b > hi || a > b) return bad(part);
    for (int v = a; v <= b; v += step) (*bits)[static_cast<size_t>(v)] = true;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return Status::Ok();
}

}  // namespace

Result<CronSchedule> CronSchedule::Parse(std::string_view text) {
  std::string t(text);
  while (!t.empty() && t.back() == ' ') t.pop_back();
  while (!t.empty() && t.front() == ' ') t.erase(0, 1);
  std::string expanded = t;
  if (t == "@hourly") expanded = "0 * * * *";
  if (t == "@daily" || t == "@midnight") expanded = "0 0 * * *";
  if (t == "@weekly") expanded = "0 0 * * 0";
  if (t == "@monthly") expanded = "0 0 1 * *";
  if (t == "@yearly" || t == "@annually") expanded = "0 0 1 1 *";
  std::vector<std::string> fields;
  size_t i = 0;
  while (i < expanded.size()) {
    while (i < expanded.size() && (expanded[i] == ' ' || expanded[i] == '\t')) ++i;
    size_t j = i;
    while (j < expanded.size() && expanded[j] != ' ' && expanded[j] != '\t') ++j;
    if (j > i) fields.push_back(expanded.substr(i, j - i));
    i = j;
  }
  if (fields.size() != 5)
    return InvalidArgumentError("cron: '" + t +
                                "' must have 5 fields (minute hour day month weekday), has " +
                                std::to_string(fields.size()));
  CronSchedule c;
  c.text_ = t;
  std::vector<bool> bits;
  bool restricted = false;
  static constexpr int kLo[] = {0, 0, 1, 1, 0};
  static constexpr int kHi[] = {59, 23, 31, 12, 7};
  for (int f = 0; f < 5; ++f) {
    FS_RETURN_IF_ERROR(
        ParseField(fields[static_cast<size_t>(f)], f, kLo[f], kHi[f], &bits, &restricted));
    for (size_t v = 0; v < bits.size(); ++v) {
      if (!bits[v]) continue;
      switch (f) {
        case 0:
          c.minutes_.set(v);
          break;
        case 1:
          c.hours_.set(v);
          break;
        case 2:
          c.days_.set(v);
          break;
        case 3:
          c.months_.set(v);
          break;
        case 4:
          c.weekdays_.set(v % 7);
          break;
      }
    }
    if (f == 2) c.days_restricted_ = restricted;
    if (f == 4) c.weekdays_restricted_ = restricted;
  }
  return c;
}

int64_t CronSchedule::Next(int64_t after_unix_s) const {
  int64_t t = (after_unix_s / 60 + 1) * 60;
  // A schedule like "0 0 31 2 *" never fires: "far future" once 10 years (Feb 29 can be 8
  // apart) are searched. (Bounding the loop's steps alone let it walk ~65000 years of days,
  // a second of CPU on every scheduler round.)
  const int64_t give_up = t + 10ll * 366 * 86400;
  for (int guard = 0; guard < 5 * 366 * 24 * 60 && t <= give_up; ++guard) {
    time_t tt = static_cast<time_t>(t);
    struct tm tm;
    gmtime_r(&tt, &tm);
    if (!months_[static_cast<size_t>(tm.tm_mon + 1)]) {
      // Jump to the first minute of the next month.
      tm.tm_mon += 1;
      tm.tm_mday = 1;
      tm.tm_hour = 0;
      tm.tm_min = 0;
      tm.tm_sec = 0;
      t = timegm(&tm);
      continue;
    }
    bool dom = days_[static_cast<size_t>(tm.tm_mday)];
    bool dow = weekdays_[static_cast<size_t>(tm.tm_wday)];
    // Vixie cron: either day field starting with '*' means both must match (a bare '*' sets
    // every bit), else a day matching either fires. So "*/2 ... 1" is odd days that are Mondays.
    bool day_ok = (days_restricted_ && weekdays_restricted_) ? (dom || dow) : (dom && dow);
    if (!day_ok) {
      tm.tm_mday += 1;
      tm.tm_hour = 0;
      tm.tm_min = 0;
      tm.tm_sec = 0;
      t = timegm(&tm);
      continue;
    }
    if (!hours_[static_cast<size_t>(tm.tm_hour)]) {
      tm.tm_hour += 1;
      tm.tm_min = 0;
      tm.tm_sec = 0;
      t = timegm(&tm);
      continue;
    }
    if (!minutes_[static_cast<size_t>(tm.tm_min)]) {
      t += 60;
      continue;
    }
    return t;
  }
  return INT64_MAX / 2;
}

}  // namespace fieldstack::compute
