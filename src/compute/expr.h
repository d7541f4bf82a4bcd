#pragma once

// The expression language of filters and computed columns (docs/compute.md gives the grammar).
//
//   temp_c > 30 and site in ('north', 'east') and not (note ~ '^test')
//   round(speed_kmh / 3.6, 2)        coalesce(`site name`, 'unknown')
//
// Literals: integers, floats, 'strings' or "strings" (backslash escapes), true, false, null.
// Columns: bare identifiers ([A-Za-z_][A-Za-z0-9_.]*) or `any name` in backquotes.
// Operators by precedence (low to high): or; and; not; comparisons (= == != <> < <= > >=,
// ~ and !~ for regular expressions (PCRE2 syntax; the pattern is a string literal), in / not in
// (list), is null / is not null);
// + - ; * / %; unary -; function calls. `+` on two strings concatenates.
// Null: comparisons with null are false (except is null), arithmetic with null is null.
// Numbers compare with numbers (int and float mixed); a string that reads whole as a number
// compares as one with a number.
// Keywords (and or not in is null true false) are case-insensitive; && || ! are accepted too.
// Details: int arithmetic stays int64 (a result that overflows becomes a float); `/` always
// gives a float; `%` of two ints is an int; dividing by zero gives null. A comparison whose
// sides do not compare (null, or a string that is not a number against a number) is false,
// whatever the operator, `!=` included. and/or/not treat null and strings as false. A regex
// that runs into PCRE2's match limit is an error naming the column. len and substr count
// code points; substr's start is 0-based, a negative start counts from the end. round, floor
// and ceil keep ints as ints. Time functions work in UTC.
// Functions: lower upper trim len substr(s, start[, len]) contains starts_with ends_with
// replace(s, from, to) abs round(x[, digits]) floor ceil min max coalesce if(c, a, b)
// int float str now() (seconds since the epoch, as a float) time(s) (ISO 8601 or epoch seconds
// to epoch seconds) year month day hour.
//
// Errors: Parse gives InvalidArgument with the position and a caret line; Bind names an
// unknown column and where it appears; Eval gives InvalidArgument naming the column and the
// value for a type error (e.g. "column 'temp' is 'n/a', not a number").
//
// Thread safety: a bound Expr may be evaluated by one thread at a time.

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "compute/record.h"

namespace fieldstack::compute {

class Expr {
 public:
  virtual ~Expr() = default;
  // Parses `text`.
  static Result<std::unique_ptr<Expr>> Parse(std::string_view text, int64_t now_ns = 0);
  // Resolves column names against `schema`; Eval caches the binding per schema pointer and
  // rebinds when a record with another schema arrives. A column the schema lacks is an error
  // only at Eval (a JSON lines record may lack a field: then the column evaluates to null
  // unless `strict`).
  virtual Result<Value> Eval(const Record& rec) = 0;
  // Eval for filters: true only for a true bool (or non-zero number); null is false.
  virtual Result<bool> Test(const Record& rec) = 0;
  // The column names the expression reads.
  virtual const std::vector<std::string>& columns() const = 0;
  virtual const std::string& text() const = 0;
};

}  // namespace fieldstack::compute
