// silo archive SNAPSHOT[:PATH] -o OUT [--format FMT]: write a snapshot as a package (zip,
// tar, tar.gz, tar.zst). When OUT is a directory the package is named as dsync names its
// packages: <name>-<fingerprint>.<ext> (transfer/package.h: PackageFingerprint).
#include <sys/stat.h>

#include "cmd/command.h"
#include "cmd/snapshot_util.h"
#include "transfer/package.h"
#include "util/progress.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct ArchiveArgs {
  std::string snapshot;
  std::string out;
  std::string format;
};

int RunArchive(const Globals& g, const ArchiveArgs& a) {
  struct stat st {};
  const bool to_dir =
      (!a.out.empty() && a.out.back() == '/') || (::stat(a.out.c_str(), &st) == 0 && S_ISDIR(st.st_mode));
  Result<transfer::PackageFormat> format = !a.format.empty() ? transfer::ParsePackageFormat(a.format)
                                           : to_dir ? Result<transfer::PackageFormat>(transfer::PackageFormat::kZip)
                                                    : transfer::PackageFormatOfPath(a.out);
  if (!format.ok()) return Fail(format.status().WithContext("archive"));
  auto store = OpenStore(g, Access::kRead);
  if (!store) return kExitUsage;
  auto resolved = ResolveSnapshotPath(*store, a.snapshot);
  if (!resolved.ok()) return Fail(resolved.status().WithContext("archive"));
  std::string out = a.out;
  if (to_dir) {
    std::vector<store::Digest> roots;
    if (a.snapshot.find(':') == std::string::npos) {
      for (const auto& src : resolved->snapshot.record.sources) roots.push_back(src.tree);
    } else {
      roots.push_back(resolved->entry.digest);
    }
    if (roots.empty()) roots.push_back(resolved->snapshot.record.root);
    while (out.size() > 1 && out.back() == '/') out.pop_back();
    out += "/" + resolved->snapshot.record.name + "-" + transfer::PackageFingerprint(roots) + "." +
           std::string(transfer::PackageExtension(*format));
  }
  Progress progress("archive", a.snapshot.find(':') == std::string::npos ? resolved->snapshot.record.bytes : 0);
  transfer::PackageOptions opts;
  opts.format = *format;
  opts.progress = &progress;
  opts.on_warning = [&](const std::string& m) {
    progress.Finish();
    PrintWarning(m);
  };
  auto r = transfer::WritePackage(*store, resolved->entry, out, opts);
  progress.Finish();
  if (!r.ok()) return Fail(r.status().WithContext("archive " + a.snapshot));
  std::printf("%s\n", out.c_str());
  std::fflush(stdout);
  Note(g, "archive " + resolved->snapshot.record.name + "@" + resolved->snapshot.id + " to " + out + ": " +
              std::to_string(r->files) + " files, " + std::to_string(r->dirs) + " dirs, " +
              std::to_string(r->symlinks) + " symlinks, " + std::to_string(r->hardlinks) + " hardlinks; " +
              FormatBytes(r->content_bytes) + " of content in " + FormatBytes(r->package_bytes) + ", " +
              FormatDuration(progress.elapsed_seconds()) +
              (r->skipped ? "; " + std::to_string(r->skipped) + " entries the format cannot hold left out" : ""));
  return kExitOk;
}

}  // namespace

void RegisterArchive(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<ArchiveArgs>();
  auto* sub = app.add_subcommand("archive", "Write a snapshot (NAME, NAME@ID, optionally :PATH) as a zip/tar package");
  sub->add_option("snapshot", a->snapshot, "NAME, NAME@ID, NAME:PATH")->required();
  sub->add_option("-o,--output", a->out,
                  "OUT.{zip,tar,tar.gz,tgz,tar.zst}, or a directory: then named NAME-FINGERPRINT.EXT")
      ->required();
  sub->add_option("--format", a->format,
                  "zip, tar, tar.gz, tgz, tar.zst (default: from OUT's suffix; zip for a directory)");
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunArchive(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
