// silo push IMAGE…|--all|-f LIST DEST-REGISTRY[/PREFIX]: images from the store into a registry.
#include "transfer/push.h"

#include <cstdio>
#include <set>

#include "cmd/command.h"
#include "cmd/registry_flags.h"
#include "index/image.h"
#include "util/interrupt.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct PushArgs {
  std::vector<std::string> args;  // images…, then the destination
  std::string file;
  bool all = false;
  std::string chunk_size = "32M";
  std::string monolithic_max = "32M";
  RegistryFlags reg;
};

std::string PushLine(const transfer::PushCounters& c, double secs) {
  uint64_t bytes = c.bytes_uploaded;
  return "push: " + std::to_string(c.images_done + c.images_failed) + "/" + std::to_string(c.images_total.load()) +
         " images, " + std::to_string(c.images_active) + " active, " + std::to_string(c.images_failed) + " failed; " +
         FormatBytes(bytes) + " uploaded, " + FormatRate(bytes, secs);
}

int RunPush(const Globals& g, PushArgs& a) {
  if (a.args.empty()) return Fail(Status::InvalidArgument("push: name the destination registry (REGISTRY[/PREFIX])"));
  auto dest = transfer::ParsePushDestination(a.args.back());
  if (!dest.ok()) return Fail(dest.status());
  std::vector<std::string> names(a.args.begin(), a.args.end() - 1);
  if (!a.file.empty()) {
    auto list = ReadListFile(a.file);
    if (!list.ok()) return Fail(list.status().WithContext("--file"));
    names.insert(names.end(), list->begin(), list->end());
  }
  if (names.empty() && !a.all) return Fail(Status::InvalidArgument("push: name images, --all, or -f LIST"));
  if (!names.empty() && a.all) return Fail(Status::InvalidArgument("push: --all takes no image names"));
  transfer::PushOptions o;
  auto platforms = ParsePlatformFlags(a.reg.platforms, a.reg.arches, a.reg.oses);
  if (!platforms.ok()) return Fail(platforms.status());
  o.platforms = *platforms;
  o.jobs = a.reg.jobs;
  o.blob_jobs = a.reg.blob_jobs;
  auto ro = MakeRegistryOptions(a.reg, {dest->registry});
  if (!ro.ok()) return Fail(ro.status());
  o.registry = *ro;
  o.plain_http = IsPlainHttp(a.reg, dest->registry);
  auto chunk = ParseSize(a.chunk_size), mono = ParseSize(a.monolithic_max);
  if (!chunk.ok() || *chunk == 0) return Fail(Status::InvalidArgument("--chunk-size: expected a size such as 32M"));
  if (!mono.ok()) return Fail(mono.status().WithContext("--monolithic-max"));
  o.upload.chunk_size = *chunk;
  o.upload.monolithic_max = *mono;

  auto store = OpenStore(g, Access::kRead);
  if (!store) return kExitUsage;
  std::vector<transfer::PushItem> items;
  std::vector<std::string> failed;
  auto add = [&](const std::string& input, const store::RefEntry& e) {
    transfer::PushItem item;
    item.input = input;
    auto source = index::ImageRefReference(e.name);
    if (!source.ok()) return;  // not an image ref
    item.source = *source;
    item.top = e.target;
    item.dest = transfer::DestinationReference(*source, *dest);
    items.push_back(std::move(item));
  };
  if (a.all) {
    auto refs = store->ListRefs("image/");
    if (!refs.ok()) return Fail(refs.status());
    for (const auto& e : *refs) add(e.name.substr(6), e);
  }
  for (const auto& n : names) {
    auto found = index::FindImages(*store, n);
    if (!found.ok()) {
      std::fprintf(stderr, "silo: %s\n", found.status().message().c_str());
      failed.push_back(n);
      continue;
    }
    for (const auto& e : *found) add(n, e);
  }
  transfer::Pusher pusher(*store, *dest, o);
  LiveLine view([&](double s) { return PushLine(pusher.counters(), s); }, g.quiet);
  pusher.Push(items);
  view.Stop();
  for (const auto& item : items) {
    for (const auto& w : item.warnings) std::fprintf(stderr, "silo: warning: %s: %s\n", item.input.c_str(), w.c_str());
    if (!item.status.ok()) {
      std::fprintf(stderr, "silo: %s\n", item.status.message().c_str());
      failed.push_back(item.input);
      continue;
    }
    if (!g.quiet || item.rebuilt) {
      std::printf("%s %s%s\n", item.digest.c_str(), item.dest.ToString().c_str(),
                  item.already_present ? " (already there)"
                  : item.rebuilt       ? " (rebuilt index)"
                                       : "");
    }
  }
  std::fflush(stdout);
  WriteFailedList(a.reg.failed_file, failed, "silo push … " + a.args.back());
  const auto& c = pusher.counters();
  double secs = view.seconds();
  Note(g, "push: " + std::to_string(items.size() - c.images_failed.load()) + " image(s) pushed (" +
              std::to_string(c.images_present) + " already there), " + std::to_string(failed.size()) +
              " failed; blobs: " + std::to_string(c.blobs_uploaded) + " uploaded, " + std::to_string(c.blobs_present) +
              " already there, " + std::to_string(c.blobs_mounted) + " mounted, " + std::to_string(c.blobs_shared) +
              " shared between images; manifests: " + std::to_string(c.manifests_put) + " put, " +
              std::to_string(c.manifests_present) + " already there; " + FormatBytes(c.bytes_uploaded) + " in " +
              FormatDuration(secs) + " (" + FormatRate(c.bytes_uploaded, secs) + "), " +
              std::to_string(pusher.requests()) + " requests, " + std::to_string(pusher.retries()) + " retried");
  if (Interrupted()) return kExitInterrupted;
  return failed.empty() ? kExitOk : kExitFailed;
}

}  // namespace

void RegisterPush(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<PushArgs>();
  a->reg.failed_file = "push-failed.txt";
  auto* sub = app.add_subcommand("push", "Push images from the store into a registry");
  sub->add_option("args", a->args,
                  "Images (host:5000/app:1.0, a prefix such as host:5000/team/), then DEST-REGISTRY[/PREFIX]")
      ->required();
  sub->add_option("-f,--file", a->file, "Read image names from LIST (one per line; # comments)");
  sub->add_flag("--all", a->all, "Every image in the store");
  sub->add_option("--chunk-size", a->chunk_size, "Upload chunk size for large blobs")->capture_default_str();
  sub->add_option("--monolithic-max", a->monolithic_max, "Blobs up to this size go up in one request")
      ->capture_default_str();
  AddRegistryFlags(sub, a->reg);
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunPush(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
