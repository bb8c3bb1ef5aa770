// Lifecycle of a running `silo serve`: its pidfile (which also tells other silo commands
// that a server owns the store, and where it listens), detaching into the background,
// and stopping it by pid.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "util/result.h"

namespace silo::server {

// What the pidfile records.
struct ServeInfo {
  pid_t pid = -1;
  std::vector<std::string> endpoints;  // "127.0.0.1:5000", with "https://" when TLS
  std::vector<std::string> args;       // the serve arguments, for restart
};

// "<store>/serve.pid".
std::string PidfilePath(const std::string& store_path);
// Writes the pidfile atomically (temp file + rename).
Status WritePidfile(const std::string& path, const ServeInfo& info);
// The running server recorded in `path`: nullopt when there is no pidfile or its process
// is gone (a stale file from a crash); an error only when the file cannot be read.
Result<std::optional<ServeInfo>> ReadPidfile(const std::string& path);

// Forks: the parent waits until the child calls DaemonReady() (returns the child's pid)
// or DaemonFailed() / exits (returns the error it reported); the child (returns 0)
// continues in a new session with stdin on /dev/null and stdout/stderr on `log_path`.
Result<pid_t> Daemonize(const std::string& log_path);
void DaemonReady();
void DaemonFailed(const std::string& message);

// Sends SIGTERM to `pid` and waits up to `timeout` for it to exit. Conflict when it is
// still running afterwards.
Status StopProcess(pid_t pid, std::chrono::milliseconds timeout);

}  // namespace silo::server
