// silo images [--json]: pulled images with reference, digest, platforms and size.
#include <cstdio>
#include <set>

#include "cmd/command.h"
#include "index/manifest.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct ImagesArgs {
  bool json = false;
  std::string prefix;
};

struct ImageRow {
  std::string reference;
  std::string digest;
  std::vector<std::string> platforms;
  uint64_t size = 0;  // unique blobs and manifests present in the store
  bool complete = true;
};

// Walks an image (index or manifest) through the store, summing what is present.
void Describe(store::Store& store, const store::Digest& digest, ImageRow& row, std::set<std::string>& seen,
              const std::string& platform) {
  auto bytes = store.ReadAll(digest, index::kMaxManifestSize);
  if (!bytes.ok()) {
    row.complete = false;
    return;
  }
  if (seen.insert(digest.ToString()).second) row.size += bytes->size();
  auto m = index::ParseManifest(*bytes);
  if (!m.ok()) {
    row.complete = false;
    return;
  }
  if (m->is_index()) {
    for (const auto& child : m->manifests) {
      auto d = store::Digest::Parse(child.digest);
      if (!d.ok()) continue;
      if (!store.Stat(*d).ok()) continue;  // not pulled (platform filter)
      Describe(store, *d, row, seen, child.platform ? child.platform->ToString() : "");
    }
    return;
  }
  std::string plat = platform;
  if (plat.empty()) {
    // A single-platform image: its config says which.
    auto config = store::Digest::Parse(m->config.digest);
    auto bytes_c = config.ok() ? store.ReadAll(*config, 16 << 20) : Result<std::string>(config.status());
    auto p = bytes_c.ok() ? index::ParseConfigPlatform(*bytes_c) : Result<index::Platform>(bytes_c.status());
    if (p.ok() && !p->os.empty()) plat = p->ToString();
  }
  if (!plat.empty() && plat.find("unknown") == std::string::npos) row.platforms.push_back(plat);
  for (const auto& blob : m->References()) {
    auto d = store::Digest::Parse(blob.digest);
    if (!d.ok() || !store.Stat(*d).ok()) {
      row.complete = false;
      continue;
    }
    if (seen.insert(blob.digest).second) row.size += blob.size;
  }
}

int RunImages(const Globals& g, const ImagesArgs& a) {
  auto store = OpenStore(g, Access::kRead);
  if (!store) return kExitUsage;
  auto refs = store->ListRefs("image/" + a.prefix);
  if (!refs.ok()) return Fail(refs.status());
  std::vector<ImageRow> rows;
  for (const auto& r : *refs) {
    ImageRow row;
    row.reference = r.name.substr(6);
    row.digest = r.target.ToString();
    std::set<std::string> seen;
    Describe(*store, r.target, row, seen, "");
    rows.push_back(std::move(row));
  }
  if (a.json) {
    std::printf("[");
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      std::string plats;
      for (const auto& p : r.platforms) plats += (plats.empty() ? "" : ",") + JsonQuote(p);
      std::printf("%s{\"reference\":%s,\"digest\":%s,\"platforms\":[%s],\"size\":%llu,\"complete\":%s}", i ? "," : "",
                  JsonQuote(r.reference).c_str(), JsonQuote(r.digest).c_str(), plats.c_str(),
                  static_cast<unsigned long long>(r.size), r.complete ? "true" : "false");
    }
    std::printf("]\n");
    return kExitOk;
  }
  if (rows.empty()) {
    Note(g, "no images (pull some with `silo pull`)");
    return kExitOk;
  }
  std::printf("%-60s %-19s %-10s %s\n", "REFERENCE", "DIGEST", "SIZE", "PLATFORMS");
  for (const auto& r : rows) {
    std::string plats;
    for (const auto& p : r.platforms) plats += (plats.empty() ? "" : ",") + p;
    std::printf("%-60s %-19s %-10s %s%s\n", r.reference.c_str(), r.digest.substr(0, 19).c_str(),
                FormatBytes(r.size).c_str(), plats.empty() ? "-" : plats.c_str(), r.complete ? "" : " (incomplete)");
  }
  return kExitOk;
}

}  // namespace

void RegisterImages(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<ImagesArgs>();
  auto* sub = app.add_subcommand("images", "List pulled images: reference, digest, size, platforms");
  sub->add_option("prefix", a->prefix, "Only references starting with this (registry/repo)");
  sub->add_flag("--json", a->json, "Print JSON");
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunImages(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
