// Starts tests/support/fault_proxy.py (a fault-injecting HTTP proxy) on a free 127.0.0.1
// port in front of `upstream`; stopped by PID when destroyed. See fault_proxy.py --help for
// the fault options passed in `args` (--drop, --truncate, --status429, --fail-first, …).
#pragma once

#include <string>
#include <vector>

#include "tests/support/process.h"

namespace silo::testing {

class FaultProxy {
 public:
  // Throws std::runtime_error if the proxy does not start.
  FaultProxy(const std::string& dir, const std::string& upstream, const std::vector<std::string>& args);
  int port() const { return port_; }
  std::string host_port() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string url() const { return "http://" + host_port(); }
  pid_t pid() const { return process_.pid(); }
  // One line per request: "<n> conn=<c> METHOD path range=… fault=… status=… bytes=…".
  std::vector<std::string> Log() const;
  std::string Output() const;
  void Stop() { process_.Stop(); }

 private:
  std::string log_path_;
  std::string out_path_;
  Process process_;
  int port_ = 0;
};

}  // namespace silo::testing
