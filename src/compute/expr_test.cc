// Tests of the expression language (expr.h) and the filter/select steps (basic_steps.h).

#include "compute/expr.h"

#include <gtest/gtest.h>

#include <chrono>

#include "compute/basic_steps.h"
#include "compute/io.h"

namespace fieldstack::compute {
namespace {

// One record read from a CSV header and row (so types are inferred as in a real file).
Record Row(const std::string& header, const std::string& row) {
  auto r = MakeCsvReader(StringSource(header + "\n" + row + "\n"));
  Record rec;
  auto got = r->Next(rec);
  EXPECT_TRUE(got.ok() && *got);
  return rec;
}

const std::string kHeader = "temp,site,n,note,flag,big,when,empty";
const std::string kRow = "21.5,north,7,n/a,true,9223372036854775807,2026-11-27T13:05:00Z,";

// The value of `text` on the standard row, formatted as "type:text", or "ERROR message".
std::string EvalOn(const std::string& text, const Record& rec) {
  auto e = Expr::Parse(text, 1'700'000'000'500'000'000);
  if (!e.ok()) return "PARSE " + e.status().message();
  auto v = (*e)->Eval(rec);
  if (!v.ok()) return "ERROR " + v.status().message();
  switch (v->type()) {
    case Value::Type::kNull:
      return "null";
    case Value::Type::kBool:
      return "bool:" + FormatValue(*v);
    case Value::Type::kInt:
      return "int:" + FormatValue(*v);
    case Value::Type::kFloat:
      return "float:" + FormatValue(*v);
    case Value::Type::kString:
      return "str:" + v->text();
  }
  return "?";
}

std::string Ev(const std::string& text) { return EvalOn(text, Row(kHeader, kRow)); }

TEST(ExprTest, Arithmetic) {
  EXPECT_EQ(Ev("n + 3 * 2"), "int:13");
  EXPECT_EQ(Ev("(n + 3) * 2"), "int:20");
  EXPECT_EQ(Ev("n / 2"), "float:3.5");
  EXPECT_EQ(Ev("n % 4"), "int:3");
  EXPECT_EQ(Ev("-n - -2"), "int:-5");
  EXPECT_EQ(Ev("temp * 2"), "float:43");
  EXPECT_EQ(Ev("big + 1"), "float:9223372036854775808");
  EXPECT_EQ(Ev("n / 0"), "null");
  EXPECT_EQ(Ev("n % 0"), "null");
  EXPECT_EQ(Ev("empty + 1"), "null");
  EXPECT_EQ(Ev("missing_column * 2"), "null");
  EXPECT_EQ(Ev("'5' + 1"), "int:6");
  EXPECT_EQ(Ev("site + '-' + n"),
            "ERROR expression 'site + '-' + n': 'north-' is not a number (operator '+' with "
            "column 'n')");
  EXPECT_EQ(Ev("site - 1"), "ERROR expression 'site - 1': column 'site' is 'north', not a number");
  EXPECT_EQ(Ev("site + '-x'"), "str:north-x");
  EXPECT_EQ(Ev("1.5e2 + .5"), "float:150.5");
}

TEST(ExprTest, TypeErrorsNameTheColumnAndValue) {
  EXPECT_EQ(Ev("temp + 'abc'"),
            "ERROR expression 'temp + 'abc'': 'abc' is not a number (operator '+' with column "
            "'temp')");
  EXPECT_EQ(Ev("note * 2"), "ERROR expression 'note * 2': column 'note' is 'n/a', not a number");
  EXPECT_EQ(Ev("-note"), "ERROR expression '-note': column 'note' is 'n/a', not a number");
  EXPECT_EQ(Ev("abs(site)"),
            "ERROR expression 'abs(site)': abs(): column 'site' is 'north', not a number");
}

TEST(ExprTest, Comparisons) {
  EXPECT_EQ(Ev("temp > 21"), "bool:true");
  EXPECT_EQ(Ev("temp >= 21.5 and temp <= 21.5"), "bool:true");
  EXPECT_EQ(Ev("n = 7.0"), "bool:true");
  EXPECT_EQ(Ev("n == 7 && n <> 8"), "bool:true");
  EXPECT_EQ(Ev("n != 7"), "bool:false");
  EXPECT_EQ(Ev("site = 'north'"), "bool:true");
  EXPECT_EQ(Ev("site < 'south'"), "bool:true");
  EXPECT_EQ(Ev("'10' > 9"), "bool:true");   // a numeric string compares as a number
  EXPECT_EQ(Ev("note > 5"), "bool:false");  // 'n/a' is not a number: false, no error
  EXPECT_EQ(Ev("note < 5"), "bool:false");
  EXPECT_EQ(Ev("empty = 0"), "bool:false");  // null compares false
  EXPECT_EQ(Ev("empty != 0"), "bool:false");
  EXPECT_EQ(Ev("flag = true"), "bool:true");
  EXPECT_EQ(Ev("flag = 'TRUE'"), "bool:true");
}

TEST(ExprTest, LogicKeywordsAnyCase) {
  EXPECT_EQ(Ev("temp > 30 OR site = 'north'"), "bool:true");
  EXPECT_EQ(Ev("NOT temp > 30 And Not (site = 'east')"), "bool:true");
  EXPECT_EQ(Ev("!(n = 7) || false"), "bool:false");
  EXPECT_EQ(Ev("true and null"), "bool:false");
  EXPECT_EQ(Ev("not empty"), "bool:true");
  // and binds tighter than or.
  EXPECT_EQ(Ev("true or false and false"), "bool:true");
}

TEST(ExprTest, InAndIsNull) {
  EXPECT_EQ(Ev("site in ('north', 'east')"), "bool:true");
  EXPECT_EQ(Ev("site not in ('north', 'east')"), "bool:false");
  EXPECT_EQ(Ev("n in (1, 7.0, 'x')"), "bool:true");
  EXPECT_EQ(Ev("empty in (1, 2)"), "bool:false");
  EXPECT_EQ(Ev("empty not in (1, 2)"), "bool:false");
  EXPECT_EQ(Ev("empty is null and site is not null and missing is null"), "bool:true");
}

TEST(ExprTest, RegularExpressions) {
  EXPECT_EQ(Ev("site ~ '^no'"), "bool:true");
  EXPECT_EQ(Ev("site !~ '^no'"), "bool:false");
  EXPECT_EQ(Ev("n ~ '^7$'"), "bool:true");  // numbers match on their text
  EXPECT_EQ(Ev("empty ~ '.*'"), "bool:false");
  EXPECT_EQ(Ev("site ~ '(?i)NORTH'"), "bool:true");
  EXPECT_EQ(Ev("note ~ '\\\\d'"), "bool:false");
}

TEST(ExprTest, HostileRegexHitsTheLimitInsteadOfHanging) {
  Record rec = Row("s", std::string(5000, 'a') + "!");
  auto start = std::chrono::steady_clock::now();
  std::string r = EvalOn("s ~ '^(a|aa)+$' or s ~ '(a*)*b'", rec);
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(secs, 5.0);
  // Either it finishes (no match) or stops with a clear error; it never hangs.
  if (r.rfind("ERROR", 0) == 0) {
    EXPECT_NE(r.find("on column 's'"), std::string::npos) << r;
  } else {
    EXPECT_EQ(r, "bool:false");
  }
}

TEST(ExprTest, StringFunctions) {
  EXPECT_EQ(Ev("upper(site) + lower('AbC')"), "str:NORTHabc");
  EXPECT_EQ(Ev("upper(5)"), "str:5");
  EXPECT_EQ(Ev("str(temp)"), "str:21.5");
  EXPECT_EQ(Ev("trim('  x y ')"), "str:x y");
  EXPECT_EQ(Ev("len('h\xC3\xA9llo')"), "int:5");
  EXPECT_EQ(Ev("substr('h\xC3\xA9llo', 1, 3)"), "str:\xC3\xA9ll");
  EXPECT_EQ(Ev("substr(site, -2)"), "str:th");
  EXPECT_EQ(Ev("contains(site, 'rt') and starts_with(site, 'no') and ends_with(site, 'th')"),
            "bool:true");
  EXPECT_EQ(Ev("replace('a-b-c', '-', '+')"), "str:a+b+c");
  EXPECT_EQ(Ev("upper(empty)"), "null");
}

TEST(ExprTest, NumberAndOtherFunctions) {
  EXPECT_EQ(Ev("round(temp / 3.6, 2)"), "float:5.97");
  EXPECT_EQ(Ev("round(2.5)"), "float:3");
  EXPECT_EQ(Ev("round(n)"), "int:7");
  EXPECT_EQ(Ev("floor(-1.5) + ceil(1.2)"), "float:0");
  EXPECT_EQ(Ev("abs(-7)"), "int:7");
  EXPECT_EQ(Ev("min(3, n, 10)"), "int:3");
  EXPECT_EQ(Ev("max(3, temp, empty)"), "float:21.5");
  EXPECT_EQ(Ev("coalesce(empty, missing, `site`)"), "str:north");
  EXPECT_EQ(Ev("if(temp > 30, 'hot', 'ok')"), "str:ok");
  EXPECT_EQ(Ev("int('12') + int(3.9) + int(true)"), "int:16");
  EXPECT_EQ(Ev("float(n)"), "float:7");
  EXPECT_EQ(Ev("now()"), "float:1700000000.5");
  EXPECT_EQ(Ev("time(when)"), "float:1795784700");
  EXPECT_EQ(Ev("year(when) * 10000 + month(when) * 100 + day(when)"), "int:20261127");
  EXPECT_EQ(Ev("hour(when)"), "int:13");
  EXPECT_EQ(Ev("hour(site)"),
            "ERROR expression 'hour(site)': hour(): column 'site' is 'north', "
            "not a time");
  EXPECT_EQ(Ev("temp"), "float:21.5");
}

TEST(ExprTest, ColumnEvaluatedAloneKeepsItsText) {
  auto e = Expr::Parse("temp");
  Record rec = Row("temp", "21.50");
  auto v = (*e)->Eval(rec);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->text(), "21.50");
}

TEST(ExprTest, BacktickColumnsAndColumnsList) {
  Record rec = Row("site name,x.y", "n 1,2");
  auto e = Expr::Parse("`site name` + '!' + x.y + `site name`");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)->columns(), (std::vector<std::string>{"site name", "x.y"}));
  EXPECT_EQ(EvalOn("`site name` = 'n 1' and x.y = 2", rec), "bool:true");
}

TEST(ExprTest, RebindsWhenTheSchemaChanges) {
  auto e = Expr::Parse("b * 2");
  ASSERT_TRUE(e.ok());
  Record r1 = Row("a,b", "1,2");
  Record r2 = Row("b,a", "5,1");
  Record r3 = Row("a", "1");
  EXPECT_EQ(FormatValue(*(*e)->Eval(r1)), "4");
  EXPECT_EQ(FormatValue(*(*e)->Eval(r2)), "10");
  EXPECT_TRUE((*e)->Eval(r3)->is_null());
  EXPECT_EQ(FormatValue(*(*e)->Eval(r1)), "4");
  EXPECT_TRUE(*(*e)->Test(r2));
}

std::string ParseError(const std::string& text) {
  auto e = Expr::Parse(text);
  EXPECT_FALSE(e.ok()) << text;
  return e.ok() ? "" : e.status().message();
}

TEST(ExprParseTest, ErrorsPointAtThePlace) {
  EXPECT_EQ(ParseError("(temp > 3"),
            "position 10: missing ')' for the '(' at position 1\n  (temp > 3\n           ^");
  EXPECT_EQ(ParseError("temp > 3)"), "position 9: unexpected ')'\n  temp > 3)\n          ^");
  EXPECT_EQ(ParseError("foo(1) > 2"), "position 1: unknown function 'foo'\n  foo(1) > 2\n  ^");
  EXPECT_EQ(ParseError("x = substr('a')"),
            "position 5: function 'substr' takes 2 or 3 arguments, not 1\n"
            "  x = substr('a')\n      ^");
  EXPECT_EQ(ParseError("upper()"),
            "position 1: function 'upper' takes 1 argument, not 0\n"
            "  upper()\n  ^");
  EXPECT_EQ(ParseError("temp >"),
            "position 7: unexpected end of expression\n  temp >\n"
            "        ^");
  EXPECT_EQ(ParseError("site = 'open"),
            "position 8: unterminated string\n  site = 'open\n         ^");
  EXPECT_EQ(ParseError("a # b"), "position 3: unexpected character '#'\n  a # b\n    ^");
  std::string re = ParseError("site ~ '(unclosed'");
  EXPECT_EQ(
      re.rfind("position 8: bad regular expression '(unclosed': missing closing parenthesis", 0),
      0u)
      << re;
  EXPECT_NE(re.find("\n  site ~ '(unclosed'\n         ^"), std::string::npos) << re;
  EXPECT_EQ(ParseError("a ~ b").rfind("position 5: expected a 'pattern' string after '~'", 0), 0u);
  EXPECT_EQ(ParseError("a in 1").rfind("position 6: expected '(' after 'in'", 0), 0u);
  EXPECT_EQ(ParseError("a is 3").rfind("position 6: expected 'null' after 'is'", 0), 0u);
  EXPECT_EQ(ParseError("").rfind("position 1: unexpected end of expression", 0), 0u);
}

class Collect final : public Emitter {
 public:
  Status Emit(Record& rec) override {
    std::string line;
    for (size_t i = 0; i < rec.values.size(); ++i) {
      if (i > 0) line += ",";
      line += rec.schema->names()[i] + "=" + FormatValue(rec.values[i]);
    }
    rows.push_back(line);
    schemas.push_back(rec.schema.get());
    return Status::Ok();
  }
  std::vector<std::string> rows;
  std::vector<const Schema*> schemas;
};

// Runs `step` over a CSV text.
std::vector<std::string> RunStep(Step& step, const std::string& csv, Collect& out) {
  auto r = MakeCsvReader(StringSource(csv));
  Record rec;
  for (;;) {
    auto got = r->Next(rec);
    EXPECT_TRUE(got.ok());
    if (!got.ok() || !*got) break;
    Status s = step.Push(rec, out);
    if (!s.ok()) {
      out.rows.push_back("ERROR " + s.message());
      break;
    }
  }
  return out.rows;
}

const char kCsv[] = "site,temp,note\nnorth,31.5,a\neast,12,b\nnorth,,c\nwest,40,n/a\n";

TEST(FilterStepTest, KeepsMatchingRecords) {
  auto step = MakeFilterStep({{"type", "filter"}, {"where", "temp > 30 and site != 'east'"}}, {});
  ASSERT_TRUE(step.ok()) << step.status().ToString();
  Collect out;
  EXPECT_EQ(RunStep(**step, kCsv, out), (std::vector<std::string>{"site=north,temp=31.5,note=a",
                                                                  "site=west,temp=40,note=n/a"}));
}

TEST(FilterStepTest, ErrorsNameTheField) {
  EXPECT_EQ(MakeFilterStep({{"type", "filter"}}, {}).status().message(),
            "filter.where: is required");
  EXPECT_EQ(MakeFilterStep({{"type", "filter"}, {"where", 5}}, {}).status().message(),
            "filter.where: must be a string, not number");
  EXPECT_EQ(MakeFilterStep({{"type", "filter"}, {"where", "a"}, {"wher", "b"}}, {})
                .status()
                .message()
                .rfind("filter.wher: unknown field", 0),
            0u);
  EXPECT_EQ(MakeFilterStep({{"type", "filter"}, {"where", "(a"}}, {})
                .status()
                .message()
                .rfind("filter.where: position 3: missing ')'", 0),
            0u);
  auto step = MakeFilterStep({{"type", "filter"}, {"where", "note * 2 > 1"}}, {});
  Collect out;
  auto rows = RunStep(**step, kCsv, out);
  EXPECT_EQ(rows.back(),
            "ERROR filter: expression 'note * 2 > 1': column 'note' is 'a', not a number");
}

TEST(SelectStepTest, ComputeColumnsRenameInOrder) {
  nlohmann::json d = {{"type", "select"},
                      {"compute",
                       {{{"name", "temp_f"}, {"expr", "temp * 1.8 + 32"}},
                        {{"name", "hot"}, {"expr", "temp_f > 80"}},
                        {{"name", "site"}, {"expr", "upper(site)"}}}},
                      {"columns", {"site", "temp_f", "hot", "nope"}},
                      {"rename", {{"site", "location"}}}};
  auto step = MakeSelectStep(d, {});
  ASSERT_TRUE(step.ok()) << step.status().ToString();
  Collect out;
  EXPECT_EQ(
      RunStep(**step, kCsv, out),
      (std::vector<std::string>{
          "location=NORTH,temp_f=88.7,hot=true,nope=", "location=EAST,temp_f=53.6,hot=false,nope=",
          "location=NORTH,temp_f=,hot=false,nope=", "location=WEST,temp_f=104,hot=true,nope="}));
  // One output schema for the whole file.
  for (const Schema* s : out.schemas) EXPECT_EQ(s, out.schemas[0]);
}

TEST(SelectStepTest, DropAndRenameKeepUnchangedText) {
  auto step = MakeSelectStep(
      {{"type", "select"}, {"drop", {"note", "absent"}}, {"rename", {{"temp", "t"}}}}, {});
  ASSERT_TRUE(step.ok());
  Collect out;
  EXPECT_EQ(RunStep(**step, "site,temp,note\nx,21.50,a\n", out),
            (std::vector<std::string>{"site=x,t=21.50"}));
}

TEST(SelectStepTest, RenameIntoAnExistingNameFailsTheRecord) {
  auto step = MakeSelectStep({{"type", "select"}, {"rename", {{"temp", "site"}}}}, {});
  ASSERT_TRUE(step.ok());
  Collect out;
  EXPECT_EQ(RunStep(**step, kCsv, out).back(),
            "ERROR select.rename: gives two columns named 'site'");
}

TEST(SelectStepTest, ValidatesTheDeclaration) {
  auto msg = [](const nlohmann::json& d) { return MakeSelectStep(d, {}).status().message(); };
  EXPECT_EQ(msg({{"type", "select"}}),
            "select: needs at least one of compute, columns, drop, rename");
  EXPECT_EQ(msg({{"type", "select"}, {"colums", {"a"}}}).rfind("select.colums: unknown field", 0),
            0u);
  EXPECT_EQ(msg({{"type", "select"}, {"columns", {"a"}}, {"drop", {"b"}}}),
            "select: give 'columns' or 'drop', not both");
  EXPECT_EQ(msg({{"type", "select"}, {"columns", "a"}}),
            "select.columns: must be a list of strings, not string");
  EXPECT_EQ(msg({{"type", "select"}, {"columns", {"a", "a"}}}),
            "select.columns[1]: names 'a' twice");
  EXPECT_EQ(msg({{"type", "select"}, {"compute", {{{"name", "x"}}}}}),
            "select.compute[0].expr: is required");
  EXPECT_EQ(msg({{"type", "select"}, {"compute", {{{"name", "x"}, {"expr", "nofn(1)"}}}}})
                .rfind("select.compute[0].expr: position 1: unknown function 'nofn'", 0),
            0u);
  EXPECT_EQ(msg({{"type", "select"}, {"rename", {{"a", 1}}}}),
            "select.rename.a: must be a string, not number");
}

}  // namespace
}  // namespace fieldstack::compute
