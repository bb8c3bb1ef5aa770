// Flags shared by the commands that talk to registries (pull, push, mirror): auth, TLS,
// parallelism, retries, the failed list, platforms; and a live progress line.
#pragma once

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "index/manifest.h"
#include "transfer/registry_client.h"
#include "util/result.h"

namespace silo::cmd {

struct RegistryFlags {
  int jobs = 4;
  int blob_jobs = 4;
  std::string authfile;
  std::string creds;  // USER:PASSWORD for every registry the command names
  bool tls_verify = true;
  std::string ca_cert;
  std::vector<std::string> plain_http;  // registries spoken to over http://
  int retries = 5;
  std::string failed_file;
  std::vector<std::string> platforms, arches, oses;
};

// Adds -j, --blob-jobs, --authfile, --creds, --tls-verify, --ca-cert, --plain-http,
// --retries, --failed-file and --platform/--arch/--os to `sub`.
void AddRegistryFlags(CLI::App* sub, RegistryFlags& f);
// Adds only the access flags: --authfile, --creds, --tls-verify, --ca-cert, --plain-http,
// --retries (for commands that talk to registries without pulling images themselves).
void AddRegistryAccessFlags(CLI::App* sub, RegistryFlags& f);

// The platforms of --platform (os/arch[/variant], comma lists) and Hangar's --arch × --os.
Result<std::vector<index::Platform>> ParsePlatformFlags(const std::vector<std::string>& platforms,
                                                        const std::vector<std::string>& arches,
                                                        const std::vector<std::string>& oses);

// Registry options from the flags; --creds applies to each of `registries`.
Result<transfer::RegistryOptions> MakeRegistryOptions(const RegistryFlags& f, const std::set<std::string>& registries);
bool IsPlainHttp(const RegistryFlags& f, const std::string& registry);

// Writes the failed inputs to `path` and says how to retry them with `retry_command`.
void WriteFailedList(const std::string& path, const std::vector<std::string>& failed, const std::string& retry_command);

// A line from `line()` redrawn on a terminal every 200 ms, logged every 5 s otherwise,
// nothing when quiet. Stop() (or the destructor) clears it at once (it does not wait for
// the next redraw: a short command is not held up).
class LiveLine {
 public:
  LiveLine(std::function<std::string(double seconds)> line, bool quiet);
  ~LiveLine();
  void Stop();
  double seconds() const;

 private:
  std::function<std::string(double)> line_;
  bool quiet_, tty_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;  // guarded by mu_
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::thread thread_;
};

}  // namespace silo::cmd
