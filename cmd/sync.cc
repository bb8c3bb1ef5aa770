// silo sync URL REF…: copy images and snapshots from another silo's `silo serve`.
#include "transfer/sync.h"

#include <cstdio>
#include <memory>
#include <mutex>

#include "cmd/command.h"
#include "transfer/server/admin_api.h"
#include "util/interrupt.h"
#include "util/progress.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct SyncArgs {
  std::string url;
  std::vector<std::string> selectors;
  std::string token;
  std::string user;
  bool tls_verify = true;
  std::string ca_cert;
  int connections = 4;
  std::string limit_rate;
  std::string batch_bytes;
  bool dry_run = false;
  bool json = false;
};

std::string Json(const transfer::SyncReport& r) {
  std::string out = "{\"refs\":[";
  for (size_t i = 0; i < r.refs.size(); ++i) {
    out += std::string(i ? "," : "") + "{\"name\":" + JsonQuote(r.refs[i].name) +
           ",\"digest\":" + JsonQuote(r.refs[i].target.ToString()) +
           ",\"changed\":" + (r.refs[i].changed ? "true" : "false") + "}";
  }
  out += "],\"unmatched\":[";
  for (size_t i = 0; i < r.unmatched.size(); ++i) {
    out += std::string(i ? "," : "") + "{\"selector\":" + JsonQuote(r.unmatched[i].first) +
           ",\"error\":" + JsonQuote(r.unmatched[i].second) + "}";
  }
  out += "],\"objects_checked\":" + std::to_string(r.objects_checked) +
         ",\"objects_missing\":" + std::to_string(r.objects_missing) +
         ",\"objects_fetched\":" + std::to_string(r.objects_fetched) +
         ",\"bytes_fetched\":" + std::to_string(r.bytes_fetched) +
         ",\"absent_on_server\":" + std::to_string(r.absent_on_server) + ",\"levels\":" + std::to_string(r.levels) +
         ",\"requests\":" + std::to_string(r.requests) + ",\"seconds\":" + std::to_string(r.seconds) + "}";
  return out;
}

// A running `silo serve` owns the store: it syncs (transfer/server/admin_api.h).
int SyncViaServer(const Globals& g, const SyncArgs& a, const transfer::SyncOptions& o,
                  const server::ServeInfo& served) {
  if (a.json) return Fail(Status::InvalidArgument("sync: --json is not available while silo serve owns the store"));
  Note(g, "sync: silo serve (pid " + std::to_string(served.pid) + ") owns the store; it syncs");
  server::SyncForward f{o.url, a.selectors, o.authorization, o.http.tls_verify, o.http.ca_file, o.connections};
  auto answer = server::SyncThroughServer(served, f);
  if (!answer.ok()) return Fail(answer.status());
  for (const auto& line : answer->ok) {
    if (!g.quiet) std::printf("%s\n", line.c_str());
  }
  std::fflush(stdout);
  for (const auto& [input, message] : answer->failed) std::fprintf(stderr, "silo: %s\n", message.c_str());
  if (!answer->summary.empty()) Note(g, "sync: " + answer->summary);
  return answer->failed.empty() ? kExitOk : kExitFailed;
}

int RunSync(const Globals& g, const SyncArgs& a) {
  if (!a.url.starts_with("http://") && !a.url.starts_with("https://")) {
    return Fail(Status::InvalidArgument("sync: \"" + a.url + "\" is not a URL (http://HOST:PORT of a silo serve)"));
  }
  if (!a.token.empty() && !a.user.empty()) return Fail(Status::InvalidArgument("sync: --token or --user, not both"));
  if (!a.user.empty() && a.user.find(':') == std::string::npos) {
    return Fail(Status::InvalidArgument("sync: --user: expected USER:PASSWORD"));
  }
  transfer::SyncOptions o;
  o.url = a.url;
  if (!a.token.empty()) o.authorization = "Bearer " + a.token;
  if (!a.user.empty()) o.authorization = "Basic " + transfer::Base64Encode(a.user);
  o.http.tls_verify = a.tls_verify;
  o.http.ca_file = a.ca_cert;
  o.connections = a.connections;
  if (!a.limit_rate.empty()) {
    auto rate = ParseSize(a.limit_rate);
    if (!rate.ok()) return Fail(rate.status().WithContext("--limit-rate"));
    o.http.max_recv_speed = *rate;
  }
  if (!a.batch_bytes.empty()) {
    auto size = ParseSize(a.batch_bytes);
    if (!size.ok() || *size == 0) {
      return Fail(size.ok() ? Status::InvalidArgument("--batch-size: must be positive")
                            : size.status().WithContext("--batch-size"));
    }
    o.batch_bytes = *size;
  }
  o.dry_run = a.dry_run;

  if (auto served = a.dry_run ? std::nullopt : server::RunningServer(g.store_path))
    return SyncViaServer(g, a, o, *served);
  auto store = OpenStore(g, a.dry_run ? Access::kRead : Access::kWrite);
  if (!store) return kExitUsage;
  std::unique_ptr<Progress> progress;
  std::mutex mu;
  o.on_plan = [&](uint64_t objects, uint64_t bytes) {
    Note(g, "sync: " + std::to_string(objects) + " object(s), " + FormatBytes(bytes) + " missing here");
    std::lock_guard lock(mu);
    if (!a.dry_run)
      progress = std::make_unique<Progress>("sync", bytes, g.quiet ? Progress::Mode::kQuiet : Progress::Mode::kAuto);
  };
  o.on_bytes = [&](uint64_t n) {
    if (progress) progress->Add(n);
  };
  transfer::Syncer syncer(*store, o);
  auto report = syncer.Sync(a.selectors);
  if (progress) progress->Finish();
  if (!report.ok()) return Fail(report.status());
  for (const auto& [sel, why] : report->unmatched)
    std::fprintf(stderr, "silo: sync %s: %s\n", sel.c_str(), why.c_str());
  if (a.json) {
    std::printf("%s\n", Json(*report).c_str());
  } else if (!g.quiet) {
    for (const auto& r : report->refs) {
      std::printf("%s %s%s\n", r.target.ToString().c_str(), r.name.c_str(),
                  a.dry_run ? "" : (r.changed ? "" : " (unchanged)"));
    }
  }
  std::fflush(stdout);
  size_t changed = 0;
  for (const auto& r : report->refs) changed += r.changed;
  Note(g, std::string("sync: ") + (a.dry_run ? "dry run, would fetch " : "") + std::to_string(report->refs.size()) +
              " ref(s), " + std::to_string(changed) + " set; " +
              std::to_string(a.dry_run ? report->objects_missing : report->objects_fetched) + " objects, " +
              std::to_string(report->bytes_fetched) + " bytes (" + FormatBytes(report->bytes_fetched) + ") in " +
              FormatDuration(report->seconds) + " (" + FormatRate(report->bytes_fetched, report->seconds) + "); " +
              std::to_string(report->objects_checked) + " checked over " + std::to_string(report->levels) +
              " level(s), " + std::to_string(report->requests) + " request(s)" +
              (report->absent_on_server
                   ? ", " + std::to_string(report->absent_on_server) + " linked object(s) absent on the server too"
                   : ""));
  if (Interrupted()) return kExitInterrupted;
  return report->unmatched.empty() ? kExitOk : kExitFailed;
}

}  // namespace

void RegisterSync(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<SyncArgs>();
  auto* sub =
      app.add_subcommand("sync", "Copy images and snapshots from another silo serve, moving only what is missing");
  sub->add_option("url", a->url, "The other silo serve: http://HOST:PORT")->required();
  sub->add_option("refs", a->selectors,
                  "What to copy: image names as silo images shows (host:5000/app:1.0, host:5000/team/*), "
                  "image/… refs, snapshot/NAME or snapshot/NAME@ID")
      ->required();
  sub->add_option("--token", a->token, "Bearer token with read access on the server");
  sub->add_option("--user", a->user, "USER:PASSWORD with read access on the server (htpasswd)");
  sub->add_option("--tls-verify", a->tls_verify, "Verify the server's TLS certificate")->capture_default_str();
  sub->add_option("--ca-cert", a->ca_cert, "Extra CA certificate (PEM) to trust");
  sub->add_option("-j,--connections", a->connections, "Object batches fetched at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  sub->add_option("--limit-rate", a->limit_rate, "Bytes per second per connection (e.g. 20M)");
  sub->add_option("--batch-size", a->batch_bytes, "Object bytes per request (default 64M; a larger object goes alone)");
  sub->add_flag("--dry-run", a->dry_run, "Only list what would be fetched");
  sub->add_flag("--json", a->json, "Print the report as JSON");
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunSync(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
