// Helpers for `silo serve` integration tests: a server process on a free loopback port,
// curl requests with their status, headers and body, and raw sockets for malformed input.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/registry.h"
#include "tests/support/temp_dir.h"

namespace silo::testing {

// `silo --store STORE serve --listen 127.0.0.1:PORT ...` as a child process, stopped by pid.
class SiloServer {
 public:
  // Starts the server and waits for /healthz (retrying on a port clash). Throws
  // std::runtime_error with the server's log when it does not come up.
  SiloServer(std::string store, std::string log_path, std::vector<std::string> extra = {}, bool tls = false);
  ~SiloServer() { Stop(); }
  // SIGTERM and wait; the exit status.
  int Stop() { return process_.Stop(std::chrono::seconds(30)); }
  Process& process() { return process_; }
  int port() const { return port_; }
  // "127.0.0.1:PORT"
  std::string host_port() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string url() const { return (tls_ ? "https://" : "http://") + host_port(); }
  std::string log() const;

 private:
  Process process_;
  std::string log_path_;
  int port_ = 0;
  bool tls_ = false;
};

struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // lowercase names; the last value of each
  std::string body;
};

// Runs curl (-sS, no proxy) with `args` and parses the final response.
HttpResult Curl(const std::vector<std::string>& args);

// Sends `bytes` to 127.0.0.1:port over a fresh connection; when `read` reads the
// response until the server closes or 10 s pass. Closes the socket after `bytes`
// otherwise (a client vanishing mid-request).
std::string RawExchange(int port, const std::string& bytes, bool read);

// sha256:<hex> of `data`.
std::string DigestOf(const std::string& data);

// A suite whose tests share one CNCF registry holding imagegen's small image set, started
// once per suite (refs_ names the images); each test gets its own temporary directory.
class RegistrySuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();

  static TempDir* suite_tmp_;
  static Registry* registry_;
  static std::vector<std::string>* refs_;
  TempDir tmp_;
};

}  // namespace silo::testing
