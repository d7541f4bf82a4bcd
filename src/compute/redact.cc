#include "compute/redact.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <openssl/evp.h>
#include <pcre2.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <unordered_map>

#include "compute/step_decl.h"
#include "compute/timefmt.h"

namespace fieldstack::compute {
namespace {

inline bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }
inline bool IsAlpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
inline bool IsAlnum(unsigned char c) { return IsDigit(c) || IsAlpha(c); }
inline bool IsHex(unsigned char c) {
  return IsDigit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}
inline unsigned char At(std::string_view s, size_t i) { return static_cast<unsigned char>(s[i]); }

// ---- email -------------------------------------------------------------------------------

bool IsLocalChar(unsigned char c) {
  if (IsAlnum(c) || c >= 0x80) return true;
  switch (c) {
    case '.':
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '/':
    case '=':
    case '?':
    case '^':
    case '_':
    case '`':
    case '{':
    case '|':
    case '}':
    case '~':
    case '-':
      return true;
    default:
      return false;
  }
}

bool IsDomainChar(unsigned char c, bool non_ascii) {
  return IsAlnum(c) || c == '-' || c == '.' || (non_ascii && c >= 0x80);
}

// The end of a valid domain that starts at `b` (the byte after '@'), or `b` when there is none.
// With `non_ascii`, labels may hold UTF-8 (an internationalized domain) but the final label is
// still 2+ ASCII letters.
size_t DomainEnd(std::string_view s, size_t b, bool non_ascii) {
  size_t e = b;
  while (e < s.size() && IsDomainChar(At(s, e), non_ascii)) ++e;
  // An empty label ends the domain.
  for (size_t i = b; i + 1 < e; ++i) {
    if (s[i] == '.' && s[i + 1] == '.') {
      e = i;
      break;
    }
  }
  for (;;) {
    while (e > b && (s[e - 1] == '.' || s[e - 1] == '-' || At(s, e - 1) >= 0x80)) --e;
    if (e == b || s[b] == '.') return b;
    size_t dot = s.rfind('.', e - 1);
    if (dot == std::string_view::npos || dot < b) return b;
    bool tld_ok = e - dot - 1 >= 2;
    for (size_t i = dot + 1; i < e && tld_ok; ++i) tld_ok = IsAlpha(At(s, i));
    if (tld_ok) return e;
    e = dot;  // retry with the domain cut before its last label
  }
}

// ---- phone -------------------------------------------------------------------------------

struct Group {
  size_t begin;  // includes '(' of a parenthesized group
  size_t end;    // includes ')'
  int digits;
  char sep_before;  // ' ', '.', '-', or 0 (first group, or right after a ')' group)
  bool paren;
};

size_t DigitsAt(std::string_view s, size_t p) {
  size_t e = p;
  while (e < s.size() && IsDigit(At(s, e))) ++e;
  return e - p;
}

// Parses one group at p (digits, or '(' digits ')'); false when there is none.
bool ParseGroup(std::string_view s, size_t p, char sep, Group* g) {
  if (p < s.size() && s[p] == '(') {
    size_t n = DigitsAt(s, p + 1);
    if (n == 0 || p + 1 + n >= s.size() || s[p + 1 + n] != ')') return false;
    *g = {p, p + n + 2, static_cast<int>(n), sep, true};
    return true;
  }
  size_t n = DigitsAt(s, p);
  if (n == 0) return false;
  *g = {p, p + n, static_cast<int>(n), sep, false};
  return true;
}

int TwoDigits(std::string_view s, const Group& g) {
  return (s[g.begin] - '0') * 10 + (s[g.begin + 1] - '0');
}

// Groups k, k+1, k+2 read as a date: 4-2-2 or 2-2-4 with the same '-' or '.' separator.
bool IsDateAt(std::string_view s, const std::vector<Group>& g, size_t k) {
  if (k + 2 >= g.size()) return false;
  const Group& a = g[k];
  const Group& b = g[k + 1];
  const Group& c = g[k + 2];
  if (a.paren || b.paren || c.paren) return false;
  if (b.sep_before != c.sep_before || (b.sep_before != '-' && b.sep_before != '.')) return false;
  if (a.digits == 4 && b.digits == 2 && c.digits == 2) {
    int m = TwoDigits(s, b), d = TwoDigits(s, c);
    return m >= 1 && m <= 12 && d >= 1 && d <= 31;
  }
  if (a.digits == 2 && b.digits == 2 && c.digits == 4) {
    int x = TwoDigits(s, a), y = TwoDigits(s, b);
    return x >= 1 && y >= 1 && x <= 31 && y <= 31 && (x <= 12 || y <= 12);
  }
  return false;
}

// Whether groups [i, j) (with `plus` when the run's '+' precedes group i) form a phone.
bool PhoneCandidate(std::string_view s, const std::vector<Group>& g, size_t i, size_t j,
                    bool plus) {
  int digits = 0;
  bool paren = false;
  for (size_t k = i; k < j; ++k) {
    digits += g[k].digits;
    paren = paren || g[k].paren;
  }
  bool bare = j - i == 1 && !paren && !plus;
  if (digits > 15 || digits < (bare ? 10 : 7)) return false;
  if (bare && digits == 10 && s[g[i].begin] == '1') return false;  // epoch seconds
  if (plus || paren) return true;
  if (j - i == 2 && g[i + 1].sep_before == '.') return false;  // a decimal
  // '.' mixed with other separators reads as numbers in prose ("2.3 3.14159").
  bool dot = false, other = false;
  for (size_t k = i + 1; k < j; ++k) {
    dot = dot || g[k].sep_before == '.';
    other = other || (g[k].sep_before != '.' && g[k].sep_before != 0);
  }
  if (dot && other) return false;
  if (j - i == 4) {
    bool ip = true;
    for (size_t k = i; k < j; ++k) {
      ip = ip && g[k].digits <= 3 && (k == i || g[k].sep_before == '.');
    }
    if (ip) return false;
  }
  return true;
}

void EmitPhone(const std::vector<Group>& g, size_t i, size_t j, size_t plus_at, bool plus,
               std::vector<TextSpan>* out) {
  out->push_back({plus ? plus_at : g[i].begin, g[j - 1].end});
}

// Phones among groups [i, j) of one run, none of them part of a date.
void PhonesInSegment(std::string_view s, const std::vector<Group>& g, size_t i, size_t j,
                     size_t plus_at, bool plus, std::vector<TextSpan>* out) {
  if (i >= j) return;
  int digits = 0;
  bool special = plus;
  char sep = 0;
  bool mixed = false;
  for (size_t k = i; k < j; ++k) {
    digits += g[k].digits;
    special = special || g[k].paren;
    if (k > i && g[k].sep_before != 0) {
      if (sep != 0 && sep != g[k].sep_before) mixed = true;
      sep = g[k].sep_before;
    }
  }
  if (digits <= 15) {
    if (PhoneCandidate(s, g, i, j, plus)) EmitPhone(g, i, j, plus_at, plus, out);
    return;
  }
  // Too long for one phone: split at spaces when it looks like several phones.
  std::vector<std::pair<size_t, size_t>> parts;  // space-separated parts [a, b)
  size_t a = i;
  for (size_t k = i + 1; k <= j; ++k) {
    if (k == j || g[k].sep_before == ' ') {
      parts.emplace_back(a, k);
      a = k;
    }
  }
  bool all_long = true;
  for (auto [pa, pb] : parts) {
    int d = 0;
    for (size_t k = pa; k < pb; ++k) d += g[k].digits;
    all_long = all_long && d >= 7;
  }
  if (!(special || mixed || all_long)) return;
  // Greedy: whole parts while the candidate stays within 15 digits.
  size_t p = 0;
  while (p < parts.size()) {
    size_t q = p;
    int d = 0;
    while (q < parts.size()) {
      int pd = 0;
      for (size_t k = parts[q].first; k < parts[q].second; ++k) pd += g[k].digits;
      if (d + pd > 15 && q > p) break;
      d += pd;
      ++q;
    }
    bool with_plus = plus && p == 0;
    if (PhoneCandidate(s, g, parts[p].first, parts[q - 1].second, with_plus)) {
      EmitPhone(g, parts[p].first, parts[q - 1].second, plus_at, with_plus, out);
    }
    p = q;
  }
}

// ---- IP ----------------------------------------------------------------------------------

// An IPv4 address exactly spanning [b, e).
bool IsIpv4(std::string_view s, size_t b, size_t e) {
  int octets = 0;
  size_t p = b;
  while (p < e) {
    size_t n = 0;
    int v = 0;
    while (p + n < e && IsDigit(At(s, p + n)) && n < 4) v = v * 10 + (s[p + n++] - '0');
    if (n == 0 || n > 3 || v > 255) return false;
    p += n;
    ++octets;
    if (p < e) {
      if (s[p] != '.') return false;
      ++p;
      if (p == e) return false;
    }
  }
  return octets == 4;
}

// An IPv6 address exactly spanning [b, e).
bool IsIpv6(std::string_view s, size_t b, size_t e) {
  std::string_view t = s.substr(b, e - b);
  size_t colons = static_cast<size_t>(std::count(t.begin(), t.end(), ':'));
  if (colons < 2 || colons > 7) return false;
  size_t dc = t.find("::");
  bool compressed = dc != std::string_view::npos;
  if (compressed && t.find("::", dc + 1) != std::string_view::npos) return false;
  if (t.find(":::") != std::string_view::npos) return false;
  if (t.front() == ':' && !(compressed && dc == 0)) return false;
  if (t.back() == ':' && !(compressed && dc == t.size() - 2)) return false;
  int groups = 0;
  size_t p = 0;
  while (p < t.size()) {
    size_t q = t.find(':', p);
    if (q == std::string_view::npos) q = t.size();
    std::string_view grp = t.substr(p, q - p);
    if (!grp.empty()) {
      if (grp.find('.') != std::string_view::npos) {
        if (q != t.size() || !IsIpv4(t, p, q)) return false;
        groups += 2;
      } else {
        if (grp.size() > 4) return false;
        for (char c : grp) {
          if (!IsHex(static_cast<unsigned char>(c))) return false;
        }
        ++groups;
      }
    }
    p = q + 1;
  }
  return compressed ? groups <= 7 : groups == 8;
}

// ---- the keyed hash ----------------------------------------------------------------------

// HMAC-SHA256 with the key's inner and outer states computed once.
class KeyedTokens {
 public:
  explicit KeyedTokens(std::string_view key) {
    md_ = EVP_sha256();
    unsigned char k[64] = {0};
    if (key.size() > 64) {
      unsigned int n = 0;
      EVP_Digest(key.data(), key.size(), k, &n, md_, nullptr);
    } else {
      std::memcpy(k, key.data(), key.size());
    }
    unsigned char pad[64];
    inner_ = EVP_MD_CTX_new();
    outer_ = EVP_MD_CTX_new();
    work_ = EVP_MD_CTX_new();
    for (int i = 0; i < 64; ++i) pad[i] = k[i] ^ 0x36;
    EVP_DigestInit_ex(inner_, md_, nullptr);
    EVP_DigestUpdate(inner_, pad, 64);
    for (int i = 0; i < 64; ++i) pad[i] = k[i] ^ 0x5c;
    EVP_DigestInit_ex(outer_, md_, nullptr);
    EVP_DigestUpdate(outer_, pad, 64);
  }
  ~KeyedTokens() {
    EVP_MD_CTX_free(inner_);
    EVP_MD_CTX_free(outer_);
    EVP_MD_CTX_free(work_);
  }
  KeyedTokens(const KeyedTokens&) = delete;
  KeyedTokens& operator=(const KeyedTokens&) = delete;

  // Appends "h:" + the first 16 hex digits of HMAC-SHA256(key, msg).
  void Append(std::string_view msg, std::string* out) {
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD_CTX_copy_ex(work_, inner_);
    EVP_DigestUpdate(work_, msg.data(), msg.size());
    EVP_DigestFinal_ex(work_, h, &n);
    EVP_MD_CTX_copy_ex(work_, outer_);
    EVP_DigestUpdate(work_, h, n);
    EVP_DigestFinal_ex(work_, h, &n);
    static constexpr char kHex[] = "0123456789abcdef";
    out->append("h:");
    for (int i = 0; i < 8; ++i) {
      out->push_back(kHex[h[i] >> 4]);
      out->push_back(kHex[h[i] & 15]);
    }
  }

 private:
  const EVP_MD* md_;
  EVP_MD_CTX* inner_;
  EVP_MD_CTX* outer_;
  EVP_MD_CTX* work_;
};

constexpr int64_t kNsPerS = 1'000'000'000;

// ---- the step ----------------------------------------------------------------------------

enum class Action { kMask, kHash, kDrop, kGeneralize };
enum class Generalize { kRound, kBucket, kTruncate };
enum class TimeUnit { kYear, kMonth, kDay, kHour, kMinute };

struct ColumnRule {
  std::string column;
  std::string path;  // "redact.columns[i]", for errors
  Action action = Action::kMask;
  Generalize how = Generalize::kRound;
  int digits = 0;
  double width = 0;
  TimeUnit unit = TimeUnit::kDay;
};

enum Detector : uint8_t { kCard = 0, kPhone, kEmail, kIp, kFirstPattern };

struct Pattern {
  std::string name;
  std::string label;  // "[name]"
  pcre2_code* code = nullptr;
};

constexpr uint32_t kMatchLimit = 100000;
constexpr uint32_t kDepthLimit = 10000;

class RedactStep final : public Step {
 public:
  explicit RedactStep(const StepContext& ctx) : tokens_(ctx.hash_key) {}
  ~RedactStep() override {
    for (Pattern& p : patterns_) pcre2_code_free(p.code);
    if (match_data_ != nullptr) pcre2_match_data_free(match_data_);
    if (match_ctx_ != nullptr) pcre2_match_context_free(match_ctx_);
  }

  Status Init(const nlohmann::json& j, bool have_key);
  Status Push(Record& rec, Emitter& out) override;

 private:
  enum FieldKind : uint8_t { kScan, kSkip, kRule };
  struct Plan {
    std::shared_ptr<const Schema> in;
    std::shared_ptr<const Schema> out;  // == in when no field is dropped
    std::vector<FieldKind> kind;
    std::vector<int> rule;  // index into rules_, per input field (-1: none)
    std::vector<int> keep;  // input indices kept, in order (only when dropping)
  };

  const Plan& PlanFor(const std::shared_ptr<const Schema>& schema);
  Status ApplyRule(const ColumnRule& r, Value& v);
  // Scans `v`; true when something matched (and, unless dropping, was replaced).
  bool ScanValue(Value& v);
  void AddSpans(uint8_t detector);

  bool use_[4] = {true, true, true, true};
  Action action_ = Action::kMask;
  std::vector<ColumnRule> rules_;
  std::vector<std::string> skip_;
  std::vector<Pattern> patterns_;
  pcre2_match_data* match_data_ = nullptr;
  pcre2_match_context* match_ctx_ = nullptr;
  KeyedTokens tokens_;
  bool have_key_ = false;

  std::unordered_map<const Schema*, Plan> plans_;
  const Plan* last_plan_ = nullptr;
  struct Hit {
    size_t begin, end;
    uint8_t detector;
  };
  std::vector<Hit> hits_;
  std::vector<TextSpan> found_;
  std::string number_text_;
  std::string rebuilt_;
};

Status RedactStep::Init(const nlohmann::json& j, bool have_key) {
  using namespace decl;
  have_key_ = have_key;
  FS_RETURN_IF_ERROR(
      CheckObject(j, "redact", {"type", "detectors", "patterns", "action", "columns", "skip"}));
  if (const auto* d = Find(j, "detectors")) {
    FS_ASSIGN_OR_RETURN(auto names, StringList(*d, "redact.detectors", true));
    for (bool& u : use_) u = false;
    for (size_t i = 0; i < names.size(); ++i) {
      static constexpr std::string_view kNames[] = {"card", "phone", "email", "ip"};
      auto it = std::find(std::begin(kNames), std::end(kNames), names[i]);
      if (it == std::end(kNames)) {
        return FieldError(Index("redact.detectors", i),
                          "unknown detector '" + names[i] + "' (known: email, phone, ip, card)");
      }
      use_[it - std::begin(kNames)] = true;
    }
  }
  auto parse_action = [](const nlohmann::json& v, const std::string& path,
                         bool column) -> Result<Action> {
    if (!v.is_string())
      return FieldError(path, std::string("must be a string, not ") + v.type_name());
    const std::string& a = v.get_ref<const std::string&>();
    if (a == "mask") return Action::kMask;
    if (a == "hash") return Action::kHash;
    if (a == "drop") return Action::kDrop;
    if (column && a == "generalize") return Action::kGeneralize;
    return FieldError(path, "unknown action '" + a + "' (known: mask, hash, drop" +
                                (column ? ", generalize)" : ")"));
  };
  bool uses_hash = false;
  if (const auto* a = Find(j, "action")) {
    FS_ASSIGN_OR_RETURN(action_, parse_action(*a, "redact.action", false));
    if (action_ == Action::kHash) uses_hash = true;
  }
  if (const auto* p = Find(j, "patterns")) {
    if (!p->is_array()) return FieldError("redact.patterns", "must be a list of objects");
    for (size_t i = 0; i < p->size(); ++i) {
      std::string path = Index("redact.patterns", i);
      const auto& pj = (*p)[i];
      FS_RETURN_IF_ERROR(CheckObject(pj, path, {"name", "regex"}));
      const auto* name = Find(pj, "name");
      const auto* regex = Find(pj, "regex");
      if (name == nullptr) return FieldError(Join(path, "name"), "required");
      if (regex == nullptr) return FieldError(Join(path, "regex"), "required");
      Pattern pat;
      FS_ASSIGN_OR_RETURN(pat.name, NonEmptyString(*name, Join(path, "name")));
      for (char c : pat.name) {
        if (!IsAlnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') {
          return FieldError(Join(path, "name"), "may hold only letters, digits, '_' and '-'");
        }
      }
      FS_ASSIGN_OR_RETURN(std::string re, NonEmptyString(*regex, Join(path, "regex")));
      int err = 0;
      PCRE2_SIZE off = 0;
      pat.code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(re.data()), re.size(), PCRE2_UTF, &err,
                               &off, nullptr);
      if (pat.code == nullptr) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return FieldError(Join(path, "regex"), std::string(reinterpret_cast<char*>(msg)) +
                                                   " at offset " + std::to_string(off));
      }
      pcre2_jit_compile(pat.code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter
      pat.label = "[" + pat.name + "]";
      patterns_.push_back(std::move(pat));
    }
    if (!patterns_.empty()) {
      match_data_ = pcre2_match_data_create(4, nullptr);
      match_ctx_ = pcre2_match_context_create(nullptr);
      pcre2_set_match_limit(match_ctx_, kMatchLimit);
      pcre2_set_depth_limit(match_ctx_, kDepthLimit);
    }
  }
  if (const auto* s = Find(j, "skip")) {
    FS_ASSIGN_OR_RETURN(skip_, StringList(*s, "redact.skip", true));
  }
  if (const auto* c = Find(j, "columns")) {
    if (!c->is_array()) return FieldError("redact.columns", "must be a list of objects");
    for (size_t i = 0; i < c->size(); ++i) {
      ColumnRule r;
      r.path = Index("redact.columns", i);
      const auto& cj = (*c)[i];
      FS_RETURN_IF_ERROR(
          CheckObject(cj, r.path, {"column", "action", "round", "bucket", "truncate"}));
      const auto* col = Find(cj, "column");
      if (col == nullptr) return FieldError(Join(r.path, "column"), "required");
      FS_ASSIGN_OR_RETURN(r.column, NonEmptyString(*col, Join(r.path, "column")));
      const auto* act = Find(cj, "action");
      if (act == nullptr) return FieldError(Join(r.path, "action"), "required");
      FS_ASSIGN_OR_RETURN(r.action, parse_action(*act, Join(r.path, "action"), true));
      if (r.action == Action::kHash) uses_hash = true;
      const auto* round = Find(cj, "round");
      const auto* bucket = Find(cj, "bucket");
      const auto* trunc = Find(cj, "truncate");
      int n = (round != nullptr) + (bucket != nullptr) + (trunc != nullptr);
      if (r.action != Action::kGeneralize) {
        if (n != 0) {
          return FieldError(r.path, "round, bucket and truncate go with action \"generalize\"");
        }
      } else if (n != 1) {
        return FieldError(r.path, "generalize needs exactly one of round, bucket, truncate");
      } else if (round != nullptr) {
        r.how = Generalize::kRound;
        FS_ASSIGN_OR_RETURN(int64_t d, Integer(*round, Join(r.path, "round")));
        if (d < -15 || d > 15) return FieldError(Join(r.path, "round"), "must be in -15..15");
        r.digits = static_cast<int>(d);
      } else if (bucket != nullptr) {
        r.how = Generalize::kBucket;
        FS_ASSIGN_OR_RETURN(r.width, Number(*bucket, Join(r.path, "bucket")));
        if (r.width <= 0) return FieldError(Join(r.path, "bucket"), "must be > 0");
      } else {
        r.how = Generalize::kTruncate;
        FS_ASSIGN_OR_RETURN(std::string u, String(*trunc, Join(r.path, "truncate")));
        if (u == "year") {
          r.unit = TimeUnit::kYear;
        } else if (u == "month") {
          r.unit = TimeUnit::kMonth;
        } else if (u == "day") {
          r.unit = TimeUnit::kDay;
        } else if (u == "hour") {
          r.unit = TimeUnit::kHour;
        } else if (u == "minute") {
          r.unit = TimeUnit::kMinute;
        } else {
          return FieldError(Join(r.path, "truncate"),
                            "unknown unit '" + u + "' (known: year, month, day, hour, minute)");
        }
      }
      for (const ColumnRule& other : rules_) {
        if (other.column == r.column) {
          return FieldError(Join(r.path, "column"), "'" + r.column + "' has a rule already");
        }
      }
      rules_.push_back(std::move(r));
    }
  }
  if (uses_hash && !have_key_) {
    return FieldError("redact", "the hash action needs a hash key, and none is configured");
  }
  return Status::Ok();
}

const RedactStep::Plan& RedactStep::PlanFor(const std::shared_ptr<const Schema>& schema) {
  if (last_plan_ != nullptr && last_plan_->in.get() == schema.get()) return *last_plan_;
  auto it = plans_.find(schema.get());
  if (it == plans_.end()) {
    if (plans_.size() >= 256) plans_.clear();  // schemas that vary per record (JSON lines)
    Plan p;
    p.in = schema;
    size_t n = schema->size();
    p.kind.assign(n, kScan);
    p.rule.assign(n, -1);
    bool drops = false;
    for (const std::string& s : skip_) {
      int i = schema->Find(s);
      if (i >= 0) p.kind[i] = kSkip;
    }
    for (size_t r = 0; r < rules_.size(); ++r) {
      int i = schema->Find(rules_[r].column);
      if (i < 0) continue;
      p.kind[i] = kRule;
      p.rule[i] = static_cast<int>(r);
      drops = drops || rules_[r].action == Action::kDrop;
    }
    p.out = schema;
    if (drops) {
      std::vector<std::string> names;
      for (size_t i = 0; i < n; ++i) {
        if (p.kind[i] == kRule && rules_[p.rule[i]].action == Action::kDrop) continue;
        p.keep.push_back(static_cast<int>(i));
        names.push_back(schema->names()[i]);
      }
      p.out = std::make_shared<const Schema>(std::move(names));
    }
    it = plans_.emplace(schema.get(), std::move(p)).first;
  }
  last_plan_ = &it->second;
  return it->second;
}

Status RedactStep::ApplyRule(const ColumnRule& r, Value& v) {
  if (v.is_null()) return Status::Ok();
  switch (r.action) {
    case Action::kDrop:
      return Status::Ok();  // the field goes with the schema change
    case Action::kMask:
      v.SetString("[redacted]");
      return Status::Ok();
    case Action::kHash: {
      rebuilt_.clear();
      tokens_.Append(FormatValue(v), &rebuilt_);
      v.SetString(rebuilt_);
      return Status::Ok();
    }
    case Action::kGeneralize:
      break;
  }
  // The error messages never quote the value: it is the personal data being removed.
  if (r.how == Generalize::kTruncate) {
    Result<int64_t> t = ParseTimestampNs(v);
    if (!t.ok()) return decl::FieldError(r.path, "column '" + r.column + "' is not a time");
    int64_t ns = *t;
    int64_t day = FloorDiv(ns, 86400 * kNsPerS);
    switch (r.unit) {
      case TimeUnit::kYear:
      case TimeUnit::kMonth: {
        int64_t y;
        unsigned m, d;
        CivilFromDays(day, &y, &m, &d);
        ns = DaysFromCivil(y, r.unit == TimeUnit::kYear ? 1 : m, 1) * 86400 * kNsPerS;
        break;
      }
      case TimeUnit::kDay:
        ns = day * 86400 * kNsPerS;
        break;
      case TimeUnit::kHour:
        ns = FloorDiv(ns, 3600 * kNsPerS) * 3600 * kNsPerS;
        break;
      case TimeUnit::kMinute:
        ns = FloorDiv(ns, 60 * kNsPerS) * 60 * kNsPerS;
        break;
    }
    v.SetString(FormatTimestamp(ns));
    return Status::Ok();
  }
  double x;
  bool is_int = v.type() == Value::Type::kInt;
  if (v.is_number()) {
    x = v.as_double();
  } else if (v.type() == Value::Type::kString) {
    const std::string& s = v.text();
    auto res = std::from_chars(s.data(), s.data() + s.size(), x);
    if (res.ec != std::errc() || res.ptr != s.data() + s.size() || !std::isfinite(x)) {
      return decl::FieldError(r.path, "column '" + r.column + "' is not a number");
    }
  } else {
    return decl::FieldError(r.path, "column '" + r.column + "' is not a number");
  }
  if (r.how == Generalize::kRound) {
    if (is_int && r.digits >= 0) return Status::Ok();
    double scale = std::pow(10.0, r.digits);
    double y = std::round(x * scale) / scale;
    if (is_int || r.digits <= 0) {
      if (std::fabs(y) < 9e18) {
        v.SetInt(static_cast<int64_t>(y));
        return Status::Ok();
      }
    }
    v.SetFloat(y);
    return Status::Ok();
  }
  double y = std::floor(x / r.width) * r.width;
  if (is_int && r.width == std::floor(r.width) && std::fabs(y) < 9e18) {
    v.SetInt(static_cast<int64_t>(y));
  } else {
    v.SetFloat(y);
  }
  return Status::Ok();
}

void RedactStep::AddSpans(uint8_t detector) {
  size_t higher = hits_.size();
  for (const TextSpan& s : found_) {
    bool overlaps = false;
    for (size_t k = 0; k < higher && !overlaps; ++k) {
      overlaps = s.begin < hits_[k].end && hits_[k].begin < s.end;
    }
    if (!overlaps) hits_.push_back({s.begin, s.end, detector});
  }
  found_.clear();
}

bool RedactStep::ScanValue(Value& v) {
  const std::string* textp;
  switch (v.type()) {
    case Value::Type::kNull:
      return false;
    case Value::Type::kString:
      textp = &v.text();
      break;
    case Value::Type::kBool:
      if (v.text().empty()) return false;
      textp = &v.text();
      break;
    default:
      if (v.text().empty()) {
        number_text_.clear();
        AppendValue(v, &number_text_);
        textp = &number_text_;
      } else {
        textp = &v.text();
      }
  }
  std::string_view text = *textp;
  // Prescan: one pass deciding which detectors can match.
  size_t digits = 0, ats = 0, colons = 0, dots = 0;
  for (char ch : text) {
    unsigned char c = static_cast<unsigned char>(ch);
    digits += static_cast<unsigned>(c - '0') < 10;
    ats += c == '@';
    colons += c == ':';
    dots += c == '.';
  }
  hits_.clear();
  found_.clear();
  if (use_[kCard] && digits >= 13) {
    FindCards(text, &found_);
    AddSpans(kCard);
  }
  if (use_[kPhone] && digits >= 7) {
    FindPhones(text, &found_);
    AddSpans(kPhone);
  }
  if (use_[kEmail] && ats > 0) {
    FindEmails(text, &found_);
    AddSpans(kEmail);
  }
  if (use_[kIp] && (colons >= 2 || (dots >= 3 && digits >= 4))) {
    FindIps(text, &found_);
    AddSpans(kIp);
  }
  for (size_t p = 0; p < patterns_.size(); ++p) {
    PCRE2_SIZE start = 0;
    while (start <= text.size()) {
      int rc = pcre2_match(patterns_[p].code, reinterpret_cast<PCRE2_SPTR>(text.data()),
                           text.size(), start, 0, match_data_, match_ctx_);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {  // a limit, or bad UTF-8: fail closed
        found_.clear();
        hits_.clear();
        found_.push_back({0, text.size()});
        break;
      }
      PCRE2_SIZE* ov = pcre2_get_ovector_pointer(match_data_);
      if (ov[1] > ov[0]) found_.push_back({ov[0], ov[1]});
      start = ov[1] > start ? ov[1] : start + 1;
    }
    AddSpans(static_cast<uint8_t>(kFirstPattern + p));
  }
  if (hits_.empty()) return false;
  if (action_ == Action::kDrop) return true;
  std::sort(hits_.begin(), hits_.end(),
            [](const Hit& a, const Hit& b) { return a.begin < b.begin; });
  rebuilt_.clear();
  size_t pos = 0;
  for (const Hit& h : hits_) {
    rebuilt_.append(text.substr(pos, h.begin - pos));
    if (action_ == Action::kHash) {
      tokens_.Append(text.substr(h.begin, h.end - h.begin), &rebuilt_);
    } else {
      static constexpr std::string_view kLabels[] = {"[card]", "[phone]", "[email]", "[ip]"};
      rebuilt_.append(h.detector < kFirstPattern ? kLabels[h.detector]
                                                 : patterns_[h.detector - kFirstPattern].label);
    }
    pos = h.end;
  }
  rebuilt_.append(text.substr(pos));
  v.SetString(rebuilt_);
  return true;
}

Status RedactStep::Push(Record& rec, Emitter& out) {
  const Plan& plan = PlanFor(rec.schema);
  // The plan stays valid: PlanFor is not called again below.
  for (size_t i = 0; i < plan.kind.size(); ++i) {
    Value& v = rec.values[i];
    switch (plan.kind[i]) {
      case kSkip:
        break;
      case kRule:
        FS_RETURN_IF_ERROR(ApplyRule(rules_[plan.rule[i]], v));
        break;
      case kScan:
        if (ScanValue(v) && action_ == Action::kDrop) return Status::Ok();
        break;
    }
  }
  if (plan.out.get() != plan.in.get()) {
    for (size_t k = 0; k < plan.keep.size(); ++k) {
      size_t from = static_cast<size_t>(plan.keep[k]);
      if (from != k) std::swap(rec.values[k], rec.values[from]);
    }
    rec.values.resize(plan.keep.size());
    rec.schema = plan.out;
  }
  return out.Emit(rec);
}

}  // namespace

// ---- scanners ----------------------------------------------------------------------------

void FindEmails(std::string_view s, std::vector<TextSpan>* out) {
  size_t pos = 0;
  while (pos < s.size()) {
    const void* p = std::memchr(s.data() + pos, '@', s.size() - pos);
    if (p == nullptr) return;
    size_t at = static_cast<size_t>(static_cast<const char*>(p) - s.data());
    size_t l = at;
    while (l > pos && IsLocalChar(At(s, l - 1))) --l;
    while (l < at && (s[l] == '.' || s[l] == '\'')) ++l;
    size_t e = at + 1;
    if (l < at) {
      e = DomainEnd(s, at + 1, /*non_ascii=*/true);
      if (e == at + 1) e = DomainEnd(s, at + 1, /*non_ascii=*/false);
    }
    if (l < at && e > at + 1) {
      out->push_back({l, e});
      pos = e;
    } else {
      pos = at + 1;
    }
  }
}

void FindPhones(std::string_view s, std::vector<TextSpan>* out) {
  std::vector<Group> g;
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = At(s, i);
    if (IsAlpha(c)) {  // skip the alphanumeric token
      while (i < n && IsAlnum(At(s, i))) ++i;
      continue;
    }
    if (!IsDigit(c) && c != '+' && c != '(') {
      ++i;
      continue;
    }
    // "v1.2.3": digits after a '.' that follows a token continue that token.
    if (IsDigit(c) && i >= 2 && s[i - 1] == '.' && IsAlnum(At(s, i - 2))) {
      while (i < n && (IsAlnum(At(s, i)) || s[i] == '.')) ++i;
      continue;
    }
    // A run starts at i (the byte before it, if any, is not alphanumeric).
    size_t start = i;
    bool plus = c == '+';
    size_t p = plus ? i + 1 : i;
    g.clear();
    Group grp;
    if (!ParseGroup(s, p, 0, &grp)) {
      i = start + 1;
      continue;
    }
    g.push_back(grp);
    p = grp.end;
    for (;;) {
      if (p < n && (s[p] == ' ' || s[p] == '.' || s[p] == '-') &&
          ParseGroup(s, p + 1, s[p], &grp)) {
        g.push_back(grp);
        p = grp.end;
      } else if (p < n && (g.back().paren || s[p] == '(') && ParseGroup(s, p, 0, &grp)) {
        g.push_back(grp);
        p = grp.end;
      } else {
        break;
      }
    }
    i = p;
    if (p < n && IsAlnum(At(s, p))) continue;  // part of a longer token; the loop skips it
    // Dates split the run into segments.
    size_t seg = 0;
    bool seg_plus = plus;
    for (size_t k = 0; k < g.size();) {
      if (IsDateAt(s, g, k)) {
        PhonesInSegment(s, g, seg, k, start, seg_plus, out);
        k += 3;
        seg = k;
        seg_plus = false;
      } else {
        ++k;
      }
    }
    PhonesInSegment(s, g, seg, g.size(), start, seg_plus, out);
  }
}

bool LuhnValid(std::string_view text) {
  int sum = 0;
  bool dbl = false;
  int count = 0;
  for (size_t k = text.size(); k-- > 0;) {
    unsigned char c = At(text, k);
    if (!IsDigit(c)) continue;
    int d = c - '0';
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
    ++count;
  }
  return count > 0 && sum % 10 == 0;
}

void FindCards(std::string_view s, std::vector<TextSpan>* out) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = At(s, i);
    if (IsAlpha(c)) {
      while (i < n && IsAlnum(At(s, i))) ++i;
      continue;
    }
    if (!IsDigit(c)) {
      ++i;
      continue;
    }
    size_t start = i;
    int digits = 0;
    bool separated = false;
    size_t p = i;
    while (p < n) {
      if (IsDigit(At(s, p))) {
        ++digits;
        ++p;
      } else if ((s[p] == ' ' || s[p] == '-') && p + 1 < n && IsDigit(At(s, p + 1))) {
        separated = true;
        ++p;
      } else {
        break;
      }
    }
    i = p;
    if (p < n && IsAlnum(At(s, p))) continue;
    if (digits < 13 || digits > 19) continue;
    if (!separated && s[start] == '1' && (digits == 13 || digits == 16 || digits == 19)) continue;
    std::string_view run = s.substr(start, p - start);
    if (LuhnValid(run)) out->push_back({start, p});
  }
}

void FindIps(std::string_view s, std::vector<TextSpan>* out) {
  const size_t n = s.size();
  auto boundary = [&](size_t i) {
    if (i == 0) return true;
    unsigned char b = At(s, i - 1);
    return !IsAlnum(b) && b != ':' && b != '.';
  };
  size_t v6_begin = out->size();
  // IPv6: maximal runs of hex digits, ':' and '.' starting at a boundary.
  if (s.find(':') != std::string_view::npos) {
    size_t i = 0;
    while (i < n) {
      unsigned char c = At(s, i);
      if (!(IsHex(c) || c == ':') || !boundary(i)) {
        ++i;
        continue;
      }
      size_t e = i;
      while (e < n && (IsHex(At(s, e)) || s[e] == ':' || s[e] == '.')) ++e;
      size_t end = e;
      while (end > i && s[end - 1] == '.') --end;
      bool ok = !(e < n && IsAlnum(At(s, e))) && IsIpv6(s, i, end);
      if (ok) out->push_back({i, end});
      i = e;
      while (i < n && IsAlnum(At(s, i))) ++i;
    }
  }
  size_t v6_end = out->size();
  // IPv4.
  size_t i = 0;
  while (i < n) {
    unsigned char c = At(s, i);
    if (IsAlpha(c)) {
      while (i < n && IsAlnum(At(s, i))) ++i;
      continue;
    }
    if (!IsDigit(c) || !boundary(i)) {
      ++i;
      continue;
    }
    size_t e = i;
    while (e < n && (IsDigit(At(s, e)) || s[e] == '.')) ++e;
    size_t end = e;
    if (end > i && s[end - 1] == '.') --end;  // a sentence's full stop
    bool ok = !(e < n && IsAlnum(At(s, e))) && IsIpv4(s, i, end);
    if (ok) {
      bool inside_v6 = false;
      for (size_t k = v6_begin; k < v6_end; ++k) {
        inside_v6 = inside_v6 || (i < (*out)[k].end && (*out)[k].begin < end);
      }
      if (!inside_v6) out->push_back({i, end});
    }
    i = e;
  }
  std::sort(out->begin() + static_cast<std::ptrdiff_t>(v6_begin), out->end(),
            [](const TextSpan& a, const TextSpan& b) { return a.begin < b.begin; });
}

Result<std::unique_ptr<Step>> MakeRedactStep(const nlohmann::json& decl, const StepContext& ctx) {
  auto step = std::make_unique<RedactStep>(ctx);
  FS_RETURN_IF_ERROR(step->Init(decl, !ctx.hash_key.empty()));
  return std::unique_ptr<Step>(std::move(step));
}

}  // namespace fieldstack::compute
