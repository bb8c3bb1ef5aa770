// silo::Status and silo::Result<T>: the one error type used across the libraries.
//
// Errors carry a code and a message; as they travel up, callers prepend context
// ("pull 127.0.0.1:5000/app:1.0: blob sha256:ab…: size 1024, manifest says 2048").
// Both types are [[nodiscard]]: dropping an error must be written out with IgnoreError().
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace silo {

enum class Code {
  kOk = 0,
  kNotFound,         // the named thing does not exist
  kInvalidArgument,  // the caller's input is malformed
  kIntegrity,        // bytes do not match their digest, size or checksum
  kCorruption,       // stored metadata cannot be decoded
  kIO,               // the operating system or the database failed
  kConflict,         // a compare-and-set lost, or a resource is held by someone else
  kUnsupported,      // a newer format or an unknown feature
  kInterrupted,      // cancelled (Ctrl-C, SIGTERM)
  kNetwork,          // a remote peer failed or misbehaved
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status Integrity(std::string m) { return {Code::kIntegrity, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status IO(std::string m) { return {Code::kIO, std::move(m)}; }
  static Status Conflict(std::string m) { return {Code::kConflict, std::move(m)}; }
  static Status Unsupported(std::string m) { return {Code::kUnsupported, std::move(m)}; }
  static Status Interrupted(std::string m) { return {Code::kInterrupted, std::move(m)}; }
  static Status Network(std::string m) { return {Code::kNetwork, std::move(m)}; }
  // An I/O error from errno, naming what failed: "open /x: Permission denied".
  static Status FromErrno(std::string_view what, int err);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

  // Returns this status with "context: " prepended to the message (no-op when ok).
  Status WithContext(std::string_view context) &&;
  Status WithContext(std::string_view context) const&;

  // Explicitly drops an error that the caller has decided does not matter.
  void IgnoreError() const {}

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                                              // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  Status take_status() && { return ok() ? Status() : std::move(std::get<Status>(v_)); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  Result WithContext(std::string_view context) && {
    if (ok()) return std::move(*this);
    return Result(std::move(std::get<Status>(v_)).WithContext(context));
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace silo

#define SILO_CONCAT_INNER(a, b) a##b
#define SILO_CONCAT(a, b) SILO_CONCAT_INNER(a, b)

// Returns the status from the enclosing function when `expr` is not ok.
#define SILO_TRY(expr)                                   \
  do {                                                   \
    ::silo::Status silo_try_status_ = (expr);            \
    if (!silo_try_status_.ok()) return silo_try_status_; \
  } while (0)

// `lhs = value of expr`, or returns its status from the enclosing function.
#define SILO_ASSIGN_OR_RETURN(lhs, expr) SILO_ASSIGN_OR_RETURN_IMPL(SILO_CONCAT(silo_result_, __LINE__), lhs, expr)
#define SILO_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)    \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).take_status(); \
  lhs = std::move(tmp).value()
