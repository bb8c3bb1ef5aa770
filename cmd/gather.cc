// silo gather LIST REF: one OCI index over every image of a list (ace-dt's gather).
#include "index/gather.h"

#include <cstdio>

#include "cmd/command.h"

namespace silo::cmd {
namespace {

struct GatherArgs {
  std::string list;
  std::string ref;
};

int RunGather(const Globals& g, const GatherArgs& a) {
  auto names = ReadListFile(a.list);
  if (!names.ok()) return Fail(names.status().WithContext("gather: list " + a.list));
  auto target = index::ParseReference(a.ref);
  if (!target.ok()) return Fail(target.status());
  auto store = OpenStore(g, Access::kWrite);
  if (!store) return kExitUsage;
  auto r = index::Gather(*store, *names, *target);
  if (!r.ok()) return Fail(r.status());
  std::printf("%s %s\n", r->digest.ToString().c_str(), target->ToString().c_str());
  Note(g, "gather: " + std::to_string(r->images) + " image(s) in one index, stored as " + r->ref);
  return kExitOk;
}

}  // namespace

void RegisterGather(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<GatherArgs>();
  auto* sub = app.add_subcommand("gather", "One OCI index referencing every image of a list, stored as REF");
  sub->add_option("list", a->list, "Image names in the store, one per line ('-' for stdin)")->required();
  sub->add_option("ref", a->ref, "The reference to store the index under (REGISTRY/REPO:TAG)")->required();
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunGather(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
