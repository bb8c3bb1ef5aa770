// silo import: the one entry point for archives brought into the store.
//   silo import ARCHIVE…|LAYOUT-DIR|SYNC-DIR   image archives (oci-archive or docker-archive
//       written by silo export, skopeo, docker save or podman save; tar/tar.gz/tar.zst
//       detected by magic, split parts joined), OCI layouts and batch-export sync directories;
//   silo import PACKAGE --snapshot NAME         a package (zip or tar) as a snapshot.
#include "cmd/command.h"
#include "cmd/snapshot_util.h"
#include "transfer/image_import.h"
#include "transfer/package.h"
#include "util/progress.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct ImportArgs {
  std::vector<std::string> inputs;
  std::string snapshot;
  std::string default_registry = "docker.io";
};

int RunPackageImport(const Globals& g, const ImportArgs& a) {
  if (a.inputs.size() != 1) return Fail(Status::InvalidArgument("import --snapshot: give one package"));
  const std::string& package = a.inputs[0];
  auto store = OpenStore(g, Access::kWrite);
  if (!store) return kExitUsage;
  Progress progress("import " + a.snapshot, 0);
  transfer::ImportRequest req;
  req.name = a.snapshot;
  req.path = package;
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
  Note(g, "import " + package + " as " + a.snapshot + "@" + r->snapshot.id + ": " + std::to_string(st.files) +
              " files (" + std::to_string(st.hardlinks) + " hardlinks), " + std::to_string(st.dirs) + " dirs, " +
              std::to_string(st.symlinks) + " symlinks; " + FormatBytes(st.bytes_read) + " read, " +
              FormatBytes(st.bytes_added) + " added to the store, " + FormatDuration(progress.elapsed_seconds()) +
              (st.replaced ? "; " + std::to_string(st.replaced) + " entries replaced by later ones" : ""));
  return kExitOk;
}

int RunImageImport(const Globals& g, const ImportArgs& a) {
  for (const auto& in : a.inputs) {
    if (!transfer::LooksLikeImageInput(in)) {
      return Fail(Status::InvalidArgument("import " + in +
                                          ": not an image archive, OCI layout or sync directory (to import a "
                                          "package as a snapshot, give --snapshot NAME)"));
    }
  }
  auto store = OpenStore(g, Access::kWrite);
  if (!store) return kExitUsage;
  Progress progress("import", 0);
  transfer::ImageImportOptions opts;
  opts.default_registry = a.default_registry;
  opts.progress = &progress;
  opts.on_warning = [&](const std::string& m) {
    progress.Finish();
    PrintWarning(m);
  };
  auto r = transfer::ImportImages(*store, a.inputs, opts);
  progress.Finish();
  if (!r.ok()) return Fail(r.status());
  for (const auto& img : r->images) {
    std::printf("%s %s\n", img.digest.c_str(), img.ref.empty() ? "(no name)" : img.ref.substr(6).c_str());
  }
  std::fflush(stdout);
  Note(g, "import: " + std::to_string(r->archives) + " archive(s), " + std::to_string(r->images.size()) + " images; " +
              std::to_string(r->blobs_stored) + " blobs stored (" + FormatBytes(r->bytes_stored) + "), " +
              std::to_string(r->blobs_present) + " already present, " + FormatDuration(progress.elapsed_seconds()));
  return kExitOk;
}

}  // namespace

void RegisterImport(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<ImportArgs>();
  auto* sub = app.add_subcommand(
      "import", "Import image archives, OCI layouts, sync dirs; or a package as a snapshot (--snapshot)");
  sub->add_option("inputs", a->inputs, "Archives (or their parts), layout or sync directories, or one package")
      ->required();
  sub->add_option("--snapshot", a->snapshot, "Import the package as a snapshot of NAME");
  sub->add_option("--default-registry", a->default_registry,
                  "Registry for image names that carry none (Docker's rule: docker.io)");
  sub->callback([&ctx, a] {
    ctx.run = [&ctx, a] {
      return a->snapshot.empty() ? RunImageImport(ctx.globals, *a) : RunPackageImport(ctx.globals, *a);
    };
  });
}

}  // namespace silo::cmd
