// nginx (Debian's nginx-light) on 127.0.0.1 serving a directory, for tests and benchmarks
// that compare silo with a plain HTTP server: its own config, pid file, temp paths and
// logs inside a directory the caller owns. The access log has one line per response,
// "STATUS BODY_BYTES_SENT \"RANGE\"", so a test can count the bytes a client moved.
//
// Test-only code: failures throw std::runtime_error. The destructor stops nginx by PID.
#pragma once

#include <cstdint>
#include <string>

#include "tests/support/process.h"

namespace silo::testing {

class Nginx {
 public:
  // Serves `root` from a config written into `dir` (created). Not started yet.
  Nginx(std::string dir, std::string root);
  ~Nginx();
  Nginx(const Nginx&) = delete;
  Nginx& operator=(const Nginx&) = delete;

  // Starts on a free port and waits until it answers; retries on a port clash.
  void Start();
  void Stop();
  int port() const { return port_; }
  std::string url(const std::string& path) const;  // "http://127.0.0.1:PORT/" + path
  std::string access_log_path() const { return dir_ + "/access.log"; }
  // Sum of body bytes of the 2xx responses in the access log.
  uint64_t BytesSent() const;

 private:
  std::string dir_;
  std::string root_;
  int port_ = 0;
  Process process_;
};

}  // namespace silo::testing
