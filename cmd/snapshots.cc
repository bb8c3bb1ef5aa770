// silo snapshots [NAME] [--json]: list snapshots, oldest first.
#include "cmd/command.h"
#include "cmd/snapshot_util.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct SnapshotsArgs {
  std::string name;
  bool json = false;
};

int RunSnapshots(const Globals& g, const SnapshotsArgs& a) {
  if (!a.name.empty()) {
    if (Status s = index::ValidateSnapshotName(a.name); !s.ok()) return Fail(s);
  }
  auto store = OpenStore(g, Access::kRead);
  if (!store) return kExitUsage;
  auto list = index::ListSnapshots(*store, a.name);
  if (!list.ok()) return Fail(list.status());
  if (a.json) std::printf("[");
  bool first = true;
  for (const auto& s : *list) {
    const auto& r = s.record;
    if (a.json) {
      std::printf(
          "%s{\"name\":%s,\"id\":%s,\"digest\":%s,\"time\":%s,\"host\":%s,\"files\":%llu,\"bytes\":%llu,"
          "\"parent\":%s,\"sources\":[",
          first ? "" : ",", JsonQuote(r.name).c_str(), JsonQuote(s.id).c_str(), JsonQuote(s.digest.ToString()).c_str(),
          JsonQuote(index::FormatTime(r.time_ns)).c_str(), JsonQuote(r.host).c_str(),
          static_cast<unsigned long long>(r.files), static_cast<unsigned long long>(r.bytes),
          r.parent ? JsonQuote(r.parent->ToString()).c_str() : "null");
      for (size_t i = 0; i < r.sources.size(); ++i) {
        std::printf("%s{\"key\":%s,\"path\":%s,\"tree\":%s}", i ? "," : "", JsonQuote(r.sources[i].key).c_str(),
                    JsonQuote(r.sources[i].path).c_str(), JsonQuote(r.sources[i].tree.ToString()).c_str());
      }
      std::printf("]}");
    } else {
      std::string paths;
      for (const auto& src : r.sources) paths += (paths.empty() ? "" : " ") + src.path;
      std::printf("%s@%s  %s UTC  %s  %llu files  %s  %s\n", r.name.c_str(), s.id.c_str(),
                  index::FormatTime(r.time_ns).c_str(), r.host.c_str(), static_cast<unsigned long long>(r.files),
                  FormatBytes(r.bytes).c_str(), paths.c_str());
    }
    first = false;
  }
  if (a.json) std::printf("]\n");
  return kExitOk;
}

}  // namespace

void RegisterSnapshots(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<SnapshotsArgs>();
  auto* sub = app.add_subcommand("snapshots", "List snapshots (of NAME), oldest first");
  sub->add_option("name", a->name, "Only snapshots of NAME");
  sub->add_flag("--json", a->json, "Print JSON");
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunSnapshots(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
