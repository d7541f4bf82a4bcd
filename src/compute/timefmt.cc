#include "compute/timefmt.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>

namespace fieldstack::compute {
namespace {

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

Result<int64_t> FromEpochNumber(double x, std::string_view text) {
  if (!std::isfinite(x)) return InvalidArgumentError("'" + std::string(text) + "' is not a time");
  double ax = std::fabs(x);
  double ns;
  if (ax >= 1e17) {
    ns = x;
  } else if (ax >= 1e14) {
    ns = x * 1e3;
  } else if (ax >= 1e11) {
    ns = x * 1e6;
  } else {
    ns = x * 1e9;
  }
  if (std::fabs(ns) > 9.2e18)
    return InvalidArgumentError("'" + std::string(text) + "' is out of range for a time");
  return static_cast<int64_t>(std::llround(ns));
}

Result<int64_t> FromIso(std::string_view s) {
  auto bad = [&] {
    return InvalidArgumentError("'" + std::string(s) + "' is not an ISO 8601 time");
  };
  int y, mo, d, h = 0, mi = 0, sec = 0;
  if (!Digits(s, 0, 4, &y) || s.size() < 10 || s[4] != '-' || !Digits(s, 5, 2, &mo) ||
      s[7] != '-' || !Digits(s, 8, 2, &d))
    return bad();
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return bad();
  size_t p = 10;
  int64_t frac_ns = 0;
  int64_t offset_s = 0;
  if (p < s.size()) {
    if (s[p] != 'T' && s[p] != 't' && s[p] != ' ') return bad();
    ++p;
    if (!Digits(s, p, 2, &h) || p + 5 > s.size() || s[p + 2] != ':' || !Digits(s, p + 3, 2, &mi))
      return bad();
    p += 5;
    if (p < s.size() && s[p] == ':') {
      if (!Digits(s, p + 1, 2, &sec)) return bad();
      p += 3;
      if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
        ++p;
        int64_t scale = 100000000;
        size_t start = p;
        while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
          frac_ns += (s[p] - '0') * scale;
          scale /= 10;
          ++p;
        }
        if (p == start) return bad();
      }
    }
    if (h > 23 || mi > 59 || sec > 60) return bad();
    if (p < s.size()) {
      if (s[p] == 'Z' || s[p] == 'z') {
        ++p;
      } else if (s[p] == '+' || s[p] == '-') {
        int oh, om = 0;
        int sign = s[p] == '-' ? -1 : 1;
        if (!Digits(s, p + 1, 2, &oh)) return bad();
        p += 3;
        if (p < s.size() && s[p] == ':') ++p;
        if (p < s.size()) {
          if (!Digits(s, p, 2, &om)) return bad();
          p += 2;
        }
        offset_s = sign * (oh * 3600 + om * 60);
      } else {
        return bad();
      }
    }
    if (p != s.size()) return bad();
  }
  int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_s;
  return secs * 1000000000 + frac_ns;
}

}  // namespace

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t days, int64_t* y, unsigned* m, unsigned* d) {
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

Result<int64_t> ParseTimestampNs(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (text.empty()) return InvalidArgumentError("an empty value is not a time");
  if (text.size() >= 10 && text[4] == '-') return FromIso(text);
  double x = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), x);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size())
    return InvalidArgumentError("'" + std::string(text) +
                                "' is not a time (ISO 8601 or epoch seconds)");
  return FromEpochNumber(x, text);
}

Result<int64_t> ParseTimestampNs(const Value& v) {
  switch (v.type()) {
    case Value::Type::kInt:
      if (v.text().empty())
        return FromEpochNumber(static_cast<double>(v.as_int()), std::to_string(v.as_int()));
      return ParseTimestampNs(v.text());
    case Value::Type::kFloat:
      return FromEpochNumber(v.as_double(), FormatValue(v));
    case Value::Type::kString:
      return ParseTimestampNs(v.text());
    default:
      return InvalidArgumentError(v.is_null() ? "a null value is not a time"
                                              : "a bool is not a time");
  }
}

std::string FormatTimestamp(int64_t unix_ns) {
  int64_t secs = unix_ns >= 0 ? unix_ns / 1000000000 : -((-unix_ns + 999999999) / 1000000000);
  int64_t frac = unix_ns - secs * 1000000000;
  int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  int64_t rem = secs - days * 86400;
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld",
                        static_cast<long long>(y), m, d, static_cast<long long>(rem / 3600),
                        static_cast<long long>(rem / 60 % 60), static_cast<long long>(rem % 60));
  std::string out(buf, static_cast<size_t>(n));
  if (frac != 0) {
    std::snprintf(buf, sizeof buf, ".%09lld", static_cast<long long>(frac));
    std::string f(buf);
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  out += 'Z';
  return out;
}

}  // namespace fieldstack::compute
