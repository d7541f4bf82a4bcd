#pragma once

// Cron schedules of scheduled pipelines: the five classic fields, in UTC.
//
//   minute hour day-of-month month day-of-week      e.g. "*/15 * * * *", "0 2 * * 1-5"
//
// Each field: '*', a number, a range a-b, a list a,b,c, and a step */n or a-b/n. Months and
// weekdays also by name (jan..dec, sun..sat); day-of-week 0 and 7 are Sunday. As in Vixie
// cron, when both day-of-month and day-of-week are restricted, a day matching either fires.
// Also "@hourly", "@daily", "@weekly", "@monthly", "@yearly".
//
// Thread safety: immutable after Parse.

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace fieldstack::compute {

class CronSchedule {
 public:
  // InvalidArgument naming the field and the bad text.
  static Result<CronSchedule> Parse(std::string_view text);
  // The first firing time strictly after `after_unix_s` (Unix seconds, whole minutes).
  int64_t Next(int64_t after_unix_s) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1..31
  std::bitset<13> months_;   // 1..12
  std::bitset<7> weekdays_;  // 0 = Sunday
  bool days_restricted_ = false;
  bool weekdays_restricted_ = false;
};

}  // namespace fieldstack::compute
