#pragma once

// Records: what the compute pipelines' built-in steps work on (docs/compute.md).
//
// A Record is one row of a CSV file, one JSON lines object or one MQTT message's JSON payload:
// named fields (a Schema shared by many records) and one Value per field. Readers reuse one
// Record for every row (Value::text keeps its capacity), so streaming a file allocates almost
// nothing per row; steps change records in place.
//
// Numbers read from text (CSV, or JSON) keep their original text in Value::text so that a
// writer can output them byte for byte; a value a step computes has an empty text and is
// formatted when written (FormatValue).
//
// Thread safety: none; a record and its schema are used by one pipeline run at a time. Schemas
// are immutable once shared.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace fieldstack::compute {

class Value {
 public:
  enum class Type : uint8_t { kNull = 0, kBool, kInt, kFloat, kString };

  Value() = default;
  static Value Null() { return Value(); }
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double f);
  static Value String(std::string s);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_number() const { return type_ == Type::kInt || type_ == Type::kFloat; }
  bool as_bool() const { return b_; }
  int64_t as_int() const { return i_; }
  // The number as a double (kInt converted); 0 for others.
  double as_double() const { return type_ == Type::kInt ? static_cast<double>(i_) : f_; }
  // kString: the string. Numbers and bools read from text: their original text. Otherwise "".
  const std::string& text() const { return text_; }
  std::string& mutable_text() { return text_; }

  // In-place setters that keep text_'s capacity (readers call these for every row).
  void SetNull() {
    type_ = Type::kNull;
    text_.clear();
  }
  void SetBool(bool b) {
    type_ = Type::kBool;
    b_ = b;
    text_.clear();
  }
  void SetInt(int64_t i) {
    type_ = Type::kInt;
    i_ = i;
    text_.clear();
  }
  void SetFloat(double f) {
    type_ = Type::kFloat;
    f_ = f;
    text_.clear();
  }
  void SetString(std::string_view s) {
    type_ = Type::kString;
    text_.assign(s);
  }
  // A number or bool with its original text (the CSV reader's inference).
  void SetIntWithText(int64_t i, std::string_view t) {
    type_ = Type::kInt;
    i_ = i;
    text_.assign(t);
  }
  void SetFloatWithText(double f, std::string_view t) {
    type_ = Type::kFloat;
    f_ = f;
    text_.assign(t);
  }
  void SetBoolWithText(bool b, std::string_view t) {
    type_ = Type::kBool;
    b_ = b;
    text_.assign(t);
  }

  // Equality as records compare (dedupe, group keys): same type and value; an int and a float
  // of the same value are equal.
  bool operator==(const Value& other) const;

 private:
  Type type_ = Type::kNull;
  bool b_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::string text_;
};

// The text a writer outputs for `v`: its original text when it has one, else "" for null,
// "true"/"false", decimal integers, and the shortest text that reads back to the same double
// (std::to_chars) for floats.
std::string FormatValue(const Value& v);
void AppendValue(const Value& v, std::string* out);

// Appends bytes that identify `v` under Value equality (an int and an integral float of the
// same value give the same bytes): the key of a group or of a seen record, for hashing.
void AppendKeyBytes(const Value& v, std::string* out);

// Field names, in order. Immutable once made; records point at a shared one.
class Schema {
 public:
  explicit Schema(std::vector<std::string> names);
  const std::vector<std::string>& names() const { return names_; }
  size_t size() const { return names_.size(); }
  // The index of `name`, or -1.
  int Find(std::string_view name) const;

 private:
  std::vector<std::string> names_;
  std::unordered_map<std::string, int> index_;
};

struct Record {
  std::shared_ptr<const Schema> schema;
  std::vector<Value> values;  // values.size() == schema->size()
  // Where the record came from, for durability and replay (the engine sets it): the MQTT
  // message's buffer sequence number, or the row number in a file (from 1). 0 when unknown.
  uint64_t seq = 0;

  // The value of field `name`, or nullptr when the schema has no such field.
  const Value* Get(std::string_view name) const;
  Value* GetMutable(std::string_view name);
};

}  // namespace fieldstack::compute
