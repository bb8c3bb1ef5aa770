// silo: the command line. Parses, dispatches to one command, maps errors to exit codes.
#include <malloc.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "cmd/command.h"
#include "util/interrupt.h"
#include "util/progress.h"

#ifndef SILO_VERSION
#define SILO_VERSION "0.0.0"
#endif

namespace {

std::string DefaultStorePath() {
  if (const char* s = std::getenv("SILO_STORE"); s && *s) return s;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::string(x) + "/silo";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.local/share/silo";
  return ".silo";
}

}  // namespace

int main(int argc, char** argv) {
  mallopt(M_ARENA_MAX, 2);  // two malloc arenas, not 8 per core: lower peak RSS with many threads
  // The soft descriptor limit up to the hard one (as Go programs do): RocksDB keeps up to
  // 1024 table files open, and restore holds directories open while it sorts files.
  if (struct rlimit rl{}; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  using namespace silo::cmd;
  Context ctx;
  ctx.globals.store_path = DefaultStorePath();

  CLI::App app{"silo: a content-addressed store for images, snapshots and files"};
  app.set_version_flag("--version", std::string("silo ") + SILO_VERSION);
  app.option_defaults()->always_capture_default();
  app.add_option("--store", ctx.globals.store_path, "Store directory ($SILO_STORE, else ~/.local/share/silo)")
      ->capture_default_str();
  app.add_flag("--debug", ctx.globals.debug, "Print extra diagnostics");
  app.add_flag("-q,--quiet", ctx.globals.quiet, "Print no progress or summaries");
  app.require_subcommand(1);
  app.fallthrough();

  RegisterPut(app, ctx);
  RegisterCat(app, ctx);
  RegisterStat(app, ctx);
  RegisterRef(app, ctx);
  RegisterGc(app, ctx);
  RegisterFsck(app, ctx);
  RegisterDu(app, ctx);
  RegisterPull(app, ctx);
  RegisterImages(app, ctx);
  RegisterSnapshot(app, ctx);
  RegisterRestore(app, ctx);
  RegisterSnapshots(app, ctx);
  RegisterLs(app, ctx);
  RegisterDiff(app, ctx);
  RegisterForget(app, ctx);
  RegisterTreeIndex(app, ctx);
  RegisterArchive(app, ctx);
  RegisterImport(app, ctx);
  RegisterGet(app, ctx);
  RegisterConfig(app, ctx);
  RegisterServe(app, ctx);
  RegisterPush(app, ctx);
  RegisterMirror(app, ctx);
  RegisterGather(app, ctx);
  RegisterTree(app, ctx);
  RegisterExport(app, ctx);
  RegisterBatchExport(app, ctx);
  RegisterSync(app, ctx);
  RegisterTracker(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  silo::SetQuiet(ctx.globals.quiet);
  silo::SetDebug(ctx.globals.debug);
  silo::InstallInterruptHandlers();
  if (!ctx.run) return kExitUsage;
  try {
    return ctx.run();
  } catch (const std::exception& e) {
    std::cerr << "silo: internal error: " << e.what() << "\n";
    return kExitFailed;
  }
}
