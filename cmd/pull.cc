// silo pull REF… | -f LIST: images from registries into the store.
#include "transfer/pull.h"

#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <set>
#include <thread>

#include "cmd/command.h"
#include "cmd/registry_flags.h"
#include "index/reference.h"
#include "transfer/release.h"
#include "transfer/server/admin_api.h"
#include "util/interrupt.h"
#include "util/progress.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct PullArgs {
  std::vector<std::string> refs;
  std::string file;
  std::string source;
  std::vector<std::string> platforms, arches, oses;
  bool no_arch_os_fail = false;
  int jobs = 4;
  int blob_jobs = 4;
  std::string authfile;
  std::string creds;
  bool tls_verify = true;
  std::string ca_cert;
  std::vector<std::string> plain_http;
  int retries = 5;
  std::string failed_file = "pull-failed.txt";
  bool dry_run = false;
  std::string limit_rate;
  std::string release;
};

// The live line (a log line every few seconds when not on a terminal).
std::string ProgressLine(const transfer::PullCounters& c, double secs) {
  uint64_t bytes = c.bytes_fetched, planned = c.bytes_planned;
  std::string line = "pull: " + std::to_string(c.images_done + c.images_failed) + "/" +
                     std::to_string(c.images_total.load()) + " images, " + std::to_string(c.images_active) +
                     " active, " + std::to_string(c.images_failed) + " failed; " + FormatBytes(bytes) +
                     (planned > bytes ? " of " + FormatBytes(planned) : "") + ", " + FormatRate(bytes, secs);
  if (planned > bytes && bytes > 0) {
    line += ", ETA " + FormatDuration(secs * static_cast<double>(planned - bytes) / static_cast<double>(bytes));
  }
  return line;
}

Result<std::vector<index::Platform>> Platforms(const PullArgs& a) {
  return ParsePlatformFlags(a.platforms, a.arches, a.oses);
}

// The pull runs in the server that owns the store (transfer/server/admin_api.h).
int PullViaServer(const Globals& g, const PullArgs& a, const std::vector<transfer::PullItem>& items,
                  const transfer::PullOptions& o, const server::ServeInfo& served) {
  if (!a.release.empty() || !a.limit_rate.empty() || !a.authfile.empty()) {
    return Fail(
        Status::InvalidArgument("--release, --limit-rate and --authfile are not supported while silo serve (pid " +
                                std::to_string(served.pid) + ") owns the store; stop it first"));
  }
  server::PullForward f;
  for (const auto& item : items) f.refs.push_back(item.reference.ToString());
  for (const auto& p : o.platforms) {
    if (p.os.empty() || p.architecture.empty()) {
      return Fail(Status::InvalidArgument("through a running silo serve, name platforms as --platform OS/ARCH"));
    }
    f.platforms.push_back(p.ToString());
  }
  f.plain_http = o.plain_http_registries;
  f.tls_verify = o.registry.http.tls_verify;
  f.ca_cert = o.registry.http.ca_file;
  f.creds = a.creds;
  f.fail_without_platform = o.fail_without_platform;
  f.jobs = o.jobs;
  f.blob_jobs = o.blob_jobs;
  f.retries = o.registry.retries;
  Note(g, "pull: silo serve (pid " + std::to_string(served.pid) + ") owns the store; it pulls");
  auto answer = server::PullThroughServer(served, f);
  if (!answer.ok()) return Fail(answer.status());
  std::vector<std::string> failed;
  for (const auto& w : answer->warnings)
    std::fprintf(stderr, "silo: warning: %s: %s\n", w.first.c_str(), w.second.c_str());
  for (const auto& line : answer->ok) {
    if (!g.quiet) std::printf("%s\n", line.c_str());
  }
  for (const auto& [input, message] : answer->failed) {
    std::fprintf(stderr, "silo: %s\n", message.c_str());
    failed.push_back(input);
  }
  if (!answer->summary.empty()) Note(g, "pull: " + answer->summary);
  std::fflush(stdout);
  WriteFailedList(a.failed_file, failed, "silo pull");
  return failed.empty() ? kExitOk : kExitFailed;
}

int RunPull(const Globals& g, PullArgs& a) {
  std::vector<std::string> inputs = a.refs;
  if (!a.file.empty()) {
    auto list = ReadListFile(a.file);
    if (!list.ok()) return Fail(list.status().WithContext("--file"));
    inputs.insert(inputs.end(), list->begin(), list->end());
  }
  if (!a.release.empty()) inputs.insert(inputs.begin(), a.release);
  if (inputs.empty()) return Fail(Status::InvalidArgument("pull: name images, or a list with -f FILE"));
  std::vector<transfer::PullItem> items;
  for (const auto& in : inputs) {
    auto r = index::ParseReference(in, a.source.empty() ? "docker.io" : a.source);
    if (!r.ok()) return Fail(r.status());
    items.push_back({in, *r, Status::Ok(), "", {}, {}, {}});
  }
  transfer::PullOptions o;
  auto platforms = Platforms(a);
  if (!platforms.ok()) return Fail(platforms.status());
  o.platforms = *platforms;
  o.fail_without_platform = a.no_arch_os_fail;
  o.jobs = a.jobs;
  o.blob_jobs = a.blob_jobs;
  o.dry_run = a.dry_run;
  RegistryFlags reg;
  reg.authfile = a.authfile;
  reg.creds = a.creds;
  reg.tls_verify = a.tls_verify;
  reg.ca_cert = a.ca_cert;
  reg.retries = a.retries;
  std::set<std::string> registries;
  for (const auto& i : items) registries.insert(i.reference.registry);
  auto ro = MakeRegistryOptions(reg, registries);
  if (!ro.ok()) return Fail(ro.status());
  o.registry = *ro;
  if (!a.limit_rate.empty()) {
    auto rate = ParseSize(a.limit_rate);
    if (!rate.ok()) return Fail(rate.status().WithContext("--limit-rate"));
    o.registry.http.max_recv_speed = *rate;
  }
  // Blob bodies in pieces of up to 512 KiB instead of libcurl's 16 KiB: fewer receive calls
  // and writer calls per byte (as `silo get` does). A rate limit keeps the default.
  if (o.registry.http.max_recv_speed == 0) o.registry.http.buffer_size = 512 * 1024;
  o.plain_http_registries = a.plain_http;

  // A running `silo serve` owns the store: it does the pull.
  if (!a.dry_run) {
    if (auto served = server::RunningServer(g.store_path)) return PullViaServer(g, a, items, o, *served);
  }
  // Every blob download in flight gathers its chunks in a buffer of the largest chunk size
  // (4 MiB). Under glibc's sliding mmap threshold those come from the heap once the first
  // is freed, and the heap fragments: peak RSS grew with -j (375 MiB at -j 8 on bench/pull's
  // large set). Mapped afresh, they go back when freed (256 MiB), for a little system time.
  ::mallopt(M_MMAP_THRESHOLD, 4 << 20);
  // A re-pull mostly finds everything stored already. That is checked with the store open
  // read-only (opening for writing writes and syncs new RocksDB manifest and options
  // files); it is reopened for writing only when something is left to pull.
  std::unique_ptr<store::Store> store;
  bool checking = false;  // open read-only for the check; reopened for writing when needed
  if (!a.dry_run) {
    store::OpenOptions read_only;
    read_only.read_only = true;
    read_only.create_if_missing = false;
    auto s = store::Store::Open(g.store_path, read_only);
    if (s.ok()) store = std::move(s).value();  // else (no store yet...) the writing open says why
    checking = store != nullptr;
  }
  if (!store) {
    store = OpenStore(g, a.dry_run ? Access::kRead : Access::kWrite);
    if (!store) return kExitUsage;
  }
  transfer::Puller puller(*store, o);
  LiveLine view([&](double secs) { return ProgressLine(puller.counters(), secs); }, g.quiet);
  // Pulls `list` (false: the store could not be opened for writing; OpenStore said why).
  auto pull = [&](std::vector<transfer::PullItem>& list) {
    std::vector<transfer::PullItem> todo;
    std::vector<size_t> where;
    if (checking) puller.SkipUpToDate(list);
    for (size_t i = 0; i < list.size(); ++i) {
      if (list[i].status.ok() && !list[i].up_to_date) where.push_back(i);
    }
    if (where.empty()) return true;
    if (checking) {
      store.reset();
      store = OpenStore(g, Access::kWrite);
      if (!store) return false;
      puller.UseStore(*store);
      checking = false;
    }
    for (size_t i : where) todo.push_back(std::move(list[i]));
    puller.Pull(todo);
    for (size_t k = 0; k < where.size(); ++k) list[where[k]] = std::move(todo[k]);
    return true;
  };
  if (!pull(items)) return kExitUsage;
  if (!a.release.empty() && items.front().status.ok() && !a.dry_run) {
    // Release mode: the components the release image names, each by digest.
    auto top = store::Digest::Parse(items.front().digest);
    auto components =
        top.ok() ? transfer::ReleaseComponents(*store, *top) : Result<std::vector<std::string>>(top.status());
    if (!components.ok()) {
      items.front().status = components.status().WithContext("release " + a.release);
    } else {
      std::vector<transfer::PullItem> more;
      for (const auto& c : *components) {
        auto r = index::ParseReference(c);
        if (!r.ok()) {
          items.push_back({c, {}, r.status(), "", {}, {}, {}});
          continue;
        }
        more.push_back({c, *r, Status::Ok(), "", {}, {}, {}});
      }
      Note(g, "pull: release " + a.release + " names " + std::to_string(components->size()) + " component image(s)");
      if (!pull(more)) return kExitUsage;
      for (auto& m : more) items.push_back(std::move(m));
    }
  }
  view.Stop();

  std::vector<std::string> failed;
  for (const auto& item : items) {
    for (const auto& w : item.warnings) std::fprintf(stderr, "silo: warning: %s: %s\n", item.input.c_str(), w.c_str());
    if (!item.status.ok()) {
      std::fprintf(stderr, "silo: %s\n", item.status.message().c_str());
      failed.push_back(item.input);
      continue;
    }
    if (a.dry_run) {
      std::printf("%s %s\n", item.reference.ToString().c_str(), item.digest.c_str());
      for (const auto& b : item.would_fetch) std::printf("  fetch %s\n", b.c_str());
    } else if (!g.quiet) {
      std::printf("%s %s%s\n", item.digest.c_str(), item.reference.ToString().c_str(),
                  item.platforms.empty() ? "" : (" (" + std::to_string(item.platforms.size()) + " platforms)").c_str());
    }
  }
  std::fflush(stdout);
  WriteFailedList(a.failed_file, failed, "silo pull");
  const auto& c = puller.counters();
  double secs = view.seconds();
  Note(g, "pull: " + std::to_string(items.size() - failed.size()) + " image(s) pulled, " +
              std::to_string(failed.size()) + " failed; blobs: " + std::to_string(c.blobs_fetched) + " fetched, " +
              std::to_string(c.blobs_present) + " already present, " + std::to_string(c.blobs_shared) +
              " shared between images; " + FormatBytes(c.bytes_fetched) + " in " + FormatDuration(secs) + " (" +
              FormatRate(c.bytes_fetched, secs) + "), " + std::to_string(puller.requests()) + " requests, " +
              std::to_string(puller.retries()) + " retried");
  if (Interrupted()) return kExitInterrupted;
  return failed.empty() ? kExitOk : kExitFailed;
}

}  // namespace

void RegisterPull(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<PullArgs>();
  auto* sub = app.add_subcommand("pull", "Pull images from registries into the store");
  sub->add_option("images", a->refs, "Image references (docker.io/library/nginx:1.25, host:5000/app@sha256:…)");
  sub->add_option("-f,--file", a->file, "Read references from LIST (one per line; # comments)");
  sub->add_option("-s,--source", a->source, "Registry for references that name none (default docker.io)");
  // One value per occurrence (repeat the flag or separate with commas), so a following
  // image reference is not swallowed.
  sub->add_option("--platform", a->platforms, "Only these platforms: os/arch[/variant][,…]")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_option("--arch", a->arches, "Only these architectures (Hangar): amd64,arm64,…")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_option("--os", a->oses, "Only these operating systems (Hangar): linux,windows")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_flag("--no-arch-os-fail", a->no_arch_os_fail, "Fail (not warn) when an image has none of the platforms");
  sub->add_option("-j,--jobs", a->jobs, "Images at a time")->capture_default_str()->check(CLI::Range(1, 64));
  sub->add_option("--blob-jobs", a->blob_jobs, "Blobs at a time per image")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  sub->add_option("--authfile,--pull-secret", a->authfile,
                  "Docker config.json with credentials ($REGISTRY_AUTH_FILE, else ~/.docker/config.json)");
  sub->add_option("--creds", a->creds, "USER:PASSWORD for the registries named");
  sub->add_option("--tls-verify", a->tls_verify, "Verify TLS certificates")->capture_default_str();
  sub->add_option("--ca-cert", a->ca_cert, "Extra CA certificate (PEM) to trust");
  sub->add_option("--plain-http", a->plain_http, "Speak plain HTTP to this registry (host:port; repeatable)")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_option("--retries", a->retries, "Retries per request on transient failures")->capture_default_str();
  sub->add_option("--failed-file", a->failed_file, "Where to list images that failed")->capture_default_str();
  sub->add_option("--release", a->release,
                  "An OpenShift release image: pull it and every component its image-references names");
  sub->add_option("--limit-rate", a->limit_rate, "Bytes per second per transfer (e.g. 20M)");
  sub->add_flag("--dry-run", a->dry_run, "Resolve manifests and list the blobs that would be fetched");
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunPull(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
