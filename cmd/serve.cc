// silo serve: the store over HTTP (registry API, /metrics, /healthz); serve stop|status|restart.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <set>

#include "cmd/command.h"
#include "cmd/config_apply.h"
#include "cmd/registry_flags.h"
#include "cmd/serve_shares.h"
#include "transfer/server/admin_api.h"
#include "transfer/server/daemon.h"
#include "transfer/server/metrics.h"
#include "transfer/server/proxy_cache.h"
#include "transfer/server/registry_api.h"
#include "transfer/server/server.h"
#include "transfer/server/sync_api.h"
#include "transfer/server/upstream.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct ServeArgs {
  std::vector<std::string> listen;
  std::string tls_cert, tls_key;
  std::string default_registry = "localhost";
  bool read_only = false;
  std::string access_log;
  std::string log;
  bool daemon = false;
  int io_threads = 1;
  int threads = 32;
  std::string chunk_cache_size = "256M";
  uint32_t max_header = 16 * 1024;
  std::string grace = "10s";
  std::string stop_timeout = "30s";
  std::vector<std::string> raw_args;  // as given, for restart
  ShareArgs share;                    // --share and the access options (cmd/serve_shares.h)
  // The pull-through cache.
  std::vector<std::string> upstream;
  RegistryFlags registry;  // auth, TLS, retries towards the upstreams
  std::string tag_ttl = "5m";
  std::string cache_max_size;
  std::string cache_interval = "10s";
  std::string cache_gc_grace = "15m";
};

// The upstreams and cache options from the flags (nothing when no --upstream was given).
Status SetUpProxy(const ServeArgs& a, server::Upstreams* upstreams, server::ProxyOptions* po) {
  if (a.upstream.empty()) {
    if (!a.cache_max_size.empty()) return Status::InvalidArgument("--cache-max-size needs --upstream");
    return Status::Ok();
  }
  std::vector<server::UpstreamSpec> specs;
  std::set<std::string> names;
  for (const auto& u : a.upstream) {
    SILO_ASSIGN_OR_RETURN(auto spec, server::ParseUpstreamSpec(u));
    names.insert(spec.registry);
    specs.push_back(std::move(spec));
  }
  SILO_ASSIGN_OR_RETURN(auto options, MakeRegistryOptions(a.registry, names));
  for (const auto& spec : specs) {
    auto o = options;
    o.plain_http = IsPlainHttp(a.registry, spec.registry);
    upstreams->Add(spec, o);
  }
  auto duration = [](const std::string& text, const char* flag, std::chrono::seconds* out) -> Status {
    auto d = ParseDuration(text);
    if (!d.ok()) return d.status().WithContext(flag);
    *out = *d;
    return Status::Ok();
  };
  SILO_TRY(duration(a.tag_ttl, "--tag-ttl", &po->tag_ttl));
  SILO_TRY(duration(a.cache_interval, "--cache-interval", &po->interval));
  SILO_TRY(duration(a.cache_gc_grace, "--cache-gc-grace", &po->gc_grace));
  if (po->interval.count() == 0) return Status::InvalidArgument("--cache-interval: must be at least 1s");
  if (!a.cache_max_size.empty()) {
    auto size = ParseSize(a.cache_max_size);
    if (!size.ok()) return size.status().WithContext("--cache-max-size");
    po->max_size = *size;
  }
  po->log = [](const std::string& line) { std::fprintf(stderr, "silo serve: %s\n", line.c_str()); };
  return Status::Ok();
}

std::string Endpoints(const server::ServeInfo& info) {
  std::string out;
  for (const auto& e : info.endpoints) out += (out.empty() ? "" : " ") + e;
  return out;
}

int RunServe(const Globals& g, const ServeArgs& a) {
  std::string pidfile = server::PidfilePath(g.store_path);
  if (auto running = server::ReadPidfile(pidfile); running.ok() && *running) {
    return Fail(Status::Conflict("store " + g.store_path + " is already served by pid " +
                                 std::to_string((*running)->pid) + " on " + Endpoints(**running)));
  }
  server::ServerOptions so;
  so.listen = a.listen.empty() ? std::vector<std::string>{"127.0.0.1:5000"} : a.listen;
  so.tls_cert = a.tls_cert;
  so.tls_key = a.tls_key;
  so.io_threads = static_cast<size_t>(std::max(1, a.io_threads));
  so.blocking_threads = static_cast<size_t>(std::max(1, a.threads));
  so.header_limit = a.max_header;
  so.access_log = a.access_log;
  auto grace = ParseDuration(a.grace);
  if (!grace.ok()) return Fail(grace.status().WithContext("--shutdown-grace"));
  so.shutdown_grace = *grace;
  for (const auto& l : so.listen) {
    if (auto p = server::ParseListenAddress(l); !p.ok()) return Fail(p.status());
  }

  std::string log_path = a.log.empty() ? g.store_path + "/serve.log" : a.log;
  if (a.daemon) {
    auto pid = server::Daemonize(log_path);
    if (!pid.ok()) return Fail(pid.status());
    if (*pid > 0) {
      auto info = server::ReadPidfile(pidfile);
      std::string where = info.ok() && *info ? Endpoints(**info) : "";
      std::printf("silo serve: running as pid %d on %s (log %s)\n", static_cast<int>(*pid), where.c_str(),
                  log_path.c_str());
      return kExitOk;
    }
  }
  auto fail = [&](const Status& s) {
    server::DaemonFailed(s.message());
    return Fail(s);
  };

  server::Upstreams upstreams;
  server::ProxyOptions proxy_options;
  if (Status s = SetUpProxy(a, &upstreams, &proxy_options); !s.ok()) return fail(s);
  // A long-running server: a fixed mmap threshold (glibc otherwise raises it after each
  // free of a large block, so peak-sized buffers pile up in the heaps), trimming above
  // 64 MiB and four malloc arenas instead of eight per core keep the resident size near
  // what the responses in flight use. Buffers up to 32 MiB (response pieces, chunks,
  // RocksDB blob values) still come from the heap: mapping each one afresh (a threshold of
  // 256 KiB) halved blob throughput in bench/serve.
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 64 << 20);
  ::mallopt(M_ARENA_MAX, 4);

  store::OpenOptions oo;
  auto cache_bytes = ParseSize(a.chunk_cache_size);
  if (!cache_bytes.ok()) return fail(cache_bytes.status().WithContext("--chunk-cache-size"));
  oo.chunk_cache_bytes = static_cast<size_t>(*cache_bytes);
  auto opened = store::Store::Open(g.store_path, oo);
  if (!opened.ok()) return fail(opened.status());
  std::unique_ptr<store::Store> store = std::move(opened).value();

  std::unique_ptr<server::ProxyCache> proxy;
  if (!upstreams.empty()) proxy = std::make_unique<server::ProxyCache>(*store, upstreams, proxy_options);
  server::RegistryApiOptions ro;
  ro.default_registry = a.default_registry;
  ro.read_only = a.read_only;
  ro.proxy = proxy.get();
  server::RegistryApi api(*store, ro);
  auto token = server::NewAdminToken();
  if (!token.ok()) return fail(token.status());
  server::AdminApi admin(*store, *token);
  server::Router router;
  api.Register(router);
  admin.Register(router);
  server::SyncApi sync_api(*store);
  sync_api.Register(router);
  auto shares = SetUpShares(a.share, *store, router);
  if (!shares.ok()) return fail(shares.status());
  server::Server srv(std::move(router), so);
  srv.SetMetricsHook([&api, &proxy, &store] {
    return api.MetricsText() + server::ChunkCacheMetricsText(store->chunk_cache_stats()) +
           (proxy ? proxy->MetricsText() : "");
  });
  if (Status s = srv.Start(); !s.ok()) return fail(s);

  server::ServeInfo info;
  info.pid = ::getpid();
  std::string scheme = a.tls_cert.empty() ? "http://" : "https://";
  for (const auto& e : srv.endpoints()) info.endpoints.push_back(scheme + e);
  info.args = a.raw_args;
  info.token = *token;
  if (Status s = server::WritePidfile(pidfile, info); !s.ok()) return fail(s);
  if (!g.quiet) std::fprintf(stderr, "silo serve: store %s on %s\n", g.store_path.c_str(), Endpoints(info).c_str());
  server::DaemonReady();
  srv.Run();
  if (proxy) proxy->Stop();  // downloads still feeding responses end, so the server can finish
  // Only our own pidfile is removed (a restart may have written a new one).
  if (auto now = server::ReadPidfile(pidfile); !now.ok() || !*now || (*now)->pid == ::getpid()) {
    ::unlink(pidfile.c_str());
  }
  if (!g.quiet) std::fprintf(stderr, "silo serve: stopped\n");
  return kExitOk;
}

int RunStop(const Globals& g, const std::string& timeout_text) {
  auto timeout = ParseDuration(timeout_text);
  if (!timeout.ok()) return Fail(timeout.status().WithContext("--timeout"));
  auto info = server::ReadPidfile(server::PidfilePath(g.store_path));
  if (!info.ok()) return Fail(info.status());
  if (!*info) {
    std::printf("silo serve: not running on store %s\n", g.store_path.c_str());
    return kExitOk;
  }
  pid_t pid = (*info)->pid;
  Status s = server::StopProcess(pid, std::chrono::duration_cast<std::chrono::milliseconds>(*timeout));
  if (!s.ok()) return Fail(s);
  std::printf("silo serve: stopped pid %d\n", static_cast<int>(pid));
  return kExitOk;
}

int RunStatus(const Globals& g) {
  auto info = server::ReadPidfile(server::PidfilePath(g.store_path));
  if (!info.ok()) return Fail(info.status());
  if (!*info) {
    std::printf("silo serve: not running on store %s\n", g.store_path.c_str());
    return kExitFailed;
  }
  std::printf("silo serve: running, pid %d, on %s\n", static_cast<int>((*info)->pid), Endpoints(**info).c_str());
  return kExitOk;
}

int RunRestart(const Globals& g, const std::string& timeout_text) {
  auto info = server::ReadPidfile(server::PidfilePath(g.store_path));
  if (!info.ok()) return Fail(info.status());
  if (!*info) return Fail(Status::NotFound("silo serve is not running on store " + g.store_path));
  std::vector<std::string> args = (*info)->args;
  if (int rc = RunStop(g, timeout_text); rc != kExitOk) return rc;
  // Start again with the recorded arguments, in the background.
  std::vector<std::string> argv = {"/proc/self/exe", "--store", g.store_path, "serve"};
  argv.insert(argv.end(), args.begin(), args.end());
  bool has_daemon = false;
  for (const auto& x : args) has_daemon |= x == "--daemon";
  if (!has_daemon) argv.push_back("--daemon");
  std::vector<char*> cargv;
  for (auto& x : argv) cargv.push_back(x.data());
  cargv.push_back(nullptr);
  std::fflush(nullptr);
  ::execv("/proc/self/exe", cargv.data());
  return Fail(Status::FromErrno("restart: exec silo", errno));
}

}  // namespace

void RegisterServe(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<ServeArgs>();
  auto* sub =
      app.add_subcommand("serve", "Serve the store over HTTP: the OCI registry API, file shares, /metrics, /healthz");
  sub->add_option("--listen", a->listen, "ADDR:PORT to listen on (several allowed; IPv6 as [ADDR]:PORT)")
      ->default_str("127.0.0.1:5000");
  sub->add_option("--tls-cert", a->tls_cert, "PEM certificate chain: serve HTTPS");
  sub->add_option("--tls-key", a->tls_key, "PEM private key for --tls-cert");
  sub->add_option("--default-registry", a->default_registry,
                  "Registry that repository names without one belong to (refs image/REGISTRY/NAME:TAG)")
      ->capture_default_str();
  sub->add_flag("--read-only", a->read_only, "Refuse pushes and deletes");
  sub->add_option("--access-log", a->access_log, "Access log: a file, - for stdout, off (default: stderr)");
  sub->add_option("--log", a->log, "With --daemon: where output goes (default STORE/serve.log)");
  sub->add_flag("--daemon", a->daemon, "Run in the background (pidfile STORE/serve.pid)");
  sub->add_option(
         "--io-threads", a->io_threads,
         "Threads doing network I/O (one keeps a 2-core host fastest: a second hands completions between cores)")
      ->capture_default_str();
  sub->add_option("--threads", a->threads, "Threads serving requests (store and disk reads)")->capture_default_str();
  sub->add_option("--chunk-cache-size", a->chunk_cache_size,
                  "Memory for verified chunks shared by all responses (a hot blob is read from the store "
                  "once, not per request); 0 turns it off")
      ->capture_default_str();
  sub->add_option("--max-header-size", a->max_header, "Largest request line plus headers, in bytes")
      ->capture_default_str();
  sub->add_option("--shutdown-grace", a->grace, "On SIGTERM, how long in-flight responses may take")
      ->capture_default_str();
  AddShareOptions(*sub, a->share);
  sub->add_option("--upstream", a->upstream,
                  "Pull-through cache: fill misses of REGISTRY's repositories from it, or from URL "
                  "(REGISTRY[=URL], e.g. docker.io=http://127.0.0.1:5001; repeatable)")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_option("--tag-ttl", a->tag_ttl, "Cached tags younger than this are served without asking the upstream")
      ->capture_default_str();
  sub->add_option("--cache-max-size", a->cache_max_size,
                  "Cap on the cached images (e.g. 50G): least recently used ones are evicted, then gc runs");
  sub->add_option("--cache-interval", a->cache_interval, "How often access times are saved and the cap checked")
      ->capture_default_str();
  sub->add_option("--cache-gc-grace", a->cache_gc_grace,
                  "The collection after an eviction keeps objects younger than this")
      ->capture_default_str();
  AddRegistryAccessFlags(sub, a->registry);
  sub->require_subcommand(0, 1);

  auto timeout = std::make_shared<std::string>("30s");
  auto* stop = sub->add_subcommand("stop", "Stop the server running on this store (SIGTERM, wait)");
  stop->add_option("--timeout", *timeout, "How long to wait for it to exit")->capture_default_str();
  stop->callback([&ctx, timeout] { ctx.run = [&ctx, timeout] { return RunStop(ctx.globals, *timeout); }; });
  auto* status = sub->add_subcommand("status", "Whether a server runs on this store, its pid and addresses");
  status->callback([&ctx] { ctx.run = [&ctx] { return RunStatus(ctx.globals); }; });
  auto* restart = sub->add_subcommand("restart", "Stop the server and start it again with the same arguments");
  restart->add_option("--timeout", *timeout, "How long to wait for it to exit")->capture_default_str();
  restart->callback([&ctx, timeout] { ctx.run = [&ctx, timeout] { return RunRestart(ctx.globals, *timeout); }; });

  sub->callback([&ctx, a, sub] {
    if (!sub->get_subcommands().empty()) return;
    // Remember the arguments as given, for restart.
    a->raw_args.clear();
    for (const auto* opt : sub->get_options()) {
      if (opt->get_name() == "--help" || opt->count() == 0) continue;
      std::string name = opt->get_name();
      if (name == "--daemon") continue;
      if (opt->get_type_size() == 0) {
        a->raw_args.push_back(name);
        continue;
      }
      for (const auto& r : opt->results()) {
        a->raw_args.push_back(name);
        a->raw_args.push_back(r);
      }
    }
    if (Status s = ApplyConfig(*sub, "serve"); !s.ok()) {
      ctx.run = [s] { return Fail(s); };
      return;
    }
    ctx.run = [&ctx, a] { return RunServe(ctx.globals, *a); };
  });
}

}  // namespace silo::cmd
