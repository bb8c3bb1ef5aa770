// Child processes for integration tests: start a peer program (a registry, a server) and be
// sure it is gone when the test ends, or run a command to completion and capture its output.
//
// Programs are run directly (execvp: argv[0] is looked up in PATH), never through a shell,
// so arguments need no quoting. Test-only code: failures to start throw std::runtime_error,
// which GoogleTest reports as a test failure with the message.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace silo::testing {

struct ProcessOptions {
  // The program and its arguments; argv[0] is looked up in PATH. Must not be empty.
  std::vector<std::string> argv;
  // Variables added to the inherited environment (overriding inherited ones of the same name).
  std::map<std::string, std::string> env;
  // Inherited variables whose names start with one of these are removed (e.g. "REGISTRY_",
  // which the CNCF registry would read as configuration overrides).
  std::vector<std::string> env_drop_prefixes;
  // Working directory of the child; empty: the current one.
  std::string cwd;
  // Files that receive the child's stdout and stderr, created or truncated. Empty: inherit
  // the test's. The same path for both gives one interleaved log. stdin is /dev/null.
  std::string stdout_path;
  std::string stderr_path;
  // When the spawning *thread* ends without stopping the child (the test binary crashed or
  // was killed by a ctest timeout), the kernel SIGKILLs the child (PR_SET_PDEATHSIG), so
  // no peer outlives its test. Turn off to spawn from a short-lived thread.
  bool die_with_parent = true;
};

// One child process, owned: the destructor stops it (Stop()), so a failing test leaks
// nothing. Not thread-safe; movable, not copyable.
class Process {
 public:
  using Options = ProcessOptions;

  // No child.
  Process() = default;
  // Starts the program. Throws std::runtime_error if it cannot: a log file cannot be
  // opened, fork fails, or the program cannot be executed (e.g. not found in PATH).
  explicit Process(const Options& options);
  ~Process();
  Process(Process&& other) noexcept;
  // Stops this object's child first, then takes over other's.
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // The child's pid while it is ours to signal (started and not yet reaped), else -1.
  pid_t pid() const { return pid_; }

  // True while the child runs. Reaps it if it has exited (then exit_status() is set).
  bool Running();

  // How the child ended, once reaped: its exit code, or 128 + signal number if a signal
  // killed it (as the shell reports it). Empty while running or if never started.
  std::optional<int> exit_status() const { return exit_status_; }

  // Waits up to `timeout` for the child to exit by itself; reaps it. Returns exit_status()
  // (empty if it is still running after the timeout, or there is no child).
  std::optional<int> Wait(std::chrono::milliseconds timeout);

  // Sends SIGTERM, waits up to `grace` for the child to exit, then sends SIGKILL; always
  // reaps it by pid. Returns exit_status(), or -1 if there was no child. Safe to call
  // again (returns the recorded status).
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

 private:
  // waitpid(pid_, WNOHANG or blocking); records the status and clears pid_ when reaped.
  bool Reap(bool block);

  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

// Runs argv to completion (PATH lookup, no shell, stdin /dev/null) and returns its exit
// code, or 128 + signal number if a signal killed it. If `output` is not null it receives
// stdout and stderr interleaved. A program that cannot be executed gives 127 with the
// reason in `output`; one still running after `timeout` is killed (SIGKILL) and gives 124,
// like timeout(1). Throws std::runtime_error only if pipe or fork fail.
int RunCommand(const std::vector<std::string>& argv, std::string* output = nullptr,
               std::chrono::milliseconds timeout = std::chrono::minutes(5));

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close).
// Another process may take it before the caller binds it: callers retry on a clash.
// Throws std::runtime_error if no socket can be bound.
int FreeLoopbackPort();

}  // namespace silo::testing
