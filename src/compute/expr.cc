// The expression language of expr.h.
//
// Parse: a lexer and a recursive-descent parser (one function per precedence level) build a
// tree of Nodes. Every column the text names gets a slot; Eval binds the slots to field
// indices of the record's Schema once per schema pointer (holding the schema, so its address
// cannot be reused by another one while bound) and the nodes read values by index, so the
// per-row cost is a pointer compare plus the tree walk.
//
// Evaluation works on V, a small non-owning view of a value: strings are string_views into the
// record's values, into a literal, or into the scratch string of the node that computed them.
// A node's scratch is only rewritten when that node is evaluated again, and in a tree every
// node is evaluated at most once per parent evaluation, so views live long enough. Nothing is
// allocated per row for filters over numbers and plain string comparisons.
//
// Regular expressions use PCRE2 (UTF mode with invalid UTF-8 allowed in subjects), compiled
// once at Parse and JIT-compiled when available; a match limit keeps hostile patterns or
// inputs from running away (hitting it is an InvalidArgument error, not a hang).

#include "compute/expr.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <vector>

#include "compute/timefmt.h"

namespace fieldstack::compute {
namespace {

using Type = Value::Type;

constexpr uint32_t kRegexMatchLimit = 5'000'000;
constexpr uint32_t kRegexDepthLimit = 10'000;

// A non-owning value (see the file comment).
struct V {
  Type t = Type::kNull;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string_view s;                // kString: the string; numbers/bools: their text or ""
  const Value* src = nullptr;        // the record value this came from, unchanged
  const std::string* col = nullptr;  // the column it came from (for messages)

  double num() const { return t == Type::kInt ? static_cast<double>(i) : f; }
  bool is_num() const { return t == Type::kInt || t == Type::kFloat; }
};

V MakeNull() { return V{}; }
V MakeBool(bool b) {
  V v;
  v.t = Type::kBool;
  v.b = b;
  return v;
}
V MakeInt(int64_t i) {
  V v;
  v.t = Type::kInt;
  v.i = i;
  return v;
}
V MakeFloat(double f) {
  V v;
  v.t = Type::kFloat;
  v.f = f;
  return v;
}
V MakeStr(std::string_view s) {
  V v;
  v.t = Type::kString;
  v.s = s;
  return v;
}

// Parses the whole of `s` as a number (int64, else a finite float). "+5" is allowed.
bool ParseNumber(std::string_view s, V* out) {
  if (s.empty()) return false;
  const char* b = s.data();
  const char* e = b + s.size();
  if (*b == '+') {
    if (s.size() < 2 || b[1] == '-' || b[1] == '+') return false;
    ++b;
  }
  int64_t i;
  auto ri = std::from_chars(b, e, i);
  if (ri.ec == std::errc() && ri.ptr == e) {
    *out = MakeInt(i);
    return true;
  }
  double d;
  auto rd = std::from_chars(b, e, d);
  if (rd.ec == std::errc() && rd.ptr == e && std::isfinite(d)) {
    *out = MakeFloat(d);
    return true;
  }
  return false;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != lower[i]) return false;
  }
  return true;
}

// The text of a non-null value: strings as they are, numbers and bools by their original
// text or formatted into `scratch`.
std::string_view ToText(const V& v, std::string* scratch) {
  if (v.t == Type::kString) return v.s;
  if (!v.s.empty()) return v.s;
  scratch->clear();
  Value tmp;
  switch (v.t) {
    case Type::kBool:
      tmp.SetBool(v.b);
      break;
    case Type::kInt:
      tmp.SetInt(v.i);
      break;
    case Type::kFloat:
      tmp.SetFloat(v.f);
      break;
    default:
      return {};
  }
  AppendValue(tmp, scratch);
  return *scratch;
}

// "column 'temp' is 'n/a'" or "'n/a'" for messages.
std::string Describe(const V& v) {
  std::string scratch;
  std::string text = v.t == Type::kNull ? "null" : "'" + std::string(ToText(v, &scratch)) + "'";
  if (v.col) return "column '" + *v.col + "' is " + text;
  return text;
}

Status NotANumber(const V& bad, const V* other, std::string_view op) {
  std::string msg = Describe(bad) + ", not a number";
  if (!bad.col && other && other->col) {
    msg = Describe(bad) + " is not a number (operator '" + std::string(op) + "' with column '" +
          *other->col + "')";
  } else if (!bad.col) {
    msg = Describe(bad) + " is not a number (operator '" + std::string(op) + "')";
  }
  return InvalidArgumentError(std::move(msg));
}

// Converts a non-null value to a number for arithmetic; false when it is not one.
bool AsNumber(const V& v, V* out) {
  if (v.is_num()) {
    *out = v;
    return true;
  }
  if (v.t == Type::kString) return ParseNumber(v.s, out);
  return false;
}

// Three-way comparison; false when the values do not compare (null, or a string that is not
// a number against a number, ...).
bool Compare(const V& a, const V& b, int* cmp) {
  if (a.t == Type::kNull || b.t == Type::kNull) return false;
  if (a.t == Type::kInt && b.t == Type::kInt) {
    *cmp = a.i < b.i ? -1 : (a.i > b.i ? 1 : 0);
    return true;
  }
  if (a.is_num() && b.is_num()) {
    double x = a.num(), y = b.num();
    if (std::isnan(x) || std::isnan(y)) return false;
    *cmp = x < y ? -1 : (x > y ? 1 : 0);
    return true;
  }
  if (a.t == Type::kString && b.t == Type::kString) {
    int c = a.s.compare(b.s);
    *cmp = c < 0 ? -1 : (c > 0 ? 1 : 0);
    return true;
  }
  if (a.t == Type::kBool && b.t == Type::kBool) {
    *cmp = static_cast<int>(a.b) - static_cast<int>(b.b);
    return true;
  }
  if ((a.is_num() && b.t == Type::kString) || (a.t == Type::kString && b.is_num())) {
    V na, nb;
    if (!AsNumber(a, &na) || !AsNumber(b, &nb)) return false;
    return Compare(na, nb, cmp);
  }
  if ((a.t == Type::kBool && b.t == Type::kString) ||
      (a.t == Type::kString && b.t == Type::kBool)) {
    const V& s = a.t == Type::kString ? a : b;
    V bv;
    if (EqualsIgnoreCase(s.s, "true")) {
      bv = MakeBool(true);
    } else if (EqualsIgnoreCase(s.s, "false")) {
      bv = MakeBool(false);
    } else {
      return false;
    }
    return a.t == Type::kString ? Compare(bv, b, cmp) : Compare(a, bv, cmp);
  }
  return false;
}

bool Truthy(const V& v) {
  switch (v.t) {
    case Type::kBool:
      return v.b;
    case Type::kInt:
      return v.i != 0;
    case Type::kFloat:
      return v.f != 0 && !std::isnan(v.f);
    default:
      return false;
  }
}

struct EvalContext {
  const Record* rec;
  const int* idx;            // slot -> field index or -1
  const std::string* names;  // slot -> column name
};

class Node {
 public:
  explicit Node(size_t pos) : pos_(pos) {}
  virtual ~Node() = default;
  virtual Status Eval(const EvalContext& ctx, V* out) = 0;
  size_t pos() const { return pos_; }

 private:
  size_t pos_;
};
using NodePtr = std::unique_ptr<Node>;

class LiteralNode final : public Node {
 public:
  LiteralNode(size_t pos, Value v) : Node(pos), value_(std::move(v)) {}
  Status Eval(const EvalContext&, V* out) override {
    switch (value_.type()) {
      case Type::kNull:
        *out = MakeNull();
        break;
      case Type::kBool:
        *out = MakeBool(value_.as_bool());
        break;
      case Type::kInt:
        *out = MakeInt(value_.as_int());
        break;
      case Type::kFloat:
        *out = MakeFloat(value_.as_double());
        break;
      case Type::kString:
        *out = MakeStr(value_.text());
        break;
    }
    return Status::Ok();
  }
  const Value& value() const { return value_; }

 private:
  Value value_;
};

class ColumnNode final : public Node {
 public:
  ColumnNode(size_t pos, size_t slot) : Node(pos), slot_(slot) {}
  Status Eval(const EvalContext& ctx, V* out) override {
    const int i = ctx.idx[slot_];
    if (i < 0 || static_cast<size_t>(i) >= ctx.rec->values.size()) {
      *out = MakeNull();
      out->col = &ctx.names[slot_];
      return Status::Ok();
    }
    const Value& v = ctx.rec->values[static_cast<size_t>(i)];
    V r;
    r.t = v.type();
    switch (r.t) {
      case Type::kBool:
        r.b = v.as_bool();
        break;
      case Type::kInt:
        r.i = v.as_int();
        break;
      case Type::kFloat:
        r.f = v.as_double();
        break;
      default:
        break;
    }
    r.s = v.text();
    r.src = &v;
    r.col = &ctx.names[slot_];
    *out = r;
    return Status::Ok();
  }

 private:
  size_t slot_;
};

class NegNode final : public Node {
 public:
  NegNode(size_t pos, NodePtr a) : Node(pos), a_(std::move(a)) {}
  Status Eval(const EvalContext& ctx, V* out) override {
    V a;
    FS_RETURN_IF_ERROR(a_->Eval(ctx, &a));
    if (a.t == Type::kNull) {
      *out = MakeNull();
      return Status::Ok();
    }
    V n;
    if (!AsNumber(a, &n)) return NotANumber(a, nullptr, "-");
    if (n.t == Type::kInt) {
      *out = n.i == INT64_MIN ? MakeFloat(-static_cast<double>(n.i)) : MakeInt(-n.i);
    } else {
      *out = MakeFloat(-n.f);
    }
    return Status::Ok();
  }

 private:
  NodePtr a_;
};

class NotNode final : public Node {
 public:
  NotNode(size_t pos, NodePtr a) : Node(pos), a_(std::move(a)) {}
  Status Eval(const EvalContext& ctx, V* out) override {
    V a;
    FS_RETURN_IF_ERROR(a_->Eval(ctx, &a));
    *out = MakeBool(!Truthy(a));
    return Status::Ok();
  }

 private:
  NodePtr a_;
};

class LogicNode final : public Node {
 public:
  LogicNode(size_t pos, bool is_and, NodePtr a, NodePtr b)
      : Node(pos), and_(is_and), a_(std::move(a)), b_(std::move(b)) {}
  Status Eval(const EvalContext& ctx, V* out) override {
    V a;
    FS_RETURN_IF_ERROR(a_->Eval(ctx, &a));
    bool ta = Truthy(a);
    if (and_ ? !ta : ta) {
      *out = MakeBool(ta);
      return Status::Ok();
    }
    V b;
    FS_RETURN_IF_ERROR(b_->Eval(ctx, &b));
    *out = MakeBool(Truthy(b));
    return Status::Ok();
  }

 private:
  bool and_;
  NodePtr a_, b_;
};

enum class CmpOp { kEq, kNe, kLt, kLe, kGt, kGe };

bool ApplyCmp(CmpOp op, int c) {
  switch (op) {
    case CmpOp::kEq:
      return c == 0;
    case CmpOp::kNe:
      return c != 0;
    case CmpOp::kLt:
      return c < 0;
    case CmpOp::kLe:
      return c <= 0;
    case CmpOp::kGt:
      return c > 0;
    case CmpOp::kGe:
      return c >= 0;
  }
  return false;
}

class CmpNode final : public Node {
 public:
  CmpNode(size_t pos, CmpOp op, NodePtr a, NodePtr b)
      : Node(pos), op_(op), a_(std::move(a)), b_(std::move(b)) {}
  Status Eval(const EvalContext& ctx, V* out) override {
    V a, b;
    FS_RETURN_IF_ERROR(a_->Eval(ctx, &a));
    FS_RETURN_IF_ERROR(b_->Eval(ctx, &b));
    int c;
    *out = MakeBool(Compare(a, b, &c) && ApplyCmp(op_, c));
    return Status::Ok();
  }

 private:
  CmpOp op_;
  NodePtr a_, b_;
};

class ArithNode final : public Node {
 public:
  ArithNode(size_t pos, char op, NodePtr a, NodePtr b)
      : Node(pos), op_(op), a_(std::move(a)), b_(std::move(b)) {}
  Status Eval(const EvalContext& ctx, V* out) override {
    V a, b;
    FS_RETURN_IF_ERROR(a_->Eval(ctx, &a));
    FS_RETURN_IF_ERROR(b_->Eval(ctx, &b));
    if (a.t == Type::kNull || b.t == Type::kNull) {
      *out = MakeNull();
      return Status::Ok();
    }
    if (op_ == '+' && a.t == Type::kString && b.t == Type::kString) {
      scratch_.assign(a.s);
      scratch_.append(b.s);
      *out = MakeStr(scratch_);
      return Status::Ok();
    }
    const char op_name[2] = {op_, 0};
    V x, y;
    if (!AsNumber(a, &x)) return NotANumber(a, &b, op_name);
    if (!AsNumber(b, &y)) return NotANumber(b, &a, op_name);
    if (x.t == Type::kInt && y.t == Type::kInt) {
      int64_t r;
      switch (op_) {
        case '+':
          if (!__builtin_add_overflow(x.i, y.i, &r)) return SetInt(r, out);
          break;
        case '-':
          if (!__builtin_sub_overflow(x.i, y.i, &r)) return SetInt(r, out);
          break;
        case '*':
          if (!__builtin_mul_overflow(x.i, y.i, &r)) return SetInt(r, out);
          break;
        case '%':
          if (y.i == 0) {
            *out = MakeNull();
            return Status::Ok();
          }
          return SetInt(y.i == -1 ? 0 : x.i % y.i, out);
        default:
          break;
      }
    }
    const double p = x.num(), q = y.num();
    double r = 0;
    switch (op_) {
      case '+':
        r = p + q;
        break;
      case '-':
        r = p - q;
        break;
      case '*':
        r = p * q;
        break;
      case '/':
        if (q == 0) {
          *out = MakeNull();
          return Status::Ok();
        }
        r = p / q;
        break;
      case '%':
        if (q == 0) {
          *out = MakeNull();
          return Status::Ok();
        }
        r = std::fmod(p, q);
        break;
    }
    *out = MakeFloat(r);
    return Status::Ok();
  }

 private:
  static Status SetInt(int64_t r, V* out) {
    *out = MakeInt(r);
    return Status::Ok();
  }
  char op_;
  NodePtr a_, b_;
  std::string scratch_;
};

class IsNullNode final : public Node {
 public:
  IsNullNode(size_t pos, bool negate, NodePtr a) : Node(pos), negate_(negate), a_(std::move(a)) {}
  Status Eval(const EvalContext& ctx, V* out) override {
    V a;
    FS_RETURN_IF_ERROR(a_->Eval(ctx, &a));
    *out = MakeBool((a.t == Type::kNull) != negate_);
    return Status::Ok();
  }

 private:
  bool negate_;
  NodePtr a_;
};

class InNode final : public Node {
 public:
  InNode(size_t pos, bool negate, NodePtr a, std::vector<NodePtr> list)
      : Node(pos), negate_(negate), a_(std::move(a)), list_(std::move(list)) {}
  Status Eval(const EvalContext& ctx, V* out) override {
    V a;
    FS_RETURN_IF_ERROR(a_->Eval(ctx, &a));
    if (a.t == Type::kNull) {
      *out = MakeBool(false);
      return Status::Ok();
    }
    bool found = false;
    for (auto& n : list_) {
      V b;
      FS_RETURN_IF_ERROR(n->Eval(ctx, &b));
      int c;
      if (Compare(a, b, &c) && c == 0) {
        found = true;
        break;
      }
    }
    *out = MakeBool(found != negate_);
    return Status::Ok();
  }

 private:
  bool negate_;
  NodePtr a_;
  std::vector<NodePtr> list_;
};

struct Pcre2CodeFree {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
struct Pcre2MatchDataFree {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};
struct Pcre2MatchContextFree {
  void operator()(pcre2_match_context* m) const { pcre2_match_context_free(m); }
};

class RegexNode final : public Node {
 public:
  RegexNode(size_t pos, bool negate, NodePtr a, std::string pattern,
            std::unique_ptr<pcre2_code, Pcre2CodeFree> code)
      : Node(pos),
        negate_(negate),
        a_(std::move(a)),
        pattern_(std::move(pattern)),
        code_(std::move(code)),
        md_(pcre2_match_data_create_from_pattern(code_.get(), nullptr)),
        mctx_(pcre2_match_context_create(nullptr)) {
    pcre2_set_match_limit(mctx_.get(), kRegexMatchLimit);
    pcre2_set_depth_limit(mctx_.get(), kRegexDepthLimit);
  }

  Status Eval(const EvalContext& ctx, V* out) override {
    V a;
    FS_RETURN_IF_ERROR(a_->Eval(ctx, &a));
    if (a.t == Type::kNull) {
      *out = MakeBool(false);
      return Status::Ok();
    }
    std::string_view s = ToText(a, &scratch_);
    int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, 0,
                         md_.get(), mctx_.get());
    if (rc >= 0) {
      *out = MakeBool(!negate_);
      return Status::Ok();
    }
    if (rc == PCRE2_ERROR_NOMATCH) {
      *out = MakeBool(negate_);
      return Status::Ok();
    }
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    std::string where = a.col ? " on column '" + *a.col + "'" : std::string();
    return InvalidArgumentError("regular expression '" + pattern_ + "' failed" + where + ": " +
                                reinterpret_cast<const char*>(msg));
  }

 private:
  bool negate_;
  NodePtr a_;
  std::string pattern_;
  std::unique_ptr<pcre2_code, Pcre2CodeFree> code_;
  std::unique_ptr<pcre2_match_data, Pcre2MatchDataFree> md_;
  std::unique_ptr<pcre2_match_context, Pcre2MatchContextFree> mctx_;
  std::string scratch_;
};

enum class Fn {
  kLower,
  kUpper,
  kTrim,
  kLen,
  kSubstr,
  kContains,
  kStartsWith,
  kEndsWith,
  kReplace,
  kAbs,
  kRound,
  kFloor,
  kCeil,
  kMin,
  kMax,
  kCoalesce,
  kIf,
  kInt,
  kFloat,
  kStr,
  kNow,
  kTime,
  kYear,
  kMonth,
  kDay,
  kHour,
};

struct FnInfo {
  std::string_view name;
  Fn fn;
  int min_args;
  int max_args;  // -1: any number
};

constexpr FnInfo kFunctions[] = {
    {"lower", Fn::kLower, 1, 1},
    {"upper", Fn::kUpper, 1, 1},
    {"trim", Fn::kTrim, 1, 1},
    {"len", Fn::kLen, 1, 1},
    {"substr", Fn::kSubstr, 2, 3},
    {"contains", Fn::kContains, 2, 2},
    {"starts_with", Fn::kStartsWith, 2, 2},
    {"ends_with", Fn::kEndsWith, 2, 2},
    {"replace", Fn::kReplace, 3, 3},
    {"abs", Fn::kAbs, 1, 1},
    {"round", Fn::kRound, 1, 2},
    {"floor", Fn::kFloor, 1, 1},
    {"ceil", Fn::kCeil, 1, 1},
    {"min", Fn::kMin, 1, -1},
    {"max", Fn::kMax, 1, -1},
    {"coalesce", Fn::kCoalesce, 1, -1},
    {"if", Fn::kIf, 3, 3},
    {"int", Fn::kInt, 1, 1},
    {"float", Fn::kFloat, 1, 1},
    {"str", Fn::kStr, 1, 1},
    {"now", Fn::kNow, 0, 0},
    {"time", Fn::kTime, 1, 1},
    {"year", Fn::kYear, 1, 1},
    {"month", Fn::kMonth, 1, 1},
    {"day", Fn::kDay, 1, 1},
    {"hour", Fn::kHour, 1, 1},
};

// UTF-8 helpers for len/substr (counted in code points; invalid bytes count as one each).
size_t Utf8Advance(std::string_view s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  for (size_t k = 1; k < n; ++k) {
    if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return i + 1;
  }
  return i + n;
}
int64_t Utf8Length(std::string_view s) {
  int64_t n = 0;
  for (size_t i = 0; i < s.size(); i = Utf8Advance(s, i)) ++n;
  return n;
}
size_t Utf8Offset(std::string_view s, int64_t cp) {
  size_t i = 0;
  for (int64_t k = 0; k < cp && i < s.size(); ++k) i = Utf8Advance(s, i);
  return i;
}

class CallNode final : public Node {
 public:
  CallNode(size_t pos, const FnInfo& info, std::vector<NodePtr> args, int64_t now_ns)
      : Node(pos), info_(info), args_(std::move(args)), vals_(args_.size()), now_ns_(now_ns) {}

  Status Eval(const EvalContext& ctx, V* out) override {
    if (info_.fn == Fn::kIf) {
      V c;
      FS_RETURN_IF_ERROR(args_[0]->Eval(ctx, &c));
      return args_[Truthy(c) ? 1 : 2]->Eval(ctx, out);
    }
    if (info_.fn == Fn::kCoalesce) {
      for (auto& a : args_) {
        FS_RETURN_IF_ERROR(a->Eval(ctx, out));
        if (out->t != Type::kNull) return Status::Ok();
      }
      *out = MakeNull();
      return Status::Ok();
    }
    for (size_t k = 0; k < args_.size(); ++k) FS_RETURN_IF_ERROR(args_[k]->Eval(ctx, &vals_[k]));
    return Apply(out);
  }

 private:
  Status Error(const std::string& what) const {
    return InvalidArgumentError(std::string(info_.name) + "(): " + what);
  }

  // A number argument; false (with *out null) for null.
  Status Number(size_t k, V* n, bool* is_null) {
    const V& a = vals_[k];
    *is_null = a.t == Type::kNull;
    if (*is_null) return Status::Ok();
    if (!AsNumber(a, n)) return Error(Describe(a) + ", not a number");
    return Status::Ok();
  }

  Status Int(size_t k, int64_t* i, bool* is_null) {
    V n;
    FS_RETURN_IF_ERROR(Number(k, &n, is_null));
    if (*is_null) return Status::Ok();
    if (n.t == Type::kInt) {
      *i = n.i;
    } else if (std::isfinite(n.f) && std::fabs(n.f) < 9.2e18) {
      *i = static_cast<int64_t>(n.f);
    } else {
      return Error(Describe(vals_[k]) + ", out of the integer range");
    }
    return Status::Ok();
  }

  Status Timestamp(size_t k, int64_t* ns, bool* is_null) {
    const V& a = vals_[k];
    *is_null = a.t == Type::kNull;
    if (*is_null) return Status::Ok();
    Result<int64_t> r = InvalidArgumentError("not a time");
    if (a.t == Type::kInt) {
      r = ParseTimestampNs(Value::Int(a.i));
    } else if (a.t == Type::kFloat) {
      r = ParseTimestampNs(Value::Float(a.f));
    } else if (a.t == Type::kString) {
      r = ParseTimestampNs(a.s);
    }
    if (!r.ok()) return Error(Describe(a) + ", not a time");
    *ns = *r;
    return Status::Ok();
  }

  Status Apply(V* out) {
    bool null = false;
    *out = MakeNull();
    // String functions: a null first argument gives null; others convert to text.
    auto text = [&](size_t k) { return ToText(vals_[k], &arg_text_[k % 3]); };
    auto any_null = [&] {
      for (const V& v : vals_) {
        if (v.t == Type::kNull) return true;
      }
      return false;
    };
    switch (info_.fn) {
      case Fn::kLower:
      case Fn::kUpper: {
        if (any_null()) return Status::Ok();
        std::string_view s = text(0);
        scratch_.assign(s);
        for (char& c : scratch_) {
          c = static_cast<char>(info_.fn == Fn::kLower
                                    ? std::tolower(static_cast<unsigned char>(c))
                                    : std::toupper(static_cast<unsigned char>(c)));
        }
        *out = MakeStr(scratch_);
        return Status::Ok();
      }
      case Fn::kTrim: {
        if (any_null()) return Status::Ok();
        std::string_view s = text(0);
        while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
          s.remove_prefix(1);
        while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
        scratch_.assign(s);
        *out = MakeStr(scratch_);
        return Status::Ok();
      }
      case Fn::kLen:
        if (any_null()) return Status::Ok();
        *out = MakeInt(Utf8Length(text(0)));
        return Status::Ok();
      case Fn::kSubstr: {
        if (any_null()) return Status::Ok();
        std::string_view s = text(0);
        int64_t start, len = INT64_MAX;
        FS_RETURN_IF_ERROR(Int(1, &start, &null));
        if (vals_.size() > 2) FS_RETURN_IF_ERROR(Int(2, &len, &null));
        const int64_t n = Utf8Length(s);
        if (start < 0) start = std::max<int64_t>(0, n + start);
        if (len < 0) len = 0;
        size_t b = Utf8Offset(s, start);
        size_t e = len >= n ? s.size() : b + Utf8Offset(s.substr(b), len);
        scratch_.assign(s.substr(b, e - b));
        *out = MakeStr(scratch_);
        return Status::Ok();
      }
      case Fn::kContains:
      case Fn::kStartsWith:
      case Fn::kEndsWith: {
        if (any_null()) return Status::Ok();
        std::string_view s = text(0), t = text(1);
        bool r = info_.fn == Fn::kContains     ? s.find(t) != std::string_view::npos
                 : info_.fn == Fn::kStartsWith ? s.starts_with(t)
                                               : s.ends_with(t);
        *out = MakeBool(r);
        return Status::Ok();
      }
      case Fn::kReplace: {
        if (any_null()) return Status::Ok();
        std::string_view s = text(0), from = text(1), to = text(2);
        scratch_.clear();
        if (from.empty()) {
          scratch_.assign(s);
        } else {
          for (;;) {
            size_t p = s.find(from);
            if (p == std::string_view::npos) break;
            scratch_.append(s.substr(0, p));
            scratch_.append(to);
            s.remove_prefix(p + from.size());
          }
          scratch_.append(s);
        }
        *out = MakeStr(scratch_);
        return Status::Ok();
      }
      case Fn::kAbs: {
        V n;
        FS_RETURN_IF_ERROR(Number(0, &n, &null));
        if (null) return Status::Ok();
        if (n.t == Type::kInt) {
          *out = n.i == INT64_MIN ? MakeFloat(-static_cast<double>(n.i)) : MakeInt(std::abs(n.i));
        } else {
          *out = MakeFloat(std::fabs(n.f));
        }
        return Status::Ok();
      }
      case Fn::kRound:
      case Fn::kFloor:
      case Fn::kCeil: {
        V n;
        FS_RETURN_IF_ERROR(Number(0, &n, &null));
        if (null) return Status::Ok();
        int64_t digits = 0;
        if (vals_.size() > 1) {
          FS_RETURN_IF_ERROR(Int(1, &digits, &null));
          if (null) return Status::Ok();
        }
        if (n.t == Type::kInt && digits >= 0) {
          *out = n;
          out->s = {};
          out->src = nullptr;
          return Status::Ok();
        }
        double x = n.num();
        double scale = std::pow(10.0, static_cast<double>(std::clamp<int64_t>(digits, -300, 300)));
        double y = x * scale;
        y = info_.fn == Fn::kRound   ? std::round(y)
            : info_.fn == Fn::kFloor ? std::floor(y)
                                     : std::ceil(y);
        *out = MakeFloat(digits == 0 ? y : y / scale);
        return Status::Ok();
      }
      case Fn::kMin:
      case Fn::kMax: {
        const V* best = nullptr;
        for (const V& v : vals_) {
          if (v.t == Type::kNull) continue;
          if (!best) {
            best = &v;
            continue;
          }
          int c;
          if (!Compare(v, *best, &c)) {
            return Error("cannot compare " + Describe(v) + " with " + Describe(*best));
          }
          if (info_.fn == Fn::kMin ? c < 0 : c > 0) best = &v;
        }
        if (best) *out = *best;
        return Status::Ok();
      }
      case Fn::kInt: {
        const V& a = vals_[0];
        if (a.t == Type::kNull) return Status::Ok();
        if (a.t == Type::kBool) {
          *out = MakeInt(a.b ? 1 : 0);
          return Status::Ok();
        }
        int64_t i;
        FS_RETURN_IF_ERROR(Int(0, &i, &null));
        *out = MakeInt(i);
        return Status::Ok();
      }
      case Fn::kFloat: {
        const V& a = vals_[0];
        if (a.t == Type::kNull) return Status::Ok();
        if (a.t == Type::kBool) {
          *out = MakeFloat(a.b ? 1 : 0);
          return Status::Ok();
        }
        V n;
        FS_RETURN_IF_ERROR(Number(0, &n, &null));
        *out = MakeFloat(n.num());
        return Status::Ok();
      }
      case Fn::kStr: {
        if (any_null()) return Status::Ok();
        std::string_view s = text(0);
        scratch_.assign(s);
        *out = MakeStr(scratch_);
        return Status::Ok();
      }
      case Fn::kNow:
        *out = MakeFloat(static_cast<double>(now_ns_) / 1e9);
        return Status::Ok();
      case Fn::kTime: {
        int64_t ns;
        FS_RETURN_IF_ERROR(Timestamp(0, &ns, &null));
        if (!null) *out = MakeFloat(static_cast<double>(ns) / 1e9);
        return Status::Ok();
      }
      case Fn::kYear:
      case Fn::kMonth:
      case Fn::kDay:
      case Fn::kHour: {
        int64_t ns;
        FS_RETURN_IF_ERROR(Timestamp(0, &ns, &null));
        if (null) return Status::Ok();
        constexpr int64_t kNsPerDay = 86'400'000'000'000;
        int64_t days = ns / kNsPerDay;
        int64_t rem = ns % kNsPerDay;
        if (rem < 0) {
          rem += kNsPerDay;
          --days;
        }
        int64_t y;
        unsigned m, d;
        CivilFromDays(days, &y, &m, &d);
        int64_t r = info_.fn == Fn::kYear    ? y
                    : info_.fn == Fn::kMonth ? m
                    : info_.fn == Fn::kDay   ? d
                                             : rem / 3'600'000'000'000;
        *out = MakeInt(r);
        return Status::Ok();
      }
      case Fn::kIf:
      case Fn::kCoalesce:
        break;
    }
    return Status::Ok();
  }

  const FnInfo& info_;
  std::vector<NodePtr> args_;
  std::vector<V> vals_;
  int64_t now_ns_;
  std::string scratch_;
  std::string arg_text_[3];
};

// Lexer --------------------------------------------------------------------------------------

enum class Tok { kEnd, kNumber, kString, kIdent, kQuotedIdent, kOp, kLParen, kRParen, kComma };

struct Token {
  Tok kind = Tok::kEnd;
  size_t pos = 0;
  std::string text;  // identifier, unescaped string, number text, operator
};

class Parser {
 public:
  Parser(std::string_view text, int64_t now_ns) : text_(text), now_ns_(now_ns) {}

  Status Run(NodePtr* root, std::vector<std::string>* columns) {
    columns_ = columns;
    FS_RETURN_IF_ERROR(Advance());
    FS_RETURN_IF_ERROR(ParseOr(root));
    if (tok_.kind != Tok::kEnd) return Unexpected();
    return Status::Ok();
  }

 private:
  Status ErrorAt(size_t pos, const std::string& what) const {
    std::string msg = "position " + std::to_string(pos + 1) + ": " + what + "\n  ";
    for (char c : text_) msg.push_back(c == '\n' || c == '\t' || c == '\r' ? ' ' : c);
    msg += "\n  " + std::string(pos, ' ') + "^";
    return InvalidArgumentError(std::move(msg));
  }

  Status Unexpected() const {
    if (tok_.kind == Tok::kEnd) return ErrorAt(tok_.pos, "unexpected end of expression");
    if (tok_.kind == Tok::kString)
      return ErrorAt(tok_.pos, "unexpected string '" + tok_.text + "'");
    return ErrorAt(tok_.pos, "unexpected '" + tok_.text + "'");
  }

  bool IsKeyword(std::string_view kw) const {
    return tok_.kind == Tok::kIdent && EqualsIgnoreCase(tok_.text, kw);
  }
  bool IsOp(std::string_view op) const { return tok_.kind == Tok::kOp && tok_.text == op; }

  Status Advance() {
    size_t i = pos_;
    while (i < text_.size() && std::isspace(static_cast<unsigned char>(text_[i]))) ++i;
    tok_ = Token{};
    tok_.pos = i;
    if (i == text_.size()) {
      pos_ = i;
      return Status::Ok();
    }
    const char c = text_[i];
    auto ident_start = [](char ch) {
      return std::isalpha(static_cast<unsigned char>(ch)) || ch == '_';
    };
    auto ident_char = [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.';
    };
    if (ident_start(c)) {
      size_t j = i + 1;
      while (j < text_.size() && ident_char(text_[j])) ++j;
      tok_.kind = Tok::kIdent;
      tok_.text.assign(text_.substr(i, j - i));
      pos_ = j;
      return Status::Ok();
    }
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '.' && i + 1 < text_.size() &&
         std::isdigit(static_cast<unsigned char>(text_[i + 1])))) {
      size_t j = i;
      while (j < text_.size() &&
             (std::isdigit(static_cast<unsigned char>(text_[j])) || text_[j] == '.'))
        ++j;
      if (j < text_.size() && (text_[j] == 'e' || text_[j] == 'E')) {
        size_t k = j + 1;
        if (k < text_.size() && (text_[k] == '+' || text_[k] == '-')) ++k;
        if (k < text_.size() && std::isdigit(static_cast<unsigned char>(text_[k]))) {
          j = k;
          while (j < text_.size() && std::isdigit(static_cast<unsigned char>(text_[j]))) ++j;
        }
      }
      if (j < text_.size() && ident_start(text_[j])) return ErrorAt(j, "bad number");
      tok_.kind = Tok::kNumber;
      tok_.text.assign(text_.substr(i, j - i));
      pos_ = j;
      return Status::Ok();
    }
    if (c == '\'' || c == '"' || c == '`') {
      size_t j = i + 1;
      std::string s;
      for (;;) {
        if (j >= text_.size()) {
          return ErrorAt(i, c == '`' ? "unterminated `name`" : "unterminated string");
        }
        char d = text_[j];
        if (d == c) {
          ++j;
          break;
        }
        if (d == '\\' && c != '`' && j + 1 < text_.size()) {
          char e = text_[j + 1];
          switch (e) {
            case 'n':
              s.push_back('\n');
              break;
            case 't':
              s.push_back('\t');
              break;
            case 'r':
              s.push_back('\r');
              break;
            case '0':
              s.push_back('\0');
              break;
            default:
              s.push_back(e);  // \\ \' \" and any other escaped character as itself
          }
          j += 2;
          continue;
        }
        s.push_back(d);
        ++j;
      }
      tok_.kind = c == '`' ? Tok::kQuotedIdent : Tok::kString;
      tok_.text = std::move(s);
      pos_ = j;
      return Status::Ok();
    }
    if (c == '(' || c == ')' || c == ',') {
      tok_.kind = c == '(' ? Tok::kLParen : c == ')' ? Tok::kRParen : Tok::kComma;
      tok_.text.assign(1, c);
      pos_ = i + 1;
      return Status::Ok();
    }
    static constexpr std::string_view kTwo[] = {"==", "!=", "<>", "<=", ">=", "!~", "&&", "||"};
    for (std::string_view op : kTwo) {
      if (text_.substr(i, 2) == op) {
        tok_.kind = Tok::kOp;
        tok_.text.assign(op);
        pos_ = i + 2;
        return Status::Ok();
      }
    }
    if (std::strchr("=<>~!+-*/%", c) != nullptr) {
      tok_.kind = Tok::kOp;
      tok_.text.assign(1, c);
      pos_ = i + 1;
      return Status::Ok();
    }
    return ErrorAt(i, "unexpected character '" + std::string(1, c) + "'");
  }

  Status ParseOr(NodePtr* out) {
    FS_RETURN_IF_ERROR(ParseAnd(out));
    while (IsKeyword("or") || IsOp("||")) {
      size_t pos = tok_.pos;
      FS_RETURN_IF_ERROR(Advance());
      NodePtr rhs;
      FS_RETURN_IF_ERROR(ParseAnd(&rhs));
      *out = std::make_unique<LogicNode>(pos, false, std::move(*out), std::move(rhs));
    }
    return Status::Ok();
  }

  Status ParseAnd(NodePtr* out) {
    FS_RETURN_IF_ERROR(ParseNot(out));
    while (IsKeyword("and") || IsOp("&&")) {
      size_t pos = tok_.pos;
      FS_RETURN_IF_ERROR(Advance());
      NodePtr rhs;
      FS_RETURN_IF_ERROR(ParseNot(&rhs));
      *out = std::make_unique<LogicNode>(pos, true, std::move(*out), std::move(rhs));
    }
    return Status::Ok();
  }

  Status ParseNot(NodePtr* out) {
    if (IsKeyword("not") || IsOp("!")) {
      size_t pos = tok_.pos;
      FS_RETURN_IF_ERROR(Advance());
      NodePtr a;
      FS_RETURN_IF_ERROR(ParseNot(&a));
      *out = std::make_unique<NotNode>(pos, std::move(a));
      return Status::Ok();
    }
    return ParseComparison(out);
  }

  Status ParseComparison(NodePtr* out) {
    FS_RETURN_IF_ERROR(ParseAdditive(out));
    const size_t pos = tok_.pos;
    if (tok_.kind == Tok::kOp) {
      const std::string op = tok_.text;
      CmpOp cmp;
      if (op == "=" || op == "==") {
        cmp = CmpOp::kEq;
      } else if (op == "!=" || op == "<>") {
        cmp = CmpOp::kNe;
      } else if (op == "<") {
        cmp = CmpOp::kLt;
      } else if (op == "<=") {
        cmp = CmpOp::kLe;
      } else if (op == ">") {
        cmp = CmpOp::kGt;
      } else if (op == ">=") {
        cmp = CmpOp::kGe;
      } else if (op == "~" || op == "!~") {
        FS_RETURN_IF_ERROR(Advance());
        return ParseRegex(pos, op == "!~", out);
      } else {
        return Status::Ok();
      }
      FS_RETURN_IF_ERROR(Advance());
      NodePtr rhs;
      FS_RETURN_IF_ERROR(ParseAdditive(&rhs));
      *out = std::make_unique<CmpNode>(pos, cmp, std::move(*out), std::move(rhs));
      return Status::Ok();
    }
    if (IsKeyword("is")) {
      FS_RETURN_IF_ERROR(Advance());
      bool negate = false;
      if (IsKeyword("not")) {
        negate = true;
        FS_RETURN_IF_ERROR(Advance());
      }
      if (!IsKeyword("null")) return ErrorAt(tok_.pos, "expected 'null' after 'is'");
      FS_RETURN_IF_ERROR(Advance());
      *out = std::make_unique<IsNullNode>(pos, negate, std::move(*out));
      return Status::Ok();
    }
    bool negate = false;
    if (IsKeyword("not")) {
      FS_RETURN_IF_ERROR(Advance());
      if (!IsKeyword("in")) return ErrorAt(tok_.pos, "expected 'in' after 'not'");
      negate = true;
    }
    if (IsKeyword("in")) {
      FS_RETURN_IF_ERROR(Advance());
      if (tok_.kind != Tok::kLParen) return ErrorAt(tok_.pos, "expected '(' after 'in'");
      const size_t open = tok_.pos;
      FS_RETURN_IF_ERROR(Advance());
      std::vector<NodePtr> list;
      FS_RETURN_IF_ERROR(ParseList(open, &list));
      if (list.empty()) return ErrorAt(open, "empty list after 'in'");
      *out = std::make_unique<InNode>(pos, negate, std::move(*out), std::move(list));
    }
    return Status::Ok();
  }

  // Parses "a, b, c)" after an opening parenthesis at `open`.
  Status ParseList(size_t open, std::vector<NodePtr>* list) {
    if (tok_.kind == Tok::kRParen) return Advance();
    for (;;) {
      NodePtr item;
      FS_RETURN_IF_ERROR(ParseOr(&item));
      list->push_back(std::move(item));
      if (tok_.kind == Tok::kComma) {
        FS_RETURN_IF_ERROR(Advance());
        continue;
      }
      if (tok_.kind == Tok::kRParen) return Advance();
      if (tok_.kind == Tok::kEnd) {
        return ErrorAt(tok_.pos, "missing ')' for the '(' at position " + std::to_string(open + 1));
      }
      return ErrorAt(tok_.pos, "expected ',' or ')'");
    }
  }

  Status ParseRegex(size_t pos, bool negate, NodePtr* out) {
    if (tok_.kind != Tok::kString) {
      return ErrorAt(
          tok_.pos, "expected a 'pattern' string after '" + std::string(negate ? "!~" : "~") + "'");
    }
    const std::string pattern = tok_.text;
    const size_t pattern_pos = tok_.pos;
    int err = 0;
    PCRE2_SIZE err_off = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &err_off, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      return ErrorAt(pattern_pos, "bad regular expression '" + pattern +
                                      "': " + reinterpret_cast<const char*>(msg) + " (at offset " +
                                      std::to_string(err_off) + " of the pattern)");
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // best effort: the interpreter works too
    FS_RETURN_IF_ERROR(Advance());
    *out = std::make_unique<RegexNode>(pos, negate, std::move(*out), pattern,
                                       std::unique_ptr<pcre2_code, Pcre2CodeFree>(code));
    return Status::Ok();
  }

  Status ParseAdditive(NodePtr* out) {
    FS_RETURN_IF_ERROR(ParseMultiplicative(out));
    while (IsOp("+") || IsOp("-")) {
      size_t pos = tok_.pos;
      char op = tok_.text[0];
      FS_RETURN_IF_ERROR(Advance());
      NodePtr rhs;
      FS_RETURN_IF_ERROR(ParseMultiplicative(&rhs));
      *out = std::make_unique<ArithNode>(pos, op, std::move(*out), std::move(rhs));
    }
    return Status::Ok();
  }

  Status ParseMultiplicative(NodePtr* out) {
    FS_RETURN_IF_ERROR(ParseUnary(out));
    while (IsOp("*") || IsOp("/") || IsOp("%")) {
      size_t pos = tok_.pos;
      char op = tok_.text[0];
      FS_RETURN_IF_ERROR(Advance());
      NodePtr rhs;
      FS_RETURN_IF_ERROR(ParseUnary(&rhs));
      *out = std::make_unique<ArithNode>(pos, op, std::move(*out), std::move(rhs));
    }
    return Status::Ok();
  }

  Status ParseUnary(NodePtr* out) {
    if (IsOp("-")) {
      size_t pos = tok_.pos;
      FS_RETURN_IF_ERROR(Advance());
      if (tok_.kind == Tok::kNumber) return ParseNumberLiteral(pos, true, out);
      NodePtr a;
      FS_RETURN_IF_ERROR(ParseUnary(&a));
      *out = std::make_unique<NegNode>(pos, std::move(a));
      return Status::Ok();
    }
    return ParsePrimary(out);
  }

  Status ParseNumberLiteral(size_t pos, bool negative, NodePtr* out) {
    std::string t = (negative ? "-" : "") + tok_.text;
    V v;
    if (!ParseNumber(t, &v)) {
      // An integer too big for int64 reads as a float; anything else is malformed.
      double d;
      auto r = std::from_chars(t.data(), t.data() + t.size(), d);
      if (r.ec != std::errc() || r.ptr != t.data() + t.size()) {
        return ErrorAt(tok_.pos, "bad number '" + tok_.text + "'");
      }
      v = MakeFloat(d);
    }
    FS_RETURN_IF_ERROR(Advance());
    *out =
        std::make_unique<LiteralNode>(pos, v.t == Type::kInt ? Value::Int(v.i) : Value::Float(v.f));
    return Status::Ok();
  }

  Status ParsePrimary(NodePtr* out) {
    const size_t pos = tok_.pos;
    switch (tok_.kind) {
      case Tok::kNumber:
        return ParseNumberLiteral(pos, false, out);
      case Tok::kString: {
        Value v = Value::String(tok_.text);
        FS_RETURN_IF_ERROR(Advance());
        *out = std::make_unique<LiteralNode>(pos, std::move(v));
        return Status::Ok();
      }
      case Tok::kQuotedIdent: {
        std::string name = tok_.text;
        FS_RETURN_IF_ERROR(Advance());
        *out = MakeColumn(pos, name);
        return Status::Ok();
      }
      case Tok::kLParen: {
        FS_RETURN_IF_ERROR(Advance());
        FS_RETURN_IF_ERROR(ParseOr(out));
        if (tok_.kind != Tok::kRParen) {
          if (tok_.kind == Tok::kEnd) {
            return ErrorAt(tok_.pos,
                           "missing ')' for the '(' at position " + std::to_string(pos + 1));
          }
          return ErrorAt(tok_.pos, "expected ')'");
        }
        return Advance();
      }
      case Tok::kIdent: {
        std::string name = tok_.text;
        if (EqualsIgnoreCase(name, "true") || EqualsIgnoreCase(name, "false")) {
          FS_RETURN_IF_ERROR(Advance());
          *out = std::make_unique<LiteralNode>(pos, Value::Bool(EqualsIgnoreCase(name, "true")));
          return Status::Ok();
        }
        if (EqualsIgnoreCase(name, "null")) {
          FS_RETURN_IF_ERROR(Advance());
          *out = std::make_unique<LiteralNode>(pos, Value::Null());
          return Status::Ok();
        }
        for (std::string_view kw : {"and", "or", "not", "in", "is"}) {
          if (EqualsIgnoreCase(name, kw)) return Unexpected();
        }
        FS_RETURN_IF_ERROR(Advance());
        if (tok_.kind == Tok::kLParen) return ParseCall(pos, name, out);
        *out = MakeColumn(pos, name);
        return Status::Ok();
      }
      default:
        return Unexpected();
    }
  }

  Status ParseCall(size_t pos, const std::string& name, NodePtr* out) {
    const FnInfo* info = nullptr;
    for (const FnInfo& f : kFunctions) {
      if (EqualsIgnoreCase(name, f.name)) info = &f;
    }
    if (info == nullptr) return ErrorAt(pos, "unknown function '" + name + "'");
    const size_t open = tok_.pos;
    FS_RETURN_IF_ERROR(Advance());
    std::vector<NodePtr> args;
    FS_RETURN_IF_ERROR(ParseList(open, &args));
    const int n = static_cast<int>(args.size());
    if (n < info->min_args || (info->max_args >= 0 && n > info->max_args)) {
      std::string want;
      if (info->max_args < 0) {
        want = "at least " + std::to_string(info->min_args) + " argument";
        if (info->min_args != 1) want += "s";
      } else if (info->min_args == info->max_args) {
        want = std::to_string(info->min_args) + " argument" + (info->min_args == 1 ? "" : "s");
      } else {
        want =
            std::to_string(info->min_args) + " or " + std::to_string(info->max_args) + " arguments";
      }
      return ErrorAt(pos, "function '" + std::string(info->name) + "' takes " + want + ", not " +
                              std::to_string(n));
    }
    *out = std::make_unique<CallNode>(pos, *info, std::move(args), now_ns_);
    return Status::Ok();
  }

  NodePtr MakeColumn(size_t pos, const std::string& name) {
    size_t slot = 0;
    while (slot < columns_->size() && (*columns_)[slot] != name) ++slot;
    if (slot == columns_->size()) columns_->push_back(name);
    return std::make_unique<ColumnNode>(pos, slot);
  }

  std::string_view text_;
  int64_t now_ns_;
  size_t pos_ = 0;
  Token tok_;
  std::vector<std::string>* columns_ = nullptr;
};

class ExprImpl final : public Expr {
 public:
  explicit ExprImpl(std::string text) : text_(std::move(text)) {}

  Status Init(int64_t now_ns) {
    Parser parser(text_, now_ns);
    FS_RETURN_IF_ERROR(parser.Run(&root_, &columns_));
    idx_.assign(columns_.size(), -1);
    return Status::Ok();
  }

  Result<Value> Eval(const Record& rec) override {
    V v;
    FS_RETURN_IF_ERROR(EvalV(rec, &v));
    if (v.src) return *v.src;  // a column's value as it is (keeps its original text)
    switch (v.t) {
      case Type::kNull:
        return Value::Null();
      case Type::kBool:
        return Value::Bool(v.b);
      case Type::kInt:
        return Value::Int(v.i);
      case Type::kFloat:
        return Value::Float(v.f);
      case Type::kString:
        return Value::String(std::string(v.s));
    }
    return Value::Null();
  }

  Result<bool> Test(const Record& rec) override {
    V v;
    FS_RETURN_IF_ERROR(EvalV(rec, &v));
    return Truthy(v);
  }

  const std::vector<std::string>& columns() const override { return columns_; }
  const std::string& text() const override { return text_; }

 private:
  Status EvalV(const Record& rec, V* v) {
    if (rec.schema.get() != bound_.get() || !bound_) Bind(rec.schema);
    EvalContext ctx{&rec, idx_.data(), columns_.data()};
    Status s = root_->Eval(ctx, v);
    if (!s.ok()) return s.WithContext("expression '" + text_ + "'");
    return s;
  }

  void Bind(const std::shared_ptr<const Schema>& schema) {
    bound_ = schema;
    for (size_t i = 0; i < columns_.size(); ++i) idx_[i] = schema ? schema->Find(columns_[i]) : -1;
  }

  std::string text_;
  NodePtr root_;
  std::vector<std::string> columns_;
  std::vector<int> idx_;
  std::shared_ptr<const Schema> bound_;
};

}  // namespace

Result<std::unique_ptr<Expr>> Expr::Parse(std::string_view text, int64_t now_ns) {
  auto e = std::make_unique<ExprImpl>(std::string(text));
  FS_RETURN_IF_ERROR(e->Init(now_ns));
  return std::unique_ptr<Expr>(std::move(e));
}

}  // namespace fieldstack::compute
