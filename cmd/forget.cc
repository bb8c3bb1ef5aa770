// silo forget NAME [--keep-last N] [--keep-daily N] [--keep-weekly N] | NAME@ID...:
// remove snapshot refs; `silo gc` then reclaims what nothing else uses.
#include "cmd/command.h"
#include "cmd/snapshot_util.h"

namespace silo::cmd {
namespace {

struct ForgetArgs {
  std::vector<std::string> snapshots;
  index::RetentionPolicy policy;
  bool dry_run = false;
};

int RunForget(const Globals& g, const ForgetArgs& a) {
  if (a.snapshots.empty()) return Fail(Status::InvalidArgument("forget: name NAME (with --keep-*) or NAME@ID"));
  auto store = OpenStore(g, Access::kWrite);
  if (!store) return kExitUsage;
  std::vector<index::SnapshotInfo> doomed;
  uint64_t kept = 0;
  for (const auto& text : a.snapshots) {
    auto spec = index::ParseSnapshotSpec(text);
    if (!spec.ok()) return Fail(spec.status());
    if (spec->has_path) return Fail(Status::InvalidArgument("forget: " + text + ": a snapshot, not a path"));
    if (!spec->id.empty()) {
      auto s = index::ResolveSnapshot(*store, *spec);
      if (!s.ok()) return Fail(s.status().WithContext("forget"));
      doomed.push_back(std::move(s).value());
      continue;
    }
    if (a.policy.empty()) {
      return Fail(
          Status::InvalidArgument("forget " + text + ": give --keep-last/--keep-daily/--keep-weekly or NAME@ID"));
    }
    auto list = index::ListSnapshots(*store, spec->name);
    if (!list.ok()) return Fail(list.status());
    std::vector<int64_t> times;
    for (const auto& s : *list) times.push_back(s.record.time_ns);
    auto keep = index::ApplyRetention(times, a.policy);
    for (size_t i = 0; i < list->size(); ++i) {
      if (keep[i]) {
        ++kept;
      } else {
        doomed.push_back((*list)[i]);
      }
    }
  }
  int rc = kExitOk;
  for (const auto& s : doomed) {
    std::printf("%s %s@%s  %s UTC\n", a.dry_run ? "would forget" : "forget", s.record.name.c_str(), s.id.c_str(),
                index::FormatTime(s.record.time_ns).c_str());
    if (a.dry_run) continue;
    // Compare-and-delete: a ref someone re-pointed meanwhile is left alone.
    Status st = store->DeleteRef(s.ref, s.digest);
    if (!st.ok() && !st.IsNotFound()) rc = std::max(rc, Fail(st.WithContext("forget " + s.ref)));
  }
  Note(g, "forget: " + std::to_string(doomed.size()) + " snapshot(s) " + (a.dry_run ? "would be " : "") +
              "forgotten, " + std::to_string(kept) + " kept; run `silo gc` to reclaim space");
  return rc;
}

}  // namespace

void RegisterForget(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<ForgetArgs>();
  auto* sub = app.add_subcommand("forget", "Forget snapshots by retention rules or by NAME@ID (then run gc)");
  sub->add_option("snapshots", a->snapshots, "NAME (with --keep-*) or NAME@ID");
  sub->add_option("--keep-last", a->policy.last, "Keep the newest N snapshots");
  sub->add_option("--keep-daily", a->policy.daily,
                  "Keep the newest snapshot of each of the last N days (UTC) that have one");
  sub->add_option("--keep-weekly", a->policy.weekly,
                  "Keep the newest snapshot of each of the last N ISO weeks that have one");
  sub->add_flag("-n,--dry-run", a->dry_run, "Only print what would be forgotten");
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunForget(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
