// silo tree-index SNAPSHOT [-o DIR]: dsync's .tree text of a snapshot.
#include <fcntl.h>
#include <unistd.h>

#include "cmd/command.h"
#include "cmd/snapshot_util.h"
#include "index/dsync.h"
#include "util/fd.h"

namespace silo::cmd {
namespace {

struct TreeIndexArgs {
  std::string snapshot;
  std::string out_dir;
};

int RunTreeIndex(const Globals& g, const TreeIndexArgs& a) {
  auto store = OpenStore(g, Access::kRead);
  if (!store) return kExitUsage;
  auto r = ResolveSnapshotPath(*store, a.snapshot);
  if (!r.ok()) return Fail(r.status().WithContext("tree-index"));
  if (r->entry.type != index::EntryType::kDir) return Fail(Status::InvalidArgument("tree-index: not a directory"));
  if (a.out_dir.empty()) {
    Status s = index::RenderDsyncTree(*store, r->entry.digest,
                                      [](std::string_view line) { std::fwrite(line.data(), 1, line.size(), stdout); });
    std::fflush(stdout);
    return s.ok() ? kExitOk : Fail(s.WithContext("tree-index"));
  }
  // One KEY.tree per source, as dsync keeps them.
  for (const auto& src : r->snapshot.record.sources) {
    std::string path = a.out_dir + "/" + src.key + ".tree";
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) return Fail(Status::FromErrno("create " + path, errno));
    Status werr;
    Status s = index::RenderDsyncTree(*store, src.tree, [&](std::string_view line) {
      if (werr.ok()) werr = WriteAll(fd.get(), AsBytes(line), path);
    });
    if (!s.ok()) return Fail(s.WithContext("tree-index"));
    if (!werr.ok()) return Fail(werr);
    std::printf("%s\n", path.c_str());
  }
  return kExitOk;
}

}  // namespace

void RegisterTreeIndex(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<TreeIndexArgs>();
  auto* sub = app.add_subcommand("tree-index", "Print dsync's .tree index of a snapshot (F:/D: lines, SHA1, LEN)");
  sub->add_option("snapshot", a->snapshot, "NAME, NAME@ID, optionally :PATH")->required();
  sub->add_option("-o,--output", a->out_dir, "Write KEY.tree per source into DIR instead");
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunTreeIndex(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
