// silo ref set|get|ls|rm: named roots.
#include <cstdio>

#include "cmd/command.h"
#include "transfer/server/admin_api.h"

namespace silo::cmd {
namespace {

struct RefArgs {
  std::string name;
  std::string target;
  std::string expect;
  bool create_only = false;
  std::string prefix;
  bool json = false;
};

int RunSet(const Globals& g, const RefArgs& a) {
  auto d = store::Digest::Parse(a.target);
  if (!d.ok()) return Fail(d.status());
  std::optional<std::optional<store::Digest>> expected;
  if (a.create_only) expected = std::optional<store::Digest>();
  if (!a.expect.empty()) {
    auto e = store::Digest::Parse(a.expect);
    if (!e.ok()) return Fail(e.status().WithContext("--expect"));
    expected = std::optional<store::Digest>(*e);
  }
  if (auto served = server::RunningServer(g.store_path)) {  // it owns the store: it sets the ref
    Status s = server::RefThroughServer(*served, a.name, d->ToString(), a.create_only ? "-" : a.expect);
    return s.ok() ? kExitOk : Fail(s);
  }
  auto store = OpenStore(g, Access::kWrite);
  if (!store) return kExitUsage;
  Status s = store->SetRef(a.name, *d, expected);
  return s.ok() ? kExitOk : Fail(s);
}

int RunGet(const Globals& g, const RefArgs& a) {
  auto store = OpenStore(g, Access::kRead);
  if (!store) return kExitUsage;
  auto r = store->GetRef(a.name);
  if (!r.ok()) return Fail(r.status());
  if (!*r) return Fail(Status::NotFound("ref " + a.name + ": no such ref"));
  std::printf("%s\n", (*r)->ToString().c_str());
  return kExitOk;
}

int RunLs(const Globals& g, const RefArgs& a) {
  auto store = OpenStore(g, Access::kRead);
  if (!store) return kExitUsage;
  auto refs = store->ListRefs(a.prefix);
  if (!refs.ok()) return Fail(refs.status());
  if (a.json) {
    std::printf("[");
    for (size_t i = 0; i < refs->size(); ++i) {
      std::printf("%s{\"name\":%s,\"target\":%s}", i ? "," : "", JsonQuote((*refs)[i].name).c_str(),
                  JsonQuote((*refs)[i].target.ToString()).c_str());
    }
    std::printf("]\n");
    return kExitOk;
  }
  for (const auto& r : *refs) std::printf("%s %s\n", r.target.ToString().c_str(), r.name.c_str());
  return kExitOk;
}

int RunRm(const Globals& g, const RefArgs& a) {
  std::optional<store::Digest> expected;
  if (!a.expect.empty()) {
    auto e = store::Digest::Parse(a.expect);
    if (!e.ok()) return Fail(e.status().WithContext("--expect"));
    expected = *e;
  }
  if (auto served = server::RunningServer(g.store_path)) {  // it owns the store: it removes the ref
    Status s = server::RefThroughServer(*served, a.name, "", a.expect);
    return s.ok() ? kExitOk : Fail(s);
  }
  auto store = OpenStore(g, Access::kWrite);
  if (!store) return kExitUsage;
  Status s = store->DeleteRef(a.name, expected);
  return s.ok() ? kExitOk : Fail(s);
}

}  // namespace

void RegisterRef(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<RefArgs>();
  auto* ref = app.add_subcommand("ref", "Named roots: image/…, snapshot/…, export/…");
  ref->require_subcommand(1);

  auto* set = ref->add_subcommand("set", "Point NAME at DIGEST (atomically)");
  set->add_option("name", a->name, "Ref name, e.g. image/registry/repo:tag")->required();
  set->add_option("digest", a->target, "Target object")->required();
  auto* expect = set->add_option("--expect", a->expect, "Only if NAME currently points at this digest");
  set->add_flag("--create-only", a->create_only, "Only if NAME does not exist yet")->excludes(expect);
  set->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunSet(ctx.globals, *a); }; });

  auto* get = ref->add_subcommand("get", "Print the digest NAME points at");
  get->add_option("name", a->name, "Ref name")->required();
  get->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunGet(ctx.globals, *a); }; });

  auto* ls = ref->add_subcommand("ls", "List refs whose names start with PREFIX");
  ls->add_option("prefix", a->prefix, "Name prefix, e.g. image/");
  ls->add_flag("--json", a->json, "Print JSON");
  ls->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunLs(ctx.globals, *a); }; });

  auto* rm = ref->add_subcommand("rm", "Delete a ref (its objects go at the next gc)");
  rm->add_option("name", a->name, "Ref name")->required();
  rm->add_option("--expect", a->expect, "Only if NAME currently points at this digest");
  rm->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunRm(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
