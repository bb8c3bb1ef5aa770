#include "index/docker_save.h"

#include <simdjson.h>

#include "index/manifest.h"
#include "util/json.h"

namespace silo::index {
namespace {

Status Bad(const std::string& why) {
  return Status::Corruption("manifest.json: " + why);
}

std::string Clean(std::string_view path) {
  while (path.starts_with("./")) path.remove_prefix(2);
  return std::string(path);
}

}  // namespace

Result<std::vector<DockerSaveImage>> ParseDockerSaveManifest(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element root;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS) return Bad("not valid JSON");
  simdjson::dom::array entries;
  if (root.get(entries) != simdjson::SUCCESS) return Bad("top level is not an array");
  std::vector<DockerSaveImage> out;
  size_t n = 0;
  for (auto e : entries) {
    ++n;
    const std::string where = "entry " + std::to_string(n);
    simdjson::dom::object o;
    if (e.get(o) != simdjson::SUCCESS) return Bad(where + " is not an object");
    DockerSaveImage img;
    std::string_view v;
    if (o["Config"].get(v) != simdjson::SUCCESS || v.empty()) return Bad(where + " has no Config");
    img.config = Clean(v);
    simdjson::dom::element tags;
    if (o["RepoTags"].get(tags) == simdjson::SUCCESS && !tags.is_null()) {
      simdjson::dom::array a;
      if (tags.get(a) != simdjson::SUCCESS) return Bad(where + ": RepoTags is not a list");
      for (auto t : a) {
        if (t.get(v) != simdjson::SUCCESS) return Bad(where + ": a RepoTags item is not a string");
        img.repo_tags.emplace_back(v);
      }
    }
    simdjson::dom::array layers;
    if (o["Layers"].get(layers) != simdjson::SUCCESS) return Bad(where + " has no Layers list");
    for (auto l : layers) {
      if (l.get(v) != simdjson::SUCCESS || v.empty()) return Bad(where + ": a Layers item is not a path");
      img.layers.push_back(Clean(v));
    }
    out.push_back(std::move(img));
  }
  if (out.empty()) return Bad("no images");
  return out;
}

Result<std::vector<std::string>> ConfigDiffIds(std::string_view config_json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(config_json);
  simdjson::dom::element root;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS) return Status::Corruption("image config: not valid JSON");
  simdjson::dom::array ids;
  if (root["rootfs"]["diff_ids"].get(ids) != simdjson::SUCCESS) {
    return Status::Corruption("image config: no rootfs.diff_ids");
  }
  std::vector<std::string> out;
  for (auto id : ids) {
    std::string_view v;
    if (id.get(v) != simdjson::SUCCESS) return Status::Corruption("image config: a diff_id is not a string");
    out.emplace_back(v);
  }
  return out;
}

Result<std::string> DockerLayerMediaType(std::string_view head, const std::string& what) {
  auto starts = [&](std::string_view magic) { return head.starts_with(magic); };
  if (starts("\x1f\x8b")) return std::string(kDockerLayerGzip);
  if (starts("\x28\xb5\x2f\xfd")) {
    return Status::Unsupported(what + " is zstd-compressed, which a Docker v2 schema 2 manifest cannot describe");
  }
  if (starts("BZh") || starts("\xfd"
                              "7zXZ")) {
    return Status::Unsupported(what + " is bzip2/xz-compressed, which a Docker v2 schema 2 manifest cannot describe");
  }
  return std::string(kDockerLayerTar);
}

std::string BuildDockerManifest(const BlobRef& config, const std::vector<BlobRef>& layers) {
  auto desc = [](const BlobRef& b) {
    return "{\"mediaType\":" + JsonQuote(b.media_type) + ",\"size\":" + std::to_string(b.size) +
           ",\"digest\":" + JsonQuote(b.digest) + "}";
  };
  std::string s = "{\"schemaVersion\":2,\"mediaType\":" + JsonQuote(media::kDockerManifest) +
                  ",\"config\":" + desc(config) + ",\"layers\":[";
  for (size_t i = 0; i < layers.size(); ++i) s += (i ? "," : "") + desc(layers[i]);
  return s + "]}";
}

}  // namespace silo::index
