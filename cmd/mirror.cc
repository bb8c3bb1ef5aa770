// silo mirror SRC… DEST-REGISTRY[/PREFIX]: registry to registry through the store, images
// the destination already serves skipped before anything is pulled.
#include "transfer/mirror.h"

#include <malloc.h>

#include <cstdio>
#include <set>

#include "cmd/command.h"
#include "cmd/registry_flags.h"
#include "util/interrupt.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct MirrorArgs {
  std::vector<std::string> args;  // sources…, then the destination
  std::string file;
  std::string release;
  std::string source;  // default registry for references that name none
  RegistryFlags reg;
};

int RunMirror(const Globals& g, MirrorArgs& a) {
  // Every blob download in flight gathers its chunks in a buffer of the largest chunk size
  // (4 MiB). Under glibc's sliding mmap threshold those come from the heap once the first
  // is freed, and the heap fragments: peak RSS grew with -j (375 MiB at -j 8 on bench/pull's
  // large set). Mapped afresh, they go back when freed (256 MiB), for a little system time.
  ::mallopt(M_MMAP_THRESHOLD, 4 << 20);
  if (a.args.empty()) return Fail(Status::InvalidArgument("mirror: name the destination registry (REGISTRY[/PREFIX])"));
  auto dest = transfer::ParsePushDestination(a.args.back());
  if (!dest.ok()) return Fail(dest.status());
  std::vector<std::string> inputs(a.args.begin(), a.args.end() - 1);
  if (!a.file.empty()) {
    auto list = ReadListFile(a.file);
    if (!list.ok()) return Fail(list.status().WithContext("--file"));
    inputs.insert(inputs.end(), list->begin(), list->end());
  }
  if (inputs.empty() && a.release.empty()) {
    return Fail(Status::InvalidArgument("mirror: name source images, -f LIST, or --release REF"));
  }
  std::vector<transfer::MirrorItem> items;
  std::set<std::string> registries{dest->registry};
  for (const auto& in : inputs) {
    auto r = index::ParseReference(in, a.source.empty() ? "docker.io" : a.source);
    if (!r.ok()) return Fail(r.status());
    transfer::MirrorItem item;
    item.input = in;
    item.source = *r;
    registries.insert(r->registry);
    items.push_back(std::move(item));
  }
  std::optional<index::Reference> release;
  if (!a.release.empty()) {
    auto r = index::ParseReference(a.release, a.source.empty() ? "docker.io" : a.source);
    if (!r.ok()) return Fail(r.status());
    release = *r;
    registries.insert(r->registry);
  }
  auto platforms = ParsePlatformFlags(a.reg.platforms, a.reg.arches, a.reg.oses);
  if (!platforms.ok()) return Fail(platforms.status());
  auto ro = MakeRegistryOptions(a.reg, registries);
  if (!ro.ok()) return Fail(ro.status());
  transfer::MirrorOptions o;
  o.dest = *dest;
  o.pull.platforms = o.push.platforms = *platforms;
  o.pull.jobs = o.push.jobs = a.reg.jobs;
  o.pull.blob_jobs = o.push.blob_jobs = a.reg.blob_jobs;
  o.pull.registry = o.push.registry = *ro;
  o.pull.plain_http_registries = a.reg.plain_http;
  // Blob bodies in pieces of up to 512 KiB instead of libcurl's 16 KiB (as `silo pull`):
  // fewer receive calls, store writes and upload-pipe handoffs per byte.
  o.pull.registry.http.buffer_size = 512 * 1024;
  o.push.plain_http = IsPlainHttp(a.reg, dest->registry);

  auto store = OpenStore(g, Access::kWrite);
  if (!store) return kExitUsage;
  transfer::Mirrorer mirrorer(*store, o);
  LiveLine view(
      [&](double secs) {
        const auto& p = mirrorer.pull_counters();
        const auto& u = mirrorer.push_counters();
        return "mirror: " + std::to_string(mirrorer.images_skipped()) + " already there; pulled " +
               std::to_string(p.images_done.load()) + ", pushed " + std::to_string(u.images_done.load()) + ", " +
               std::to_string(p.images_failed + u.images_failed) + " failed; " + FormatBytes(p.bytes_fetched) +
               " in, " + FormatBytes(u.bytes_uploaded) + " out, " + FormatDuration(secs);
      },
      g.quiet);
  std::vector<transfer::MirrorItem> release_items;
  if (release) {
    release_items = mirrorer.MirrorRelease(*release, a.release);
    Note(g,
         "mirror: release " + a.release + " names " + std::to_string(release_items.size() - 1) + " component image(s)");
  }
  if (!items.empty()) mirrorer.Mirror(items);
  items.insert(items.begin(), release_items.begin(), release_items.end());
  view.Stop();
  std::vector<std::string> failed;
  size_t skipped = 0;
  for (const auto& item : items) {
    for (const auto& w : item.warnings) std::fprintf(stderr, "silo: warning: %s: %s\n", item.input.c_str(), w.c_str());
    if (!item.status.ok()) {
      std::fprintf(stderr, "silo: %s\n", item.status.message().c_str());
      failed.push_back(item.input);
      continue;
    }
    skipped += item.skipped;
    if (!g.quiet) {
      std::printf("%s %s%s\n", item.digest.c_str(), item.dest.ToString().c_str(),
                  item.skipped   ? " (already there)"
                  : item.rebuilt ? " (rebuilt index)"
                                 : "");
    }
  }
  std::fflush(stdout);
  WriteFailedList(a.reg.failed_file, failed, "silo mirror … " + a.args.back());
  const auto& p = mirrorer.pull_counters();
  const auto& u = mirrorer.push_counters();
  double secs = view.seconds();
  Note(g, "mirror: " + std::to_string(items.size() - failed.size() - skipped) + " image(s) mirrored, " +
              std::to_string(skipped) + " already there, " + std::to_string(failed.size()) + " failed; " +
              std::to_string(p.blobs_fetched) + " blobs pulled (" + FormatBytes(p.bytes_fetched) + "), " +
              std::to_string(u.blobs_uploaded) + " uploaded (" + FormatBytes(u.bytes_uploaded) + "), " +
              std::to_string(u.blobs_present) + " already there, " + std::to_string(u.blobs_mounted) + " mounted; " +
              std::to_string(mirrorer.requests()) + " requests in " + FormatDuration(secs));
  if (Interrupted()) return kExitInterrupted;
  return failed.empty() ? kExitOk : kExitFailed;
}

}  // namespace

void RegisterMirror(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<MirrorArgs>();
  a->reg.failed_file = "mirror-failed.txt";
  auto* sub = app.add_subcommand("mirror", "Copy images registry to registry through the store");
  sub->add_option("args", a->args, "Source image references, then DEST-REGISTRY[/PREFIX]")->required();
  sub->add_option("-f,--file", a->file, "Read source references from LIST (one per line; # comments)");
  sub->add_option("-s,--source", a->source, "Registry for references that name none (default docker.io)");
  sub->add_option("--release", a->release, "An OpenShift release image: mirror it and every component it names");
  AddRegistryFlags(sub, a->reg);
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunMirror(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
