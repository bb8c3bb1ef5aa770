// silo cat DIGEST|SNAPSHOT:PATH... [--range START-END]: write objects to stdout.
#include <unistd.h>

#include "cmd/command.h"
#include "cmd/snapshot_util.h"
#include "transfer/local_file.h"

namespace silo::cmd {
namespace {

struct CatArgs {
  std::vector<std::string> digests;
  std::string digests_from;
  std::string range;
};

int RunCat(const Globals& g, CatArgs& a) {
  if (!a.digests_from.empty()) {
    auto list = ReadListFile(a.digests_from);
    if (!list.ok()) return Fail(list.status());
    a.digests.insert(a.digests.end(), list->begin(), list->end());
  }
  if (a.digests.empty()) return Fail(Status::InvalidArgument("cat: name a DIGEST"));
  std::optional<transfer::ByteRange> range;
  if (!a.range.empty()) {
    if (a.digests.size() != 1) return Fail(Status::InvalidArgument("cat: --range takes a single DIGEST"));
    auto r = transfer::ByteRange::Parse(a.range);
    if (!r.ok()) return Fail(r.status());
    range = *r;
  }
  std::vector<store::Digest> digests;
  std::vector<size_t> snapshot_paths;  // arguments that name SNAPSHOT:PATH instead
  for (const auto& text : a.digests) {
    auto d = store::Digest::Parse(text);
    if (!d.ok() && text.find(':') != std::string::npos && !text.starts_with("sha")) {
      snapshot_paths.push_back(digests.size());
      digests.emplace_back();
      continue;
    }
    if (!d.ok()) return Fail(d.status());
    digests.push_back(*d);
  }
  auto store = OpenStore(g, Access::kRead);
  if (!store) return kExitUsage;
  for (size_t i : snapshot_paths) {
    auto r = ResolveSnapshotPath(*store, a.digests[i]);
    if (!r.ok()) return Fail(r.status().WithContext("cat"));
    if (r->entry.type != index::EntryType::kFile)
      return Fail(Status::InvalidArgument("cat " + a.digests[i] + ": not a file"));
    digests[i] = r->entry.digest;
  }
  int rc = kExitOk;
  for (const auto& d : digests) {
    Status s = transfer::CatObject(*store, d, range, STDOUT_FILENO);
    if (!s.ok()) {
      rc = std::max(rc, Fail(s));
      if (s.code() == Code::kInterrupted || s.code() == Code::kIO) break;
    }
  }
  return rc;
}

}  // namespace

void RegisterCat(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<CatArgs>();
  auto* sub = app.add_subcommand("cat", "Write objects to stdout (sha256:… or sha1:…)");
  sub->add_option("digests", a->digests,
                  "Objects to write, in order (a digest, or SNAPSHOT:PATH for a file in a snapshot)");
  sub->add_option("--digests-from", a->digests_from, "Read the digests from LIST (one per line; - for stdin)");
  sub->add_option("--range", a->range, "Only bytes START-END (inclusive), START- or -SUFFIX");
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunCat(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
