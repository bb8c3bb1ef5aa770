// silo tree IMAGE: an image's index, manifests, configs and layers as a tree (ace-dt's
// `oci tree`), with sizes, media types, the total and the deduplicated total.
#include <cstdio>
#include <map>
#include <set>

#include "cmd/command.h"
#include "index/image.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct TreeArgs {
  std::string image;
  bool json = false;
};

struct Renderer {
  const index::ImageGraph& graph;
  std::map<std::string, const index::ImageManifest*> by_digest;
  std::set<std::string> absent;
  uint64_t total = 0;
  std::string out;

  std::string Platform(const std::optional<index::Platform>& p) { return p ? " " + p->ToString() : ""; }

  void Line(const std::string& prefix, bool last, const std::string& text) {
    out += prefix + (last ? "└── " : "├── ") + text + "\n";
  }

  void Text(const index::ImageManifest& m, const std::string& prefix) {
    const auto& p = m.parsed;
    auto refs = p.References();
    for (size_t i = 0; i < refs.size(); ++i) {
      const auto& d = refs[i];
      bool last = i + 1 == refs.size();
      std::string next = prefix + (last ? "    " : "│   ");
      if (p.is_index()) {
        auto it = by_digest.find(d.digest);
        if (it == by_digest.end()) {
          Line(
              prefix, last,
              d.digest + " " + d.media_type + Platform(d.platform) + " " + FormatBytes(d.size) + " (not in the store)");
          continue;
        }
        total += it->second->bytes.size();
        Line(prefix, last,
             std::string(it->second->parsed.is_index() ? "index " : "manifest ") + d.digest + Platform(d.platform) +
                 " " + FormatBytes(d.size) + " " + it->second->media_type);
        Text(*it->second, next);
      } else {
        total += d.size;
        Line(prefix, last,
             std::string(i == 0 ? "config " : "layer ") + d.digest + " " + FormatBytes(d.size) + " " + d.media_type);
      }
    }
  }

  std::string Json(const index::ImageManifest& m) {
    const auto& p = m.parsed;
    std::string s = "{\"digest\":" + JsonQuote(m.digest.ToString()) + ",\"mediaType\":" + JsonQuote(m.media_type) +
                    ",\"size\":" + std::to_string(m.bytes.size()) +
                    (m.platform ? ",\"platform\":" + JsonQuote(m.platform->ToString()) : "");
    if (p.is_index()) {
      s += ",\"manifests\":[";
      for (size_t i = 0; i < p.manifests.size(); ++i) {
        const auto& d = p.manifests[i];
        if (i) s += ",";
        auto it = by_digest.find(d.digest);
        if (it == by_digest.end()) {
          s += "{\"digest\":" + JsonQuote(d.digest) + ",\"mediaType\":" + JsonQuote(d.media_type) +
               ",\"size\":" + std::to_string(d.size) +
               (d.platform ? ",\"platform\":" + JsonQuote(d.platform->ToString()) : "") + ",\"present\":false}";
        } else {
          total += it->second->bytes.size();
          s += Json(*it->second);
        }
      }
      return s + "]}";
    }
    auto blob = [&](const index::Descriptor& d) {
      total += d.size;
      return "{\"digest\":" + JsonQuote(d.digest) + ",\"mediaType\":" + JsonQuote(d.media_type) +
             ",\"size\":" + std::to_string(d.size) + "}";
    };
    s += ",\"config\":" + blob(p.config) + ",\"layers\":[";
    for (size_t i = 0; i < p.layers.size(); ++i) s += (i ? "," : "") + blob(p.layers[i]);
    return s + "]}";
  }
};

int RunTree(const Globals& g, const TreeArgs& a) {
  auto store = OpenStore(g, Access::kRead);
  if (!store) return kExitUsage;
  auto found = index::FindImages(*store, a.image);
  if (!found.ok()) return Fail(found.status());
  if (found->size() != 1) {
    return Fail(Status::InvalidArgument("tree: " + a.image + " selects " + std::to_string(found->size()) +
                                        " images; name one"));
  }
  auto graph = index::LoadImageGraph(*store, found->front().target);
  if (!graph.ok()) return Fail(graph.status());
  Renderer r{*graph, {}, {}, 0, {}};
  for (const auto& m : graph->manifests) r.by_digest[m.digest.ToString()] = &m;
  const auto& top = graph->manifests.back();
  r.total = top.bytes.size();
  std::string name = found->front().name.substr(6);
  if (a.json) {
    std::string body = r.Json(top);
    std::printf("{\"image\":%s,\"root\":%s,\"total\":%llu,\"deduplicated\":%llu,\"missingBlobs\":%zu}\n",
                JsonQuote(name).c_str(), body.c_str(), static_cast<unsigned long long>(r.total),
                static_cast<unsigned long long>(graph->total_bytes()), graph->missing_blobs.size());
    return kExitOk;
  }
  r.out = name + "\n" + std::string(top.parsed.is_index() ? "index " : "manifest ") + top.digest.ToString() + " " +
          FormatBytes(top.bytes.size()) + " " + top.media_type + "\n";
  r.Text(top, "");
  std::fputs(r.out.c_str(), stdout);
  std::printf("total %s (%llu bytes), deduplicated %s (%llu bytes)%s\n", FormatBytes(r.total).c_str(),
              static_cast<unsigned long long>(r.total), FormatBytes(graph->total_bytes()).c_str(),
              static_cast<unsigned long long>(graph->total_bytes()),
              graph->missing_blobs.empty()
                  ? ""
                  : (", " + std::to_string(graph->missing_blobs.size()) + " blob(s) not in the store").c_str());
  return kExitOk;
}

}  // namespace

void RegisterTree(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<TreeArgs>();
  auto* sub = app.add_subcommand("tree", "Show an image's index, manifests, config and layers as a tree");
  sub->add_option("image", a->image, "An image in the store (host:5000/app:1.0)")->required();
  sub->add_flag("--json", a->json, "JSON output");
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunTree(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
