// silo tracker ls [NAME] [--json] | rm NAME…: what the incremental export chains know (the
// trackers of `silo export --tracker`), and forgetting it.
#include <cstdio>

#include "cmd/command.h"
#include "index/export_record.h"
#include "index/snapshot.h"  // FormatTime
#include "util/units.h"

namespace silo::cmd {
namespace {

struct TrackerArgs {
  std::vector<std::string> names;
  bool json = false;
};

std::string When(const index::TrackedExport& e) {
  return e.time_ns ? index::FormatTime(e.time_ns) + " UTC" : "(time not recorded)";
}

void PrintJson(const index::TrackerSummary& t, bool first) {
  std::printf("%s{\"name\":%s,\"exports\":%zu,\"blobs\":%llu,\"bytes\":%llu,\"last\":", first ? "" : ",",
              JsonQuote(t.name).c_str(), t.exports.size(), static_cast<unsigned long long>(t.blobs),
              static_cast<unsigned long long>(t.bytes));
  auto one = [](const index::TrackedExport& e) {
    std::printf("{\"archive\":%s,\"sha256\":%s,\"time\":%s,\"blobs\":%llu,\"bytes\":%llu}",
                JsonQuote(e.archive).c_str(), JsonQuote(e.sha256).c_str(),
                e.time_ns ? JsonQuote(index::FormatTime(e.time_ns)).c_str() : "null",
                static_cast<unsigned long long>(e.blobs), static_cast<unsigned long long>(e.bytes));
  };
  if (t.exports.empty()) {
    std::printf("null");
  } else {
    one(t.exports.back());
  }
  std::printf(",\"archives\":[");
  for (size_t i = 0; i < t.exports.size(); ++i) {
    if (i) std::printf(",");
    one(t.exports[i]);
  }
  std::printf("]}");
}

int RunList(const Globals& g, const TrackerArgs& a) {
  for (const auto& n : a.names) {
    if (Status s = index::ValidateTrackerName(n); !s.ok()) return Fail(s);
  }
  auto store = OpenStore(g, Access::kRead);
  if (!store) return kExitUsage;
  std::vector<std::string> names = a.names;
  if (names.empty()) {
    auto list = index::ListTrackers(*store);
    if (!list.ok()) return Fail(list.status());
    names = std::move(*list);
  }
  std::vector<index::TrackerSummary> trackers;
  for (const auto& n : names) {
    auto t = index::DescribeTracker(*store, n);
    if (!t.ok()) return Fail(t.status());
    if (!*t) {
      if (!a.names.empty()) return Fail(Status::NotFound("no tracker named '" + n + "' (silo tracker ls lists them)"));
      continue;  // listed but emptied by an interrupted rm
    }
    trackers.push_back(std::move(**t));
  }
  if (a.json) {
    std::printf("[");
    for (size_t i = 0; i < trackers.size(); ++i) PrintJson(trackers[i], i == 0);
    std::printf("]\n");
    return kExitOk;
  }
  for (const auto& t : trackers) {
    std::string last = t.exports.empty() ? "-" : When(t.exports.back()) + "  " + t.exports.back().archive;
    std::printf("%s  %zu exports  %llu blobs  %s  last %s\n", t.name.c_str(), t.exports.size(),
                static_cast<unsigned long long>(t.blobs), FormatBytes(t.bytes).c_str(), last.c_str());
    // Named trackers: every export, oldest first.
    if (a.names.empty()) continue;
    for (const auto& e : t.exports) {
      std::printf("  %s  %s  %llu new blobs  %s  sha256 %s\n", When(e).c_str(), e.archive.c_str(),
                  static_cast<unsigned long long>(e.blobs), FormatBytes(e.bytes).c_str(), e.sha256.c_str());
    }
  }
  return kExitOk;
}

int RunRemove(const Globals& g, const TrackerArgs& a) {
  for (const auto& n : a.names) {
    if (Status s = index::ValidateTrackerName(n); !s.ok()) return Fail(s);
  }
  auto store = OpenStore(g, Access::kWrite);
  if (!store) return kExitUsage;
  for (const auto& n : a.names) {
    if (Status s = index::RemoveTracker(*store, n); !s.ok()) return Fail(s);
    Note(g, "tracker " + n + " removed: the next export under it carries every blob");
  }
  return kExitOk;
}

}  // namespace

void RegisterTracker(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("tracker", "List or remove the trackers of incremental exports");
  sub->require_subcommand(1);
  auto ls_args = std::make_shared<TrackerArgs>();
  auto* ls = sub->add_subcommand("ls", "Trackers: exports, blobs and bytes carried, last export (NAME: every export)");
  ls->add_option("names", ls_args->names, "Only these trackers, with every export they recorded");
  ls->add_flag("--json", ls_args->json, "Print JSON");
  ls->callback([&ctx, ls_args] { ctx.run = [&ctx, ls_args] { return RunList(ctx.globals, *ls_args); }; });
  auto rm_args = std::make_shared<TrackerArgs>();
  auto* rm = sub->add_subcommand("rm", "Forget trackers (their next export carries every blob again)");
  rm->add_option("names", rm_args->names, "Tracker names")->required();
  rm->callback([&ctx, rm_args] { ctx.run = [&ctx, rm_args] { return RunRemove(ctx.globals, *rm_args); }; });
}

}  // namespace silo::cmd
