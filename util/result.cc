#include "util/result.h"

#include <cstring>

namespace silo {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kNotFound:
      return "not found";
    case Code::kInvalidArgument:
      return "invalid argument";
    case Code::kIntegrity:
      return "integrity error";
    case Code::kCorruption:
      return "corruption";
    case Code::kIO:
      return "I/O error";
    case Code::kConflict:
      return "conflict";
    case Code::kUnsupported:
      return "unsupported";
    case Code::kInterrupted:
      return "interrupted";
    case Code::kNetwork:
      return "network error";
  }
  return "unknown";
}

Status Status::FromErrno(std::string_view what, int err) {
  std::string m(what);
  m += ": ";
  m += std::strerror(err);
  return {err == ENOENT ? Code::kNotFound : Code::kIO, std::move(m)};
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return message_;
}

Status Status::WithContext(std::string_view context) && {
  if (ok()) return std::move(*this);
  std::string m(context);
  m += ": ";
  m += message_;
  message_ = std::move(m);
  return std::move(*this);
}

Status Status::WithContext(std::string_view context) const& {
  Status copy = *this;
  return std::move(copy).WithContext(context);
}

}  // namespace silo
