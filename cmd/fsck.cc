// silo fsck [--repair]: re-hash everything; report (and optionally remove) damage.
#include <cstdio>

#include "cmd/command.h"
#include "util/progress.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct FsckArgs {
  bool repair = false;
};

int RunFsck(const Globals& g, const FsckArgs& a) {
  auto store = OpenStore(g, a.repair ? Access::kWrite : Access::kRead);
  if (!store) return kExitUsage;
  Progress progress("fsck", 0);
  store::FsckOptions o;
  o.repair = a.repair;
  o.on_problem = [&](const std::string& line) { std::printf("damaged: %s\n", line.c_str()); };
  o.on_progress = [&](uint64_t n) { progress.Add(n); };
  auto r = store->Check(o);
  progress.Finish();
  if (!r.ok()) return Fail(r.status());
  std::fflush(stdout);
  Note(g, "fsck: " + std::to_string(r->objects_checked) + " object(s), " + std::to_string(r->chunks_checked) +
              " chunk(s), " + FormatBytes(r->bytes_checked) + " re-hashed in " +
              FormatDuration(progress.elapsed_seconds()));
  if (r->clean()) {
    Note(g, "fsck: no problems found");
    return kExitOk;
  }
  Note(g, "fsck: " + std::to_string(r->damaged_objects.size()) + " damaged object(s), " +
              std::to_string(r->damaged_chunks) + " damaged chunk(s), " + std::to_string(r->other_problems) +
              " other problem(s)" +
              (a.repair ? "; removed " + std::to_string(r->repaired) + " record(s) so they can be fetched again"
                        : "; run `silo fsck --repair` to remove them"));
  return kExitFailed;
}

}  // namespace

void RegisterFsck(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<FsckArgs>();
  auto* sub = app.add_subcommand("fsck", "Re-hash every object and chunk and report damage");
  sub->add_flag("--repair", a->repair, "Remove damaged objects and chunks so they can be stored again");
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunFsck(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
