// silo import PACKAGE --snapshot NAME: read a package (zip or tar, plain or compressed) into
// a snapshot. The one entry point for archives brought into the store; image archives will
// dispatch from here too.
#include "cmd/command.h"
#include "cmd/snapshot_util.h"
#include "transfer/package.h"
#include "util/progress.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct ImportArgs {
  std::string package;
  std::string snapshot;
};

int RunImport(const Globals& g, const ImportArgs& a) {
  if (a.snapshot.empty()) {
    return Fail(Status::InvalidArgument("import " + a.package +
                                        ": give --snapshot NAME (importing image archives is not supported yet)"));
  }
  auto store = OpenStore(g, Access::kWrite);
  if (!store) return kExitUsage;
  Progress progress("import " + a.snapshot, 0);
  transfer::ImportRequest req;
  req.name = a.snapshot;
  req.path = a.package;
  req.progress = &progress;
  req.on_warning = [&](const std::string& m) {
    progress.Finish();
    PrintWarning(m);
  };
  auto r = transfer::ImportPackage(*store, req);
  progress.Finish();
  if (!r.ok()) return Fail(r.status());
  std::printf("%s@%s\n", a.snapshot.c_str(), r->snapshot.id.c_str());
  std::fflush(stdout);
  const auto& st = r->stats;
  Note(g, "import " + a.package + " as " + a.snapshot + "@" + r->snapshot.id + ": " + std::to_string(st.files) +
              " files (" + std::to_string(st.hardlinks) + " hardlinks), " + std::to_string(st.dirs) + " dirs, " +
              std::to_string(st.symlinks) + " symlinks; " + FormatBytes(st.bytes_read) + " read, " +
              FormatBytes(st.bytes_added) + " added to the store, " + FormatDuration(progress.elapsed_seconds()) +
              (st.replaced ? "; " + std::to_string(st.replaced) + " entries replaced by later ones" : ""));
  return kExitOk;
}

}  // namespace

void RegisterImport(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<ImportArgs>();
  auto* sub = app.add_subcommand("import", "Import a package (zip, tar, tar.gz, tar.zst, …) as a snapshot");
  sub->add_option("package", a->package, "The package file")->required();
  sub->add_option("--snapshot", a->snapshot, "Commit it as a snapshot of NAME");
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunImport(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
