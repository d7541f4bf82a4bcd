// CSV reader and writer (io.h).
//
// The reader keeps one buffer (64 KiB, grown only for a single record longer than that) and
// parses one record at a time out of it. The common line (no quote character) is split with
// memchr on the line end and the delimiter; a line holding a quote goes through a small state
// machine that handles "" escapes and quoted CR/LF. When a record is not complete in the
// buffer the unread tail moves to the front, more bytes are read and the record is parsed
// again from its start. Field texts are views into the buffer (or into a scratch string for
// quoted fields with "" escapes) and go straight into the reused Record's values with the type
// inference of io.h; nothing is allocated per row once the values' strings have grown.
//
// The writer appends to one string and hands it to the sink every ~64 KiB.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <unordered_set>
#include <vector>

#include "compute/io.h"
#include "compute/text_buffer.h"

namespace fieldstack::compute {
namespace {

bool EqualsIgnoreCase(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((s[i] | 0x20) != lower[i]) return false;
  }
  return true;
}

// Sets `v` from one CSV field's text with io.h's type inference.
inline void InferInto(Value& v, std::string_view s) {
  if (s.empty()) {
    v.SetNull();
    return;
  }
  const char c = s[0];
  if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.') {
    const char* b = s.data();
    const char* e = b + s.size();
    if (c == '+') {
      if (s.size() < 2 || s[1] == '-' || s[1] == '+') {
        v.SetString(s);
        return;
      }
      ++b;
    }
    int64_t i;
    auto ri = std::from_chars(b, e, i);
    if (ri.ec == std::errc() && ri.ptr == e) {
      v.SetIntWithText(i, s);
      return;
    }
    double d;
    auto rd = std::from_chars(b, e, d);
    if (rd.ec == std::errc() && rd.ptr == e && std::isfinite(d)) {
      v.SetFloatWithText(d, s);
      return;
    }
  } else if ((s.size() == 4 || s.size() == 5) && ((c | 0x20) == 't' || (c | 0x20) == 'f')) {
    if (EqualsIgnoreCase(s, "true")) {
      v.SetBoolWithText(true, s);
      return;
    }
    if (EqualsIgnoreCase(s, "false")) {
      v.SetBoolWithText(false, s);
      return;
    }
  }
  v.SetString(s);
}

class CsvReader final : public RecordReader {
 public:
  CsvReader(std::unique_ptr<ByteSource> in, CsvOptions options)
      : in_(std::move(in)), opts_(options) {}

  Result<bool> Next(Record& rec) override {
    if (!header_done_) {
      FS_ASSIGN_OR_RETURN(bool got, ParseNext());
      if (!got) return false;
      FS_RETURN_IF_ERROR(MakeHeader());
    }
    FS_ASSIGN_OR_RETURN(bool got, ParseNext());
    if (!got) return false;
    const size_t n = schema_->size();
    if (fields_.size() > n) {
      return InvalidArgumentError("line " + std::to_string(rec_line_) + ": too many fields (" +
                                  std::to_string(fields_.size()) + ", the header has " +
                                  std::to_string(n) + ")");
    }
    if (rec.schema != schema_) rec.schema = schema_;
    rec.values.resize(n);
    for (size_t i = 0; i < fields_.size(); ++i) {
      std::string_view t = FieldText(fields_[i]);
      if (opts_.infer_types) {
        InferInto(rec.values[i], t);
      } else if (t.empty()) {
        rec.values[i].SetNull();
      } else {
        rec.values[i].SetString(t);
      }
    }
    for (size_t i = fields_.size(); i < n; ++i) rec.values[i].SetNull();
    rec.seq = ++seq_;
    return true;
  }

  uint64_t line() const override { return rec_line_; }

 private:
  struct FieldRef {
    size_t off;
    size_t len;
    bool in_scratch;
  };
  enum class Parse { kOk, kNeedMore, kBlank };

  std::string_view FieldText(const FieldRef& f) const {
    return f.in_scratch ? std::string_view(scratch_).substr(f.off, f.len)
                        : std::string_view(in_.data.data() + f.off, f.len);
  }

  Status MakeHeader() {
    header_done_ = true;
    std::vector<std::string> names;
    names.reserve(fields_.size());
    std::unordered_set<std::string_view> seen;
    for (size_t i = 0; i < fields_.size(); ++i) {
      std::string name(FieldText(fields_[i]));
      if (name.empty()) name = "column" + std::to_string(i + 1);
      names.push_back(std::move(name));
    }
    for (const std::string& n : names) {
      if (!seen.insert(n).second) {
        return InvalidArgumentError("line " + std::to_string(rec_line_) +
                                    ": duplicate column name '" + n + "' in the header");
      }
    }
    schema_ = std::make_shared<const Schema>(std::move(names));
    return Status::Ok();
  }

  // Parses the next non-blank record into fields_; false at the end of input.
  Result<bool> ParseNext() {
    for (;;) {
      if (in_.pos == in_.end) {
        if (in_.eof) return false;
        FS_RETURN_IF_ERROR(in_.Fill());
        continue;
      }
      if (first_ && !bom_checked_) {
        if (in_.end - in_.pos < 3 && !in_.eof) {
          FS_RETURN_IF_ERROR(in_.Fill());
          continue;
        }
        bom_checked_ = true;
        if (in_.end - in_.pos >= 3 &&
            std::memcmp(in_.data.data() + in_.pos, "\xEF\xBB\xBF", 3) == 0) {
          in_.pos += 3;
          continue;
        }
      }
      first_ = false;
      FS_ASSIGN_OR_RETURN(Parse p, ParseRecord());
      if (p == Parse::kOk) return true;
      if (p == Parse::kBlank) continue;
      FS_RETURN_IF_ERROR(in_.Fill());
    }
  }

  // Parses the record at in_.pos. kNeedMore when it may continue past the buffer's end.
  Result<Parse> ParseRecord() {
    const char* base = in_.data.data();
    const char* p = base + in_.pos;
    const char* e = base + in_.end;
    const char d = opts_.delimiter;
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', e - p));
    if (nl == nullptr && !in_.eof) return Parse::kNeedMore;
    const char* le = nl ? nl : e;
    if (std::memchr(p, '"', le - p) == nullptr) {
      // Fast path: one line, no quotes.
      const char* consumed = nl ? nl + 1 : e;
      const char* fe = le;
      if (fe > p && fe[-1] == '\r') --fe;
      rec_line_ = next_line_;
      ++next_line_;
      in_.pos = consumed - base;
      if (fe == p) return Parse::kBlank;
      fields_.clear();
      const char* f = p;
      for (;;) {
        const char* q = static_cast<const char*>(std::memchr(f, d, fe - f));
        if (q == nullptr) {
          fields_.push_back({static_cast<size_t>(f - base), static_cast<size_t>(fe - f), false});
          break;
        }
        fields_.push_back({static_cast<size_t>(f - base), static_cast<size_t>(q - f), false});
        f = q + 1;
      }
      return Parse::kOk;
    }
    return ParseQuoted();
  }

  // The general state machine for a record holding quotes.
  Result<Parse> ParseQuoted() {
    const char* base = in_.data.data();
    const char* p = base + in_.pos;
    const char* e = base + in_.end;
    const char d = opts_.delimiter;
    fields_.clear();
    scratch_.clear();
    uint64_t lines = 0;
    for (;;) {
      // At the start of a field.
      if (p < e && *p == '"') {
        ++p;
        const size_t scratch_start = scratch_.size();
        const char* seg = p;
        bool escaped = false;
        for (;;) {
          const char* q = static_cast<const char*>(std::memchr(p, '"', e - p));
          if (q == nullptr) {
            if (in_.eof) {
              return InvalidArgumentError("line " + std::to_string(next_line_) +
                                          ": unterminated quoted field " +
                                          std::to_string(fields_.size() + 1));
            }
            return Parse::kNeedMore;
          }
          if (q + 1 == e && !in_.eof) return Parse::kNeedMore;
          lines += static_cast<uint64_t>(std::count(p, q, '\n'));
          if (q + 1 < e && q[1] == '"') {
            escaped = true;
            scratch_.append(seg, q + 1);  // up to and including one quote
            p = q + 2;
            seg = p;
            continue;
          }
          // The closing quote.
          if (escaped) {
            scratch_.append(seg, q);
            fields_.push_back({scratch_start, scratch_.size() - scratch_start, true});
          } else {
            fields_.push_back(
                {static_cast<size_t>(seg - base), static_cast<size_t>(q - seg), false});
          }
          p = q + 1;
          break;
        }
        if (p == e) {
          if (!in_.eof) return Parse::kNeedMore;
          break;  // end of input ends the record
        }
        if (*p == d) {
          ++p;
          if (p == e && !in_.eof) return Parse::kNeedMore;
          if (p == e) {
            fields_.push_back({0, 0, true});
            break;
          }
          continue;
        }
        if (*p == '\n') {
          ++p;
          break;
        }
        if (*p == '\r') {
          if (p + 1 == e && !in_.eof) return Parse::kNeedMore;
          if (p + 1 == e || p[1] == '\n') {
            p += (p + 1 == e) ? 1 : 2;
            break;
          }
        }
        return InvalidArgumentError("line " + std::to_string(next_line_ + lines) +
                                    ": unexpected character after the closing quote of field " +
                                    std::to_string(fields_.size()));
      }
      // An unquoted field: up to the delimiter or the line end (quotes inside are literal).
      const char* f = p;
      while (p < e && *p != d && *p != '\n') ++p;
      if (p == e && !in_.eof) return Parse::kNeedMore;
      const char* fe = p;
      if (p == e || *p == '\n') {
        if (fe > f && fe[-1] == '\r') --fe;
        fields_.push_back({static_cast<size_t>(f - base), static_cast<size_t>(fe - f), false});
        if (p < e) ++p;
        break;
      }
      fields_.push_back({static_cast<size_t>(f - base), static_cast<size_t>(fe - f), false});
      ++p;  // the delimiter
      if (p == e && !in_.eof) return Parse::kNeedMore;
      if (p == e) {
        fields_.push_back({0, 0, true});
        break;
      }
    }
    rec_line_ = next_line_;
    next_line_ += lines + 1;
    in_.pos = p - base;
    return Parse::kOk;
  }

  InputBuffer in_;
  CsvOptions opts_;
  bool first_ = true;
  bool bom_checked_ = false;
  bool header_done_ = false;
  uint64_t next_line_ = 1;  // the line where the next record starts
  uint64_t rec_line_ = 0;
  uint64_t seq_ = 0;
  std::vector<FieldRef> fields_;
  std::string scratch_;
  std::shared_ptr<const Schema> schema_;
};

class CsvWriter final : public RecordWriter {
 public:
  CsvWriter(ByteSink* out, char delimiter) : out_(out), d_(delimiter) {}

  Status Write(const Record& rec) override {
    if (out_.finished) return FailedPreconditionError("csv: write after finish");
    if (!header_) {
      header_ = rec.schema;
      if (!header_) return InvalidArgumentError("csv: record without a schema");
      for (size_t i = 0; i < header_->size(); ++i) {
        if (i > 0) out_.text.push_back(d_);
        AppendString(header_->names()[i]);
      }
      out_.text.push_back('\n');
    }
    if (rec.schema == header_) {
      const size_t n = rec.values.size();
      for (size_t i = 0; i < n; ++i) {
        if (i > 0) out_.text.push_back(d_);
        AppendField(rec.values[i]);
      }
    } else {
      if (rec.schema != other_) FS_RETURN_IF_ERROR(MapSchema(rec.schema));
      for (size_t j = 0; j < map_.size(); ++j) {
        if (j > 0) out_.text.push_back(d_);
        if (map_[j] >= 0) AppendField(rec.values[static_cast<size_t>(map_[j])]);
      }
    }
    out_.text.push_back('\n');
    return out_.EndRecord();
  }

  Status Finish() override { return out_.Finish(); }

  uint64_t records() const override { return out_.records; }

 private:
  Status MapSchema(const std::shared_ptr<const Schema>& s) {
    if (!s) return InvalidArgumentError("csv: record without a schema");
    std::vector<int> map(header_->size(), -1);
    for (size_t i = 0; i < s->size(); ++i) {
      int j = header_->Find(s->names()[i]);
      if (j < 0) {
        return InvalidArgumentError("csv: field '" + s->names()[i] +
                                    "' is not in the header (the first record's columns)");
      }
      map[static_cast<size_t>(j)] = static_cast<int>(i);
    }
    map_ = std::move(map);
    other_ = s;
    return Status::Ok();
  }

  void AppendField(const Value& v) {
    if (v.type() == Value::Type::kString) {
      AppendString(v.text());
    } else {
      AppendValue(v, &out_.text);
    }
  }

  void AppendString(std::string_view s) {
    bool quote = !s.empty() && (s.front() == ' ' || s.back() == ' ');
    if (!quote) {
      for (char c : s) {
        if (c == d_ || c == '"' || c == '\n' || c == '\r') {
          quote = true;
          break;
        }
      }
    }
    if (!quote) {
      out_.text.append(s);
      return;
    }
    out_.text.push_back('"');
    for (;;) {
      size_t q = s.find('"');
      if (q == std::string_view::npos) break;
      out_.text.append(s.substr(0, q + 1));
      out_.text.push_back('"');
      s.remove_prefix(q + 1);
    }
    out_.text.append(s);
    out_.text.push_back('"');
  }

  OutputBuffer out_;
  char d_;
  std::shared_ptr<const Schema> header_;
  std::shared_ptr<const Schema> other_;
  std::vector<int> map_;
};

}  // namespace

std::unique_ptr<RecordReader> MakeCsvReader(std::unique_ptr<ByteSource> in, CsvOptions options) {
  return std::make_unique<CsvReader>(std::move(in), options);
}

std::unique_ptr<RecordWriter> MakeCsvWriter(ByteSink* out, char delimiter) {
  return std::make_unique<CsvWriter>(out, delimiter);
}

}  // namespace fieldstack::compute
