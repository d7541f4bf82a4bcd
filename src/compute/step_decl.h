#pragma once

// Checks of step declarations (JSON) shared by the step factories: every error is an
// InvalidArgument whose message starts with the path of the offending field
// ("redact.columns[1].action: ..."), so a user can find it in a pipeline document.
//
// Thread safety: pure functions.

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace fieldstack::compute::decl {

inline std::string Join(std::string_view path, std::string_view key) {
  std::string s(path);
  s += '.';
  s += key;
  return s;
}

inline std::string Index(std::string_view path, size_t i) {
  return std::string(path) + "[" + std::to_string(i) + "]";
}

inline Status FieldError(std::string_view path, std::string_view msg) {
  return InvalidArgumentError(std::string(path) + ": " + std::string(msg));
}

// OK when `obj` is an object whose fields are all in `known`.
inline Status CheckObject(const nlohmann::json& obj, std::string_view path,
                          std::initializer_list<std::string_view> known) {
  if (!obj.is_object()) {
    return FieldError(path, std::string("must be an object, not ") + obj.type_name());
  }
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || it.key() == k;
    if (!ok) {
      std::string list;
      for (std::string_view k : known) {
        if (!list.empty()) list += ", ";
        list += k;
      }
      return FieldError(Join(path, it.key()), "unknown field (known: " + list + ")");
    }
  }
  return Status::Ok();
}

// The member `key` of the object `obj`, or nullptr when absent.
inline const nlohmann::json* Find(const nlohmann::json& obj, std::string_view key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

inline Result<std::string> String(const nlohmann::json& v, std::string_view path) {
  if (!v.is_string())
    return FieldError(path, std::string("must be a string, not ") + v.type_name());
  return v.get<std::string>();
}

inline Result<std::string> NonEmptyString(const nlohmann::json& v, std::string_view path) {
  FS_ASSIGN_OR_RETURN(std::string s, String(v, path));
  if (s.empty()) return FieldError(path, "must not be empty");
  return s;
}

inline Result<double> Number(const nlohmann::json& v, std::string_view path) {
  if (!v.is_number())
    return FieldError(path, std::string("must be a number, not ") + v.type_name());
  double d = v.get<double>();
  if (!std::isfinite(d)) return FieldError(path, "must be finite");
  return d;
}

inline Result<int64_t> Integer(const nlohmann::json& v, std::string_view path) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      return FieldError(path, "is too large");
    }
    return v.get<int64_t>();
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e18) {
      return static_cast<int64_t>(d);
    }
  }
  return FieldError(path, std::string("must be an integer, not ") +
                              (v.is_number() ? v.dump() : std::string(v.type_name())));
}

// A list of non-empty strings; `allow_empty_list` false refuses [].
inline Result<std::vector<std::string>> StringList(const nlohmann::json& v, std::string_view path,
                                                   bool allow_empty_list) {
  if (!v.is_array()) {
    return FieldError(path, std::string("must be a list of strings, not ") + v.type_name());
  }
  if (v.empty() && !allow_empty_list) return FieldError(path, "must not be empty");
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    FS_ASSIGN_OR_RETURN(std::string s, NonEmptyString(v[i], Index(path, i)));
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace fieldstack::compute::decl
