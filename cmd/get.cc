// silo get URL -o OUT: fetch a file or a directory from `silo serve` (or a file from any
// HTTP server with Range support) in parallel parts, resumable, verified.
#include "transfer/get.h"

#include <iostream>

#include "cmd/command.h"
#include "cmd/config_apply.h"
#include "transfer/http.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct GetArgs {
  std::string url;
  std::string output;
  int parts = 0;
  int connections = 8;
  std::string timeout = "60s";
  int retries = 5;
  bool follow = false;
  std::string interval = "2s";
  std::string token;
  std::string user;
  std::string limit_rate;
  bool insecure = false;
  std::string ca_file;
};

Result<std::chrono::milliseconds> ParseInterval(const std::string& text) {
  if (text.ends_with("ms") && text.size() > 2 && text.find_first_not_of("0123456789") == text.size() - 2)
    return std::chrono::milliseconds(std::stoll(text.substr(0, text.size() - 2)));
  SILO_ASSIGN_OR_RETURN(auto s, ParseDuration(text));
  return std::chrono::duration_cast<std::chrono::milliseconds>(s);
}

int RunGet(const Globals& g, const GetArgs& a) {
  transfer::GetOptions o;
  o.url = a.url;
  o.output = a.output;
  o.parts = a.parts;
  o.connections = a.connections;
  o.retries = a.retries;
  o.follow = a.follow;
  auto timeout = ParseDuration(a.timeout);
  if (!timeout.ok()) return Fail(timeout.status().WithContext("--timeout"));
  if (timeout->count() <= 0) return Fail(Status::InvalidArgument("--timeout must be positive"));
  o.timeout = *timeout;
  auto interval = ParseInterval(a.interval);
  if (!interval.ok()) return Fail(interval.status().WithContext("--interval"));
  if (interval->count() <= 0) return Fail(Status::InvalidArgument("--interval must be positive"));
  o.interval = *interval;
  if (a.retries < 0) return Fail(Status::InvalidArgument("--retries must be 0 or more"));
  if (!a.token.empty() && !a.user.empty()) return Fail(Status::InvalidArgument("give --token or --user, not both"));
  if (!a.token.empty()) o.authorization = "Bearer " + a.token;
  if (!a.user.empty()) {
    if (a.user.find(':') == std::string::npos) return Fail(Status::InvalidArgument("--user takes USER:PASSWORD"));
    o.authorization = "Basic " + transfer::Base64Encode(a.user);
  }
  if (!a.limit_rate.empty()) {
    auto rate = ParseSize(a.limit_rate);
    if (!rate.ok()) return Fail(rate.status().WithContext("--limit-rate"));
    o.http.max_recv_speed = *rate;
  }
  o.http.tls_verify = !a.insecure;
  o.http.ca_file = a.ca_file;
  // Large reads save callbacks; libcurl checks its rate limit only between bursts of reads,
  // so a limited transfer keeps the default buffer.
  if (o.http.max_recv_speed == 0) o.http.buffer_size = 512 * 1024;
  o.progress_mode = g.quiet ? Progress::Mode::kQuiet : Progress::Mode::kAuto;
  o.on_note = [&g](const std::string& line) { Note(g, line); };
  transfer::GetStats stats;
  auto r = transfer::Get(o, &stats);
  if (!g.quiet && (r.ok() || r.status().code() == Code::kInterrupted)) {
    std::cerr << FormatGetSummary(stats) << "\n";
  }
  if (!r.ok()) return Fail(r.status());
  return kExitOk;
}

}  // namespace

void RegisterGet(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<GetArgs>();
  auto* sub =
      app.add_subcommand("get", "Fetch a file or directory over HTTP (from silo serve, or a file from any server)");
  sub->add_option("url", a->url, "http(s)://HOST:PORT/files/SHARE/PATH (a directory ends with /), or any file URL")
      ->required();
  sub->add_option("-o,--output", a->output, "File or directory to write (an existing directory receives the file)")
      ->required();
  sub->add_option("--parts", a->parts, "Cut a file into at most this many parts (0: one per 8 MiB)");
  sub->add_option("--connections", a->connections, "Parts or files fetched at once");
  sub->add_option("--timeout", a->timeout,
                  "A connection or transfer idle (below 1 KiB/s) this long fails (Data_timeout)");
  sub->add_option("--retries", a->retries, "Retries per part after a network failure or 5xx (Max_timeout_retry)");
  sub->add_flag("--follow", a->follow, "Keep polling and fetch what is appended or added, until Ctrl-C");
  sub->add_option("--interval", a->interval, "Polling interval for --follow (\"2s\", \"500ms\")");
  sub->add_option("--token", a->token, "Bearer token for the server");
  sub->add_option("--user", a->user, "USER:PASSWORD for Basic authentication");
  sub->add_option("--limit-rate", a->limit_rate, "At most this many bytes per second per connection (\"10M\")");
  sub->add_flag("--insecure", a->insecure, "Do not verify the server's TLS certificate");
  sub->add_option("--ca-file", a->ca_file, "Extra CA bundle (PEM) for TLS");
  sub->callback([&ctx, a, sub] {
    if (Status s = ApplyConfig(*sub, "get"); !s.ok()) {
      ctx.run = [s] { return Fail(s); };
      return;
    }
    ctx.run = [&ctx, a] { return RunGet(ctx.globals, *a); };
  });
}

}  // namespace silo::cmd
