#include "transfer/server/access_log.h"

#include <cerrno>
#include <chrono>
#include <ctime>

namespace silo::server {

AccessLog::~AccessLog() {
  if (owned_ && out_) std::fclose(out_);
}

Status AccessLog::Open(const std::string& where) {
  if (where == "off") return Status::Ok();
  if (where.empty()) {
    out_ = stderr;
  } else if (where == "-") {
    out_ = stdout;
  } else {
    out_ = std::fopen(where.c_str(), "a");
    if (!out_) return Status::FromErrno("access log " + where, errno);
    owned_ = true;
  }
  return Status::Ok();
}

std::string LogfmtValue(std::string_view s) {
  bool plain = !s.empty();
  for (unsigned char c : s) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) plain = false;
  }
  if (plain) return std::string(s);
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < ' ' || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

void AccessLog::Write(const AccessRecord& r) {
  if (!out_) return;
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char when[96];
  std::snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  char dur[32];
  std::snprintf(dur, sizeof dur, "%.3f", r.seconds * 1000.0);
  std::string line = std::string("time=") + when + " client=" + LogfmtValue(r.client) +
                     " method=" + LogfmtValue(r.method) + " target=" + LogfmtValue(r.target) +
                     " status=" + std::to_string(r.status) + " bytes=" + std::to_string(r.bytes) +
                     " duration_ms=" + dur + "\n";
  std::lock_guard lock(mu_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

}  // namespace silo::server
