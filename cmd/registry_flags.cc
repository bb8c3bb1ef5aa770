#include "cmd/registry_flags.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <utility>

namespace silo::cmd {
namespace {

std::vector<std::string> SplitCommas(const std::vector<std::string>& values) {
  std::vector<std::string> parts;
  for (const auto& v : values) {
    size_t start = 0;
    while (start <= v.size()) {
      size_t comma = v.find(',', start);
      if (comma == std::string::npos) comma = v.size();
      if (comma > start) parts.push_back(v.substr(start, comma - start));
      start = comma + 1;
    }
  }
  return parts;
}

}  // namespace

void AddRegistryFlags(CLI::App* sub, RegistryFlags& f) {
  // One value per occurrence, so a following image reference is not swallowed.
  auto multi = [](CLI::Option* o) {
    o->expected(1)->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  };
  multi(sub->add_option("--platform", f.platforms, "Only these platforms: os/arch[/variant][,…]"));
  multi(sub->add_option("--arch", f.arches, "Only these architectures (Hangar): amd64,arm64,…"));
  multi(sub->add_option("--os", f.oses, "Only these operating systems (Hangar): linux,windows"));
  sub->add_option("-j,--jobs", f.jobs, "Images at a time")->capture_default_str()->check(CLI::Range(1, 64));
  sub->add_option("--blob-jobs", f.blob_jobs, "Blobs at a time per image")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  AddRegistryAccessFlags(sub, f);
  sub->add_option("--failed-file", f.failed_file, "Where to list images that failed")->capture_default_str();
}

void AddRegistryAccessFlags(CLI::App* sub, RegistryFlags& f) {
  sub->add_option("--authfile", f.authfile,
                  "Docker config.json with credentials ($REGISTRY_AUTH_FILE, else ~/.docker/config.json)");
  sub->add_option("--creds", f.creds, "USER:PASSWORD for the registries named");
  sub->add_option("--tls-verify", f.tls_verify, "Verify TLS certificates")->capture_default_str();
  sub->add_option("--ca-cert", f.ca_cert, "Extra CA certificate (PEM) to trust");
  sub->add_option("--plain-http", f.plain_http, "Speak plain HTTP to this registry (host:port; repeatable)")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_option("--retries", f.retries, "Retries per request on transient failures")->capture_default_str();
}

Result<std::vector<index::Platform>> ParsePlatformFlags(const std::vector<std::string>& platforms,
                                                        const std::vector<std::string>& arches_in,
                                                        const std::vector<std::string>& oses_in) {
  std::vector<index::Platform> out;
  for (const auto& p : SplitCommas(platforms)) {
    SILO_ASSIGN_OR_RETURN(index::Platform plat, index::Platform::Parse(p));
    out.push_back(plat);
  }
  // Hangar's --arch and --os lists: every combination (an empty list matches any).
  auto arches = SplitCommas(arches_in), oses = SplitCommas(oses_in);
  if (!arches.empty() || !oses.empty()) {
    if (arches.empty()) arches.push_back("");
    if (oses.empty()) oses.push_back("");
    for (const auto& os : oses) {
      for (const auto& arch : arches) {
        index::Platform p;
        p.os = os;
        auto slash = arch.find('/');
        p.architecture = arch.substr(0, slash);
        if (slash != std::string::npos) p.variant = arch.substr(slash + 1);
        out.push_back(p);
      }
    }
  }
  return out;
}

Result<transfer::RegistryOptions> MakeRegistryOptions(const RegistryFlags& f, const std::set<std::string>& registries) {
  transfer::RegistryOptions o;
  o.http.tls_verify = f.tls_verify;
  o.http.ca_file = f.ca_cert;
  o.retries = f.retries;
  SILO_ASSIGN_OR_RETURN(auto creds, transfer::CredentialStore::Load(f.authfile));
  if (!f.creds.empty()) {
    auto colon = f.creds.find(':');
    if (colon == std::string::npos) return Status::InvalidArgument("--creds: expected USER:PASSWORD");
    for (const auto& r : registries) creds.Set(r, {f.creds.substr(0, colon), f.creds.substr(colon + 1), ""});
  }
  o.credentials = std::make_shared<transfer::CredentialStore>(std::move(creds));
  return o;
}

bool IsPlainHttp(const RegistryFlags& f, const std::string& registry) {
  return std::find(f.plain_http.begin(), f.plain_http.end(), registry) != f.plain_http.end();
}

void WriteFailedList(const std::string& path, const std::vector<std::string>& failed,
                     const std::string& retry_command) {
  if (failed.empty()) return;
  std::ofstream f(path, std::ios::trunc);
  for (const auto& in : failed) f << in << "\n";
  if (!f) {
    std::fprintf(stderr, "silo: cannot write the failed list %s\n", path.c_str());
  } else {
    std::fprintf(stderr, "silo: %zu image(s) failed; retry them with: %s -f %s\n", failed.size(), retry_command.c_str(),
                 path.c_str());
  }
}

LiveLine::LiveLine(std::function<std::string(double)> line, bool quiet)
    : line_(std::move(line)), quiet_(quiet), tty_(isatty(STDERR_FILENO)) {
  if (quiet_) return;
  thread_ = std::thread([this] {
    auto last_log = start_;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        if (cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return done_; })) return;
      }
      auto now = std::chrono::steady_clock::now();
      if (!tty_ && now - last_log < std::chrono::seconds(5)) continue;
      last_log = now;
      std::string text = line_(seconds());
      std::fprintf(stderr, tty_ ? "\r\033[K%s" : "%s\n", text.c_str());
      std::fflush(stderr);
    }
  });
}

LiveLine::~LiveLine() {
  Stop();
}

void LiveLine::Stop() {
  bool was;
  {
    std::lock_guard lock(mu_);
    was = std::exchange(done_, true);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (!was && tty_ && !quiet_) std::fprintf(stderr, "\r\033[K");
}

double LiveLine::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

}  // namespace silo::cmd
