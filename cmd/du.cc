// silo du: what the store holds and what it costs on disk.
#include <cstdio>

#include "cmd/command.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct DuArgs {
  bool json = false;
};

int RunDu(const Globals& g, const DuArgs& a) {
  auto store = OpenStore(g, Access::kRead);
  if (!store) return kExitUsage;
  auto s = store->Stats();
  if (!s.ok()) return Fail(s.status());
  auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  if (a.json) {
    std::printf(
        "{\"objects\":%llu,\"inline_objects\":%llu,\"logical_bytes\":%llu,\"chunks\":%llu,\"chunk_bytes\":%llu,"
        "\"stored_bytes\":%llu,\"disk_bytes\":%llu,\"aliases\":%llu,\"refs\":%llu,\"dedup_ratio\":%.4f}\n",
        u(s->objects), u(s->inline_objects), u(s->logical_bytes), u(s->chunks), u(s->chunk_bytes), u(s->stored_bytes),
        u(s->disk_bytes), u(s->aliases), u(s->refs), s->dedup_ratio());
    return kExitOk;
  }
  std::printf("store:        %s\n", store->path().c_str());
  std::printf("objects:      %llu (%llu inline)\n", u(s->objects), u(s->inline_objects));
  std::printf("logical:      %s\n", FormatBytes(s->logical_bytes).c_str());
  std::printf("chunks:       %llu, %s unique\n", u(s->chunks), FormatBytes(s->chunk_bytes).c_str());
  std::printf("stored:       %s (after compression)\n", FormatBytes(s->stored_bytes).c_str());
  std::printf("on disk:      %s\n", FormatBytes(s->disk_bytes).c_str());
  std::printf("dedup ratio:  %.2fx\n", s->dedup_ratio());
  std::printf("refs:         %llu, sha1 aliases: %llu\n", u(s->refs), u(s->aliases));
  return kExitOk;
}

}  // namespace

void RegisterDu(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<DuArgs>();
  auto* sub = app.add_subcommand("du", "Objects, chunks, logical and stored bytes, dedup ratio");
  sub->add_flag("--json", a->json, "Print JSON");
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunDu(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
