// silo stat DIGEST: what the store knows of one object.
#include <cstdio>
#include <ctime>

#include "cmd/command.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct StatArgs {
  std::string digest;
  bool json = false;
};

std::string IsoTime(int64_t us) {
  std::time_t t = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int RunStat(const Globals& g, const StatArgs& a) {
  auto d = store::Digest::Parse(a.digest);
  if (!d.ok()) return Fail(d.status());
  auto store = OpenStore(g, Access::kRead);
  if (!store) return kExitUsage;
  auto info = store->Stat(*d);
  if (!info.ok()) return Fail(info.status());
  if (a.json) {
    std::string links;
    for (const auto& l : info->links) links += (links.empty() ? "" : ",") + JsonQuote(l.ToString());
    std::printf("{\"digest\":%s,\"size\":%llu,\"inline\":%s,\"chunks\":%u,\"sha1\":%s,\"links\":[%s],\"created\":%s}\n",
                JsonQuote(info->digest.ToString()).c_str(), static_cast<unsigned long long>(info->size),
                info->inlined ? "true" : "false", info->chunk_count,
                info->sha1 ? JsonQuote(info->sha1->ToString()).c_str() : "null", links.c_str(),
                JsonQuote(IsoTime(info->created_us)).c_str());
    return kExitOk;
  }
  std::printf("digest:  %s\n", info->digest.ToString().c_str());
  std::printf("size:    %llu (%s)\n", static_cast<unsigned long long>(info->size), FormatBytes(info->size).c_str());
  std::printf("storage: %s\n", info->inlined ? "inline" : (std::to_string(info->chunk_count) + " chunks").c_str());
  if (info->sha1) std::printf("sha1:    %s\n", info->sha1->ToString().c_str());
  for (const auto& l : info->links) std::printf("link:    %s\n", l.ToString().c_str());
  std::printf("created: %s\n", IsoTime(info->created_us).c_str());
  return kExitOk;
}

}  // namespace

void RegisterStat(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<StatArgs>();
  auto* sub = app.add_subcommand("stat", "Show an object's size, storage, aliases and links");
  sub->add_option("digest", a->digest, "The object (sha256:… or sha1:…)")->required();
  sub->add_flag("--json", a->json, "Print JSON");
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunStat(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
