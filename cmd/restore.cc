// silo restore SNAPSHOT[:PATH] DIR [--delete]: materialize a snapshot into a directory.
#include "transfer/restore.h"

#include "cmd/command.h"
#include "cmd/snapshot_util.h"
#include "util/progress.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct RestoreArgs {
  std::string snapshot;
  std::string dir;
  bool delete_extra = false;
  bool verify = false;
  size_t threads = 0;
};

int RunRestore(const Globals& g, const RestoreArgs& a) {
  auto store = OpenStore(g, Access::kRead);
  if (!store) return kExitUsage;
  auto resolved = ResolveSnapshotPath(*store, a.snapshot);
  if (!resolved.ok()) return Fail(resolved.status().WithContext("restore"));
  Progress progress("restore",
                    resolved->entry.type == index::EntryType::kDir && a.snapshot.find(':') == std::string::npos
                        ? resolved->snapshot.record.bytes
                        : 0);
  progress.SetUnits("files", "written");
  transfer::RestoreOptions opts;
  opts.delete_extra = a.delete_extra;
  opts.verify_content = a.verify;
  opts.root_metadata = resolved->has_metadata;
  opts.threads = a.threads;
  opts.progress = &progress;
  opts.on_warning = [&](const std::string& m) {
    progress.Clear();
    PrintWarning(m);
  };
  auto r = transfer::RestoreTree(*store, resolved->entry, a.dir, opts);
  progress.Finish();
  if (!r.ok()) return Fail(r.status().WithContext("restore " + a.snapshot));
  Note(g, "restore " + resolved->snapshot.record.name + "@" + resolved->snapshot.id + " to " + a.dir + ": " +
              std::to_string(r->files_written) + " files written, " + std::to_string(r->files_unchanged) +
              " unchanged" + (a.verify ? " (" + std::to_string(r->files_verified) + " by content)" : "") +
              (r->metadata_fixed ? " (" + std::to_string(r->metadata_fixed) + " metadata fixed)" : "") + ", " +
              std::to_string(r->dirs) + " dirs, " + std::to_string(r->symlinks) + " symlinks, " +
              std::to_string(r->hardlinks) + " hardlinks, " + std::to_string(r->deleted) + " deleted; " +
              FormatBytes(r->bytes_written) + " written, " + FormatDuration(progress.elapsed_seconds()) +
              (r->errors ? "; " + std::to_string(r->errors) + " errors" : ""));
  return r->errors ? kExitFailed : kExitOk;
}

}  // namespace

void RegisterRestore(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<RestoreArgs>();
  auto* sub = app.add_subcommand("restore", "Restore a snapshot (NAME, NAME@ID, optionally :PATH) into DIR");
  sub->add_option("snapshot", a->snapshot, "NAME, NAME@ID, NAME:PATH")->required();
  sub->add_option("dir", a->dir, "Target directory (created if missing)")->required();
  sub->add_flag("--delete", a->delete_extra, "Remove what the snapshot lacks from DIR");
  sub->add_flag("--verify", a->verify,
                "Compare existing files by content (SHA-256) instead of trusting size and mtime");
  sub->add_option("--threads", a->threads, "Parallel file writers (default: one per CPU)");
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunRestore(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
