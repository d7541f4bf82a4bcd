#pragma once

// Timestamps in records: parsing event-time columns and formatting window bounds.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "compute/record.h"

namespace fieldstack::compute {

// Unix nanoseconds from a value: a number is epoch seconds (may be fractional; an integer
// above 1e11 is taken as milliseconds, above 1e14 as microseconds, above 1e17 as nanoseconds);
// a string is ISO 8601 / RFC 3339 ("2026-11-27T13:05:00Z", "2026-11-27 13:05:00.25+01:00",
// "2026-11-27" = midnight UTC; no offset = UTC) or a number in text.
// InvalidArgument (naming the text) otherwise; null is InvalidArgument too.
Result<int64_t> ParseTimestampNs(const Value& v);
Result<int64_t> ParseTimestampNs(std::string_view text);
// "2026-11-27T13:05:00Z", with ".250" etc. when the time has a fraction of a second.
std::string FormatTimestamp(int64_t unix_ns);

// Civil dates (proleptic Gregorian, UTC) and days since 1970-01-01, Howard Hinnant's
// algorithms. REQUIRES: 1 <= m <= 12, 1 <= d <= 31.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d);
void CivilFromDays(int64_t days, int64_t* y, unsigned* m, unsigned* d);
// a / b rounded toward negative infinity (a time's window or unit start). REQUIRES: b != 0.
int64_t FloorDiv(int64_t a, int64_t b);

}  // namespace fieldstack::compute
