#pragma once

// Status and Result<T>: how fallible functions report errors (STYLE.md "Errors").
//
// A Status is OK or carries one of a few stable codes plus a human message. Callers branch on
// the code, people read the message. Result<T> holds either a value or a non-OK Status.
// Translation to errno / HTTP status happens in one file per front end.

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace fieldstack {

enum class StatusCode {
  kOk = 0,
  kNotFound,
  kAlreadyExists,
  kInvalidArgument,
  kFailedPrecondition,
  kCorruption,
  kNoSpace,
  kUnavailable,  // retryable
  kPermissionDenied,
  kUnauthenticated,
  kInternal,
  kResourceExhausted,  // a budget or quota is spent until a later time
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "NotFound: no such file 'a/b'".
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context: `.
  Status WithContext(std::string_view context) const;

  bool operator==(const Status& other) const = default;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status NotFoundError(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
inline Status AlreadyExistsError(std::string msg) {
  return {StatusCode::kAlreadyExists, std::move(msg)};
}
inline Status InvalidArgumentError(std::string msg) {
  return {StatusCode::kInvalidArgument, std::move(msg)};
}
inline Status FailedPreconditionError(std::string msg) {
  return {StatusCode::kFailedPrecondition, std::move(msg)};
}
inline Status CorruptionError(std::string msg) { return {StatusCode::kCorruption, std::move(msg)}; }
inline Status NoSpaceError(std::string msg) { return {StatusCode::kNoSpace, std::move(msg)}; }
inline Status UnavailableError(std::string msg) {
  return {StatusCode::kUnavailable, std::move(msg)};
}
inline Status PermissionDeniedError(std::string msg) {
  return {StatusCode::kPermissionDenied, std::move(msg)};
}
inline Status UnauthenticatedError(std::string msg) {
  return {StatusCode::kUnauthenticated, std::move(msg)};
}
inline Status InternalError(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }
inline Status ResourceExhaustedError(std::string msg) {
  return {StatusCode::kResourceExhausted, std::move(msg)};
}

// Maps an errno value from a failed system call to a Status (ENOSPC -> NoSpace, ENOENT ->
// NotFound, EIO -> Internal, ...). `what` names the operation and object, e.g. "write /a/b".
Status ErrnoStatus(int err, std::string_view what);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok() && "Result constructed from an OK Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T value_or(T other) const& { return ok() ? value() : other; }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace fieldstack

#define FS_CONCAT_INNER(a, b) a##b
#define FS_CONCAT(a, b) FS_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function when `expr` is not OK.
#define FS_RETURN_IF_ERROR(expr)              \
  do {                                        \
    ::fieldstack::Status fs_status_ = (expr); \
    if (!fs_status_.ok()) return fs_status_;  \
  } while (0)

// `FS_ASSIGN_OR_RETURN(auto x, F());` declares x from a Result or returns its Status.
#define FS_ASSIGN_OR_RETURN(lhs, expr) \
  FS_ASSIGN_OR_RETURN_IMPL(FS_CONCAT(fs_r_, __LINE__), lhs, expr)
#define FS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

// Crash on the impossible: an invariant of our own code, never the environment or input.
#define FS_CHECK(cond)                                                 \
  do {                                                                 \
    if (!(cond)) ::fieldstack::CheckFailed(#cond, __FILE__, __LINE__); \
  } while (0)

namespace fieldstack {
[[noreturn]] void CheckFailed(const char* cond, const char* file, int line);
}  // namespace fieldstack
