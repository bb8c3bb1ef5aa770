// silo gc: remove what no ref reaches.
#include <cstdio>

#include "cmd/command.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct GcArgs {
  std::string grace = "1h";
  bool dry_run = false;
  bool full = false;
};

int RunGc(const Globals& g, const GcArgs& a) {
  store::GcOptions o;
  auto grace = ParseDuration(a.grace);
  if (!grace.ok()) return Fail(grace.status().WithContext("--grace"));
  o.grace = *grace;
  o.dry_run = a.dry_run;
  o.full = a.full;
  auto store = OpenStore(g, Access::kWrite);
  if (!store) return kExitUsage;
  Note(g, "gc: marking from refs…");
  auto r = store->CollectGarbage(o);
  if (!r.ok()) return Fail(r.status());
  const char* verb = a.dry_run ? "would remove" : "removed";
  std::printf("gc: %s %llu object(s) (%s) and %llu chunk(s) (%s stored); kept %llu object(s)\n", verb,
              static_cast<unsigned long long>(r->objects_removed), FormatBytes(r->logical_bytes_removed).c_str(),
              static_cast<unsigned long long>(r->chunks_removed), FormatBytes(r->stored_bytes_removed).c_str(),
              static_cast<unsigned long long>(r->objects_kept));
  std::printf("gc: disk %s -> %s in %s\n", FormatBytes(r->disk_bytes_before).c_str(),
              FormatBytes(r->disk_bytes_after).c_str(), FormatDuration(r->seconds).c_str());
  return kExitOk;
}

}  // namespace

void RegisterGc(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<GcArgs>();
  auto* sub = app.add_subcommand("gc", "Remove objects and chunks that no ref reaches");
  sub->add_option("--grace", a->grace, "Keep unreferenced objects and chunks younger than this (e.g. 0, 90s, 1h)")
      ->capture_default_str();
  sub->add_flag("-n,--dry-run", a->dry_run, "Report what would be removed, remove nothing");
  sub->add_flag("--full", a->full, "Also rewrite live data so no removed byte stays on disk");
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunGc(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
