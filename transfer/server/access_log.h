// The structured access log: one logfmt line per request (time, client, method, target,
// status, bytes, duration). Thread-safe; lines are never interleaved.
#pragma once

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>

#include "util/result.h"

namespace silo::server {

struct AccessRecord {
  std::string_view client;  // "127.0.0.1:50123"
  std::string_view method;
  std::string_view target;
  int status = 0;
  uint64_t bytes = 0;  // response body bytes sent
  double seconds = 0;
};

class AccessLog {
 public:
  AccessLog() = default;
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // "" stderr, "-" stdout, "off" nothing, else a file appended to (error names it).
  Status Open(const std::string& where);
  void Write(const AccessRecord& r);

 private:
  std::mutex mu_;
  FILE* out_ = nullptr;
  bool owned_ = false;
};

// `s` as a logfmt value: bare when it has no space, quote, '=' or control byte, else
// double-quoted with escapes.
std::string LogfmtValue(std::string_view s);

}  // namespace silo::server
