#include "compute/record.h"

#include <charconv>
#include <cmath>

namespace fieldstack::compute {

Value Value::Bool(bool b) {
  Value v;
  v.SetBool(b);
  return v;
}
Value Value::Int(int64_t i) {
  Value v;
  v.SetInt(i);
  return v;
}
Value Value::Float(double f) {
  Value v;
  v.SetFloat(f);
  return v;
}
Value Value::String(std::string s) {
  Value v;
  v.type_ = Type::kString;
  v.text_ = std::move(s);
  return v;
}

bool Value::operator==(const Value& other) const {
  if (is_number() && other.is_number()) {
    if (type_ == Type::kInt && other.type_ == Type::kInt) return i_ == other.i_;
    return as_double() == other.as_double();
  }
  if (type_ != other.type_) return false;
  switch (type_) {
    case Type::kNull:
      return true;
    case Type::kBool:
      return b_ == other.b_;
    case Type::kString:
      return text_ == other.text_;
    default:
      return false;
  }
}

void AppendValue(const Value& v, std::string* out) {
  if (!v.text().empty() || v.type() == Value::Type::kString) {
    out->append(v.text());
    return;
  }
  char buf[64];
  switch (v.type()) {
    case Value::Type::kNull:
      return;
    case Value::Type::kBool:
      out->append(v.as_bool() ? "true" : "false");
      return;
    case Value::Type::kInt: {
      auto r = std::to_chars(buf, buf + sizeof buf, v.as_int());
      out->append(buf, r.ptr);
      return;
    }
    case Value::Type::kFloat: {
      double f = v.as_double();
      if (!std::isfinite(f)) {
        out->append(std::isnan(f) ? "NaN" : (f > 0 ? "Infinity" : "-Infinity"));
        return;
      }
      auto r = std::to_chars(buf, buf + sizeof buf, f);
      out->append(buf, r.ptr);
      return;
    }
    case Value::Type::kString:
      return;
  }
}

std::string FormatValue(const Value& v) {
  std::string s;
  AppendValue(v, &s);
  return s;
}

Schema::Schema(std::vector<std::string> names) : names_(std::move(names)) {
  index_.reserve(names_.size());
  for (size_t i = 0; i < names_.size(); ++i) index_.emplace(names_[i], static_cast<int>(i));
}

int Schema::Find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? -1 : it->second;
}

const Value* Record::Get(std::string_view name) const {
  if (!schema) return nullptr;
  int i = schema->Find(name);
  return i < 0 ? nullptr : &values[static_cast<size_t>(i)];
}

Value* Record::GetMutable(std::string_view name) {
  if (!schema) return nullptr;
  int i = schema->Find(name);
  return i < 0 ? nullptr : &values[static_cast<size_t>(i)];
}

void AppendKeyBytes(const Value& v, std::string* out) {
  auto put = [out](char tag, const void* p, size_t n) {
    out->push_back(tag);
    out->append(static_cast<const char*>(p), n);
  };
  switch (v.type()) {
    case Value::Type::kNull:
      out->push_back('n');
      return;
    case Value::Type::kBool: {
      char b = v.as_bool() ? 1 : 0;
      put('b', &b, 1);
      return;
    }
    case Value::Type::kInt: {
      int64_t i = v.as_int();
      put('i', &i, 8);
      return;
    }
    case Value::Type::kFloat: {
      double d = v.as_double();
      if (d == std::floor(d) && std::fabs(d) < 9.2e18) {
        int64_t i = static_cast<int64_t>(d);
        put('i', &i, 8);
      } else {
        put('f', &d, 8);
      }
      return;
    }
    case Value::Type::kString: {
      uint32_t n = static_cast<uint32_t>(v.text().size());
      put('s', &n, 4);
      out->append(v.text());
      return;
    }
  }
}

}  // namespace fieldstack::compute
