// silo diff A B: what changed between two snapshots (or paths in them).
#include "cmd/command.h"
#include "cmd/snapshot_util.h"
#include "index/tree_diff.h"

namespace silo::cmd {
namespace {

struct DiffArgs {
  std::string a;
  std::string b;
};

int RunDiff(const Globals& g, const DiffArgs& args) {
  auto store = OpenStore(g, Access::kRead);
  if (!store) return kExitUsage;
  auto a = ResolveSnapshotPath(*store, args.a);
  if (!a.ok()) return Fail(a.status().WithContext("diff"));
  auto b = ResolveSnapshotPath(*store, args.b);
  if (!b.ok()) return Fail(b.status().WithContext("diff"));
  if (a->entry.type != index::EntryType::kDir || b->entry.type != index::EntryType::kDir) {
    return Fail(Status::InvalidArgument("diff: both sides must name directories"));
  }
  uint64_t counts[4] = {0, 0, 0, 0};
  Status s = index::DiffTrees(*store, a->entry.digest, b->entry.digest, [&](const index::TreeChange& c) {
    counts[static_cast<int>(c.kind)]++;
    std::printf("%c %s%s\n", index::ChangeChar(c.kind), c.path.c_str(), c.type == index::EntryType::kDir ? "/" : "");
  });
  std::fflush(stdout);
  if (!s.ok()) return Fail(s.WithContext("diff"));
  Note(g, "diff: " + std::to_string(counts[0]) + " added, " + std::to_string(counts[1]) + " removed, " +
              std::to_string(counts[2]) + " changed, " + std::to_string(counts[3]) + " metadata only");
  return kExitOk;
}

}  // namespace

void RegisterDiff(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<DiffArgs>();
  auto* sub = app.add_subcommand("diff", "Show what changed between snapshots A and B (+ - M m)");
  sub->add_option("a", a->a, "Older snapshot: NAME, NAME@ID, optionally :PATH")->required();
  sub->add_option("b", a->b, "Newer snapshot")->required();
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunDiff(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
