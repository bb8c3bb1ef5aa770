// silo snapshot DIR... [--name NAME] | --config dsync.json: snapshot directories.
#include "transfer/snapshot.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cmd/command.h"
#include "cmd/snapshot_util.h"
#include "index/dsync.h"
#include "util/interrupt.h"
#include "util/progress.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct SnapshotArgs {
  std::vector<std::string> dirs;
  std::string name;
  std::string config;
  std::vector<std::string> excludes;
  bool ignore_hidden = false;
  bool no_cache = false;
  bool sha1 = false;
  size_t threads = 0;
};

std::string BaseName(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

Status BuildRequest(SnapshotArgs& a, transfer::SnapshotRequest* req) {
  if (!a.config.empty()) {
    if (!a.dirs.empty()) return Status::InvalidArgument("snapshot: give directories or --config, not both");
    std::ifstream f(a.config);
    if (!f) return Status::FromErrno("open " + a.config, errno).WithContext("snapshot --config");
    std::stringstream ss;
    ss << f.rdbuf();
    const char* home = std::getenv("HOME");
    SILO_ASSIGN_OR_RETURN(auto cfg, index::ParseDsyncConfig(ss.str(), home ? home : "").WithContext(a.config));
    req->name = !a.name.empty()     ? a.name
                : !cfg.name.empty() ? cfg.name
                                    : BaseName(a.config).substr(0, BaseName(a.config).find('.'));
    for (const auto& d : cfg.dirs) {
      req->sources.push_back({d.key, d.path, d.ignore_hidden || a.ignore_hidden, d.leaf_only});
    }
    req->top_is_source = cfg.dirs.size() == 1 && cfg.dirs[0].ignore_top;
    req->excludes = cfg.excludes;
    req->sha1_alias = true;  // dsync's content store is named by SHA-1
  } else {
    if (a.dirs.empty()) return Status::InvalidArgument("snapshot: name a DIR or --config FILE");
    for (const auto& d : a.dirs) {
      std::string key = BaseName(d);
      if (key == "/" || key == "." || key == "..") {
        char* real = ::realpath(d.c_str(), nullptr);
        key = real ? BaseName(real) : key;
        std::free(real);
        if (key == "/") key = "root";
      }
      req->sources.push_back({key, d, a.ignore_hidden, false});
    }
    req->name = a.name.empty() && a.dirs.size() == 1 ? req->sources[0].key : a.name;
    if (req->name.empty()) return Status::InvalidArgument("snapshot: several directories need --name");
  }
  req->excludes.insert(req->excludes.end(), a.excludes.begin(), a.excludes.end());
  req->use_stat_cache = !a.no_cache;
  req->sha1_alias = req->sha1_alias || a.sha1;
  req->threads = a.threads;
  return Status::Ok();
}

int RunSnapshot(const Globals& g, SnapshotArgs& a) {
  transfer::SnapshotRequest req;
  if (Status s = BuildRequest(a, &req); !s.ok()) return Fail(s);
  if (Status s = index::ValidateSnapshotName(req.name); !s.ok()) return Fail(s.WithContext("snapshot (use --name)"));
  auto store = OpenStore(g, Access::kWrite);
  if (!store) return kExitUsage;
  Progress progress("snapshot " + req.name, 0);
  progress.SetUnits("files", "read");
  req.progress = &progress;
  req.on_warning = [&](const std::string& m) {
    progress.Clear();
    PrintWarning(m);
  };
  auto r = transfer::TakeSnapshot(*store, req);
  progress.Finish();
  if (!r.ok()) return Fail(r.status());
  const auto& st = r->stats;
  std::printf("%s@%s\n", req.name.c_str(), r->snapshot.id.c_str());
  std::fflush(stdout);
  double secs = progress.elapsed_seconds();
  Note(g, "snapshot " + req.name + "@" + r->snapshot.id + ": " + std::to_string(st.files_new) + " new, " +
              std::to_string(st.files_changed) + " changed, " + std::to_string(st.files_unchanged) +
              " unchanged files; " + std::to_string(st.dirs) + " dirs, " + std::to_string(st.symlinks) + " symlinks; " +
              FormatBytes(st.bytes_read) + " read, " + FormatBytes(st.bytes_added) + " added to the store, " +
              FormatBytes(st.total_bytes) + " in the snapshot; " + FormatDuration(secs) +
              (st.changed_during_read ? "; " + std::to_string(st.changed_during_read) + " changed while read" : "") +
              (st.skipped ? "; " + std::to_string(st.skipped) + " skipped" : "") +
              (st.errors ? "; " + std::to_string(st.errors) + " errors" : "") +
              (st.cache_pruned ? "; " + std::to_string(st.cache_pruned) + " stale stat-cache entries pruned" : ""));
  return st.errors ? kExitFailed : kExitOk;
}

}  // namespace

void RegisterSnapshot(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<SnapshotArgs>();
  auto* sub = app.add_subcommand("snapshot", "Snapshot directories into the store (incremental)");
  sub->add_option("dirs", a->dirs, "Directories to snapshot");
  sub->add_option("--name", a->name, "Snapshot name (default: the directory's name)");
  sub->add_option("--config", a->config, "A dsync.json (or silo) sync configuration naming the directories");
  sub->add_option("--exclude", a->excludes, "Leave out names (or, with a '/', paths) matching GLOB (repeatable)");
  sub->add_flag("--ignore-hidden", a->ignore_hidden, "Leave out names starting with '.'");
  sub->add_flag("--no-cache", a->no_cache, "Read every file (ignore the stat cache)");
  sub->add_flag("--sha1", a->sha1,
                "Also record a sha1: alias for each file's content (always on with --config, as dsync names "
                "contents by SHA-1)");
  sub->add_option("--threads", a->threads, "Parallel file readers (default: one per CPU)");
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunSnapshot(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
