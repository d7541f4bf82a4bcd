// JSON lines reader and writer, ParseJsonRecord and RecordToJson (io.h).
//
// The reader splits lines out of one 64 KiB buffer (grown only for a longer line) and parses
// each with a small hand-written JSON parser that writes straight into the reused Record:
// nested objects are flattened to "a.b" names, arrays are kept as their JSON text, strings are
// unescaped into the values' reused strings. The names of a line are compared with the
// previous line's schema as they are parsed; when they are the same (the common case) the
// record keeps pointing at that schema, so a file of uniform lines shares one Schema. A name
// that appears twice in one object (also "a.b" next to {"a":{"b":..}}) keeps its first
// position and its last value.
//
// The writer formats typed JSON by hand: numbers keep their original text when it is valid
// JSON number text, non-finite floats become null, strings are escaped with invalid UTF-8
// bytes replaced by U+FFFD.

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "compute/io.h"
#include "compute/text_buffer.h"

namespace fieldstack::compute {
namespace {

constexpr int kMaxDepth = 64;

bool IsWs(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// True when `s` is a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
bool IsJsonNumber(std::string_view s, bool* is_int = nullptr) {
  size_t i = 0, n = s.size();
  if (i < n && s[i] == '-') ++i;
  if (i == n) return false;
  if (s[i] == '0') {
    ++i;
  } else if (s[i] >= '1' && s[i] <= '9') {
    while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
  } else {
    return false;
  }
  bool integer = true;
  if (i < n && s[i] == '.') {
    integer = false;
    ++i;
    size_t d = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == d) return false;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    integer = false;
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    size_t d = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == d) return false;
  }
  if (is_int) *is_int = integer;
  return i == n;
}

// Parses one JSON object into a Record (see the file comment).
class JsonRecordParser {
 public:
  // `candidate`: the schema to keep when the names match. On success rec.schema is set.
  Status Parse(std::string_view text, Record& rec, const std::shared_ptr<const Schema>& candidate) {
    b_ = text.data();
    p_ = b_;
    e_ = b_ + text.size();
    rec_ = &rec;
    cand_ = candidate.get();
    matching_ = cand_ != nullptr;
    count_ = 0;
    prefix_.clear();
    SkipWs();
    Status s = p_ < e_ && *p_ == '{' ? ParseObject(0) : Error("not a JSON object");
    if (s.ok()) {
      SkipWs();
      if (p_ != e_) s = Error("unexpected text after the object");
    }
    if (!s.ok()) {
      // Leave the record consistent (values match the schema) for a caller that goes on.
      rec.values.resize(rec.schema ? rec.schema->size() : 0);
      return s;
    }
    if (matching_ && count_ == cand_->size()) {
      if (rec.schema != candidate) rec.schema = candidate;
      rec.values.resize(count_);
      return Status::Ok();
    }
    return NewSchema();
  }

 private:
  Status Error(std::string_view what) const {
    return InvalidArgumentError("bad JSON at column " + std::to_string(p_ - b_ + 1) + ": " +
                                std::string(what));
  }

  void SkipWs() {
    while (p_ < e_ && IsWs(*p_)) ++p_;
  }

  // The value slot for the field named prefix_ (which the caller has set).
  Value& Slot() {
    size_t i = count_++;
    if (names_.size() <= i) names_.emplace_back();
    names_[i].assign(prefix_);
    if (matching_ && (i >= cand_->size() || cand_->names()[i] != prefix_)) matching_ = false;
    if (rec_->values.size() <= i) rec_->values.resize(i + 1);
    return rec_->values[i];
  }

  Status ParseObject(int depth) {
    if (depth > kMaxDepth) return Error("nesting too deep");
    ++p_;  // '{'
    SkipWs();
    if (p_ < e_ && *p_ == '}') {
      ++p_;
      return Status::Ok();
    }
    const size_t base_len = prefix_.size();
    for (;;) {
      SkipWs();
      if (p_ == e_ || *p_ != '"') return Error("expected a field name");
      prefix_.resize(base_len);
      FS_RETURN_IF_ERROR(ParseString(&prefix_));
      SkipWs();
      if (p_ == e_ || *p_ != ':') return Error("expected ':'");
      ++p_;
      SkipWs();
      if (p_ == e_) return Error("expected a value");
      const char c = *p_;
      if (c == '{') {
        prefix_.push_back('.');
        FS_RETURN_IF_ERROR(ParseObject(depth + 1));
      } else if (c == '"') {
        Value& v = Slot();
        v.SetString({});
        FS_RETURN_IF_ERROR(ParseString(&v.mutable_text()));
      } else if (c == '[') {
        const char* start = p_;
        FS_RETURN_IF_ERROR(SkipValue(depth + 1));
        Slot().SetString(std::string_view(start, p_ - start));
      } else if (c == 't' || c == 'f' || c == 'n') {
        FS_RETURN_IF_ERROR(ParseLiteral());
      } else {
        FS_RETURN_IF_ERROR(ParseNumber());
      }
      SkipWs();
      if (p_ == e_) return Error("unterminated object");
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ == '}') {
        ++p_;
        prefix_.resize(base_len);
        return Status::Ok();
      }
      return Error("expected ',' or '}'");
    }
  }

  Status ParseLiteral() {
    auto rest = std::string_view(p_, e_ - p_);
    if (rest.starts_with("true")) {
      Slot().SetBool(true);
      p_ += 4;
    } else if (rest.starts_with("false")) {
      Slot().SetBool(false);
      p_ += 5;
    } else if (rest.starts_with("null")) {
      Slot().SetNull();
      p_ += 4;
    } else {
      return Error("invalid literal");
    }
    return Status::Ok();
  }

  Status ParseNumber() {
    const char* s = p_;
    while (p_ < e_ && (std::isdigit(static_cast<unsigned char>(*p_)) || *p_ == '-' || *p_ == '+' ||
                       *p_ == '.' || *p_ == 'e' || *p_ == 'E')) {
      ++p_;
    }
    std::string_view t(s, p_ - s);
    bool integer = false;
    if (t.empty() || !IsJsonNumber(t, &integer)) {
      p_ = s;
      return Error("invalid value");
    }
    Value& v = Slot();
    if (integer) {
      int64_t i;
      auto r = std::from_chars(t.data(), t.data() + t.size(), i);
      if (r.ec == std::errc()) {
        v.SetIntWithText(i, t);
        return Status::Ok();
      }
    }
    double d = 0;
    auto r = std::from_chars(t.data(), t.data() + t.size(), d);
    if (r.ec == std::errc::result_out_of_range) d = t[0] == '-' ? -HUGE_VAL : HUGE_VAL;
    v.SetFloatWithText(d, t);
    return Status::Ok();
  }

  Status ParseHex4(uint32_t* out) {
    if (e_ - p_ < 4) return Error("bad \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = p_[i];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
        v |= static_cast<uint32_t>((c | 0x20) - 'a' + 10);
      } else {
        return Error("bad \\u escape");
      }
    }
    p_ += 4;
    *out = v;
    return Status::Ok();
  }

  // Parses the string at p_ ('"') and appends its unescaped text to `out`.
  Status ParseString(std::string* out) {
    const char* start = p_;
    ++p_;
    for (;;) {
      const char* s = p_;
      while (p_ < e_ && *p_ != '"' && *p_ != '\\') ++p_;
      out->append(s, p_);
      if (p_ == e_) {
        p_ = start;
        return Error("unterminated string");
      }
      if (*p_ == '"') {
        ++p_;
        return Status::Ok();
      }
      ++p_;  // backslash
      if (p_ == e_) {
        p_ = start;
        return Error("unterminated string");
      }
      char c = *p_++;
      switch (c) {
        case '"':
        case '\\':
        case '/':
          out->push_back(c);
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          uint32_t cp;
          FS_RETURN_IF_ERROR(ParseHex4(&cp));
          if (cp >= 0xD800 && cp <= 0xDBFF && e_ - p_ >= 6 && p_[0] == '\\' && p_[1] == 'u') {
            const char* save = p_;
            p_ += 2;
            uint32_t lo;
            FS_RETURN_IF_ERROR(ParseHex4(&lo));
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              p_ = save;
            }
          }
          if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // a lone surrogate
          AppendUtf8(cp, out);
          break;
        }
        default:
          --p_;
          return Error("bad escape");
      }
    }
  }

  // Skips (and checks) any JSON value.
  Status SkipValue(int depth) {
    if (depth > kMaxDepth) return Error("nesting too deep");
    SkipWs();
    if (p_ == e_) return Error("expected a value");
    char c = *p_;
    if (c == '"') {
      skip_.clear();
      return ParseString(&skip_);
    }
    if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++p_;
      SkipWs();
      if (p_ < e_ && *p_ == close) {
        ++p_;
        return Status::Ok();
      }
      for (;;) {
        SkipWs();
        if (c == '{') {
          if (p_ == e_ || *p_ != '"') return Error("expected a field name");
          skip_.clear();
          FS_RETURN_IF_ERROR(ParseString(&skip_));
          SkipWs();
          if (p_ == e_ || *p_ != ':') return Error("expected ':'");
          ++p_;
        }
        FS_RETURN_IF_ERROR(SkipValue(depth + 1));
        SkipWs();
        if (p_ == e_) return Error(c == '{' ? "unterminated object" : "unterminated array");
        if (*p_ == ',') {
          ++p_;
          continue;
        }
        if (*p_ == close) {
          ++p_;
          return Status::Ok();
        }
        return Error(c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
      }
    }
    auto rest = std::string_view(p_, e_ - p_);
    for (std::string_view lit : {"true", "false", "null"}) {
      if (rest.starts_with(lit)) {
        p_ += lit.size();
        return Status::Ok();
      }
    }
    const char* s = p_;
    while (p_ < e_ && (std::isdigit(static_cast<unsigned char>(*p_)) || *p_ == '-' || *p_ == '+' ||
                       *p_ == '.' || *p_ == 'e' || *p_ == 'E')) {
      ++p_;
    }
    if (p_ == s || !IsJsonNumber(std::string_view(s, p_ - s))) {
      p_ = s;
      return Error("invalid value");
    }
    return Status::Ok();
  }

  // Makes the schema for names_[0, count_), folding repeated names.
  Status NewSchema() {
    std::vector<std::string> names(names_.begin(), names_.begin() + count_);
    std::unordered_map<std::string_view, size_t> first;
    bool dup = false;
    for (size_t i = 0; i < names.size(); ++i) {
      if (!first.emplace(names[i], i).second) dup = true;
    }
    if (dup) {
      std::vector<std::string> kept;
      std::vector<Value> values;
      std::unordered_map<std::string, size_t> pos;
      for (size_t i = 0; i < names.size(); ++i) {
        auto [it, inserted] = pos.emplace(names[i], kept.size());
        if (inserted) {
          kept.push_back(names[i]);
          values.push_back(std::move(rec_->values[i]));
        } else {
          values[it->second] = std::move(rec_->values[i]);
        }
      }
      names = std::move(kept);
      rec_->values = std::move(values);
    } else {
      rec_->values.resize(count_);
    }
    rec_->schema = std::make_shared<const Schema>(std::move(names));
    return Status::Ok();
  }

  const char* b_ = nullptr;
  const char* p_ = nullptr;
  const char* e_ = nullptr;
  Record* rec_ = nullptr;
  const Schema* cand_ = nullptr;
  bool matching_ = false;
  size_t count_ = 0;
  std::string prefix_;
  std::string skip_;
  std::vector<std::string> names_;
};

class JsonlReader final : public RecordReader {
 public:
  explicit JsonlReader(std::unique_ptr<ByteSource> in) : in_(std::move(in)) {}

  Result<bool> Next(Record& rec) override {
    for (;;) {
      const char* base = in_.data.data();
      const char* p = base + in_.pos;
      const char* e = base + in_.end;
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', e - p));
      if (nl == nullptr && !in_.eof) {
        FS_RETURN_IF_ERROR(in_.Fill());
        continue;
      }
      if (p == e && in_.eof) return false;
      const char* le = nl ? nl : e;
      in_.pos = (nl ? nl + 1 : e) - base;
      rec_line_ = ++line_;
      std::string_view text(p, le - p);
      size_t k = 0;
      while (k < text.size() && IsWs(text[k])) ++k;
      if (k == text.size()) continue;  // a blank line
      if (k == 0 && line_ == 1 && text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
      Status s = parser_.Parse(text, rec, schema_);
      if (!s.ok()) return s.WithContext("line " + std::to_string(rec_line_));
      schema_ = rec.schema;
      rec.seq = ++seq_;
      return true;
    }
  }

  uint64_t line() const override { return rec_line_; }

 private:
  InputBuffer in_;
  uint64_t line_ = 0;
  uint64_t rec_line_ = 0;
  uint64_t seq_ = 0;
  JsonRecordParser parser_;
  std::shared_ptr<const Schema> schema_;
};

constexpr auto kPlainJsonChar = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[c] = c != '"' && c != '\\';
  return t;
}();

// The length of the valid UTF-8 sequence at s[0] (s[0] >= 0x80), or 0 when it is invalid.
size_t Utf8SequenceLength(const unsigned char* s, size_t n) {
  unsigned char c = s[0];
  auto cont = [&](size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < n && s[i] >= lo && s[i] <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  const auto* u = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && kPlainJsonChar[u[j]]) ++j;
    out->append(s.data() + i, j - i);
    i = j;
    if (i == n) break;
    unsigned char c = u[i];
    if (c >= 0x80) {
      size_t len = Utf8SequenceLength(u + i, n - i);
      if (len == 0) {
        out->append("\xEF\xBF\xBD");
        ++i;
      } else {
        out->append(s.data() + i, len);
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default: {
        static const char kHex[] = "0123456789abcdef";
        char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out->append(esc, 6);
      }
    }
    ++i;
  }
  out->push_back('"');
}

void AppendJsonValue(const Value& v, std::string* out) {
  switch (v.type()) {
    case Value::Type::kNull:
      out->append("null");
      return;
    case Value::Type::kBool:
      out->append(v.as_bool() ? "true" : "false");
      return;
    case Value::Type::kString:
      AppendJsonString(v.text(), out);
      return;
    case Value::Type::kInt:
    case Value::Type::kFloat: {
      if (v.type() == Value::Type::kFloat && !std::isfinite(v.as_double())) {
        out->append("null");
        return;
      }
      if (!v.text().empty() && IsJsonNumber(v.text())) {
        out->append(v.text());
        return;
      }
      char buf[64];
      auto r = v.type() == Value::Type::kInt ? std::to_chars(buf, buf + sizeof buf, v.as_int())
                                             : std::to_chars(buf, buf + sizeof buf, v.as_double());
      out->append(buf, r.ptr);
      return;
    }
  }
}

void AppendJsonRecord(const Record& rec, std::string* out) {
  out->push_back('{');
  if (rec.schema) {
    const auto& names = rec.schema->names();
    for (size_t i = 0; i < names.size() && i < rec.values.size(); ++i) {
      if (i > 0) out->push_back(',');
      AppendJsonString(names[i], out);
      out->push_back(':');
      AppendJsonValue(rec.values[i], out);
    }
  }
  out->push_back('}');
}

class JsonlWriter final : public RecordWriter {
 public:
  explicit JsonlWriter(ByteSink* out) : out_(out) {}

  Status Write(const Record& rec) override {
    if (out_.finished) return FailedPreconditionError("jsonl: write after finish");
    AppendJsonRecord(rec, &out_.text);
    out_.text.push_back('\n');
    return out_.EndRecord();
  }

  Status Finish() override { return out_.Finish(); }

  uint64_t records() const override { return out_.records; }

 private:
  OutputBuffer out_;
};

}  // namespace

std::unique_ptr<RecordReader> MakeJsonlReader(std::unique_ptr<ByteSource> in) {
  return std::make_unique<JsonlReader>(std::move(in));
}

std::unique_ptr<RecordWriter> MakeJsonlWriter(ByteSink* out) {
  return std::make_unique<JsonlWriter>(out);
}

Status ParseJsonRecord(std::string_view json, Record& rec) {
  JsonRecordParser parser;
  std::shared_ptr<const Schema> candidate = rec.schema;
  return parser.Parse(json, rec, candidate);
}

std::string RecordToJson(const Record& rec) {
  std::string out;
  AppendJsonRecord(rec, &out);
  return out;
}

}  // namespace fieldstack::compute
