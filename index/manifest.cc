#include "index/manifest.h"

#include <simdjson.h>

namespace silo::index {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;

Status Bad(const std::string& why) {
  return Status::InvalidArgument("manifest: " + why);
}

bool IsSha256Digest(std::string_view d) {
  if (d.size() != 71 || d.substr(0, 7) != "sha256:") return false;
  for (char c : d.substr(7)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string GetString(object o, std::string_view key) {
  std::string_view v;
  if (o[key].get(v) == simdjson::SUCCESS) return std::string(v);
  return {};
}

Result<Descriptor> ParseDescriptor(element e, const char* where) {
  object o;
  if (e.get(o) != simdjson::SUCCESS) return Bad(std::string(where) + " is not an object");
  Descriptor d;
  d.media_type = GetString(o, "mediaType");
  d.digest = GetString(o, "digest");
  if (!IsSha256Digest(d.digest)) {
    return Bad(std::string(where) + " digest '" + d.digest + "' is not sha256:<64 lowercase hex>");
  }
  int64_t size = -1;
  if (o["size"].get(size) != simdjson::SUCCESS || size < 0) {
    return Bad(std::string(where) + " " + d.digest + " has no valid size");
  }
  d.size = static_cast<uint64_t>(size);
  object p;
  if (o["platform"].get(p) == simdjson::SUCCESS) {
    Platform plat;
    plat.os = GetString(p, "os");
    plat.architecture = GetString(p, "architecture");
    plat.variant = GetString(p, "variant");
    d.platform = plat;
  }
  simdjson::dom::array urls;
  if (o["urls"].get(urls) == simdjson::SUCCESS) {
    for (auto u : urls) {
      std::string_view s;
      if (u.get(s) == simdjson::SUCCESS) d.urls.emplace_back(s);
    }
  }
  return d;
}

}  // namespace

std::string media::AcceptHeader() {
  return std::string(kOciIndex) + ", " + std::string(kOciManifest) + ", " + std::string(kDockerList) + ", " +
         std::string(kDockerManifest);
}

std::string Platform::ToString() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

Result<Platform> Platform::Parse(std::string_view text) {
  Platform p;
  auto slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0) {
    return Status::InvalidArgument("platform '" + std::string(text) + "': expected os/arch[/variant]");
  }
  p.os = std::string(text.substr(0, slash));
  std::string_view rest = text.substr(slash + 1);
  auto slash2 = rest.find('/');
  p.architecture = std::string(rest.substr(0, slash2));
  if (slash2 != std::string_view::npos) p.variant = std::string(rest.substr(slash2 + 1));
  if (p.architecture.empty() || (slash2 != std::string_view::npos && p.variant.empty())) {
    return Status::InvalidArgument("platform '" + std::string(text) + "': expected os/arch[/variant]");
  }
  return p;
}

bool Platform::Matches(const Platform& want) const {
  if (!want.os.empty() && want.os != os) return false;
  if (!want.architecture.empty() && want.architecture != architecture) return false;
  return want.variant.empty() || want.variant == variant;
}

std::vector<Descriptor> Manifest::References() const {
  if (is_index()) return manifests;
  std::vector<Descriptor> out;
  out.reserve(layers.size() + 1);
  out.push_back(config);
  out.insert(out.end(), layers.begin(), layers.end());
  return out;
}

Result<Manifest> ParseManifest(std::string_view bytes, std::string_view content_type) {
  if (bytes.size() > kMaxManifestSize) {
    return Bad(std::to_string(bytes.size()) + " bytes, more than the limit of " + std::to_string(kMaxManifestSize));
  }
  simdjson::dom::parser parser;
  simdjson::padded_string padded(bytes);
  element root;
  if (auto err = parser.parse(padded).get(root); err != simdjson::SUCCESS) {
    return Bad(std::string("not valid JSON (") + simdjson::error_message(err) + ")");
  }
  object o;
  if (root.get(o) != simdjson::SUCCESS) return Bad("top level is not a JSON object");
  int64_t schema = 0;
  if (o["schemaVersion"].get(schema) != simdjson::SUCCESS || schema != 2) {
    return Bad("schemaVersion must be 2 (schema 1 manifests are not supported)");
  }
  Manifest m;
  m.media_type = GetString(o, "mediaType");
  if (m.media_type.empty()) {
    auto semi = content_type.find(';');
    m.media_type = std::string(content_type.substr(0, semi));
  }
  simdjson::dom::array children;
  bool has_manifests = o["manifests"].get(children) == simdjson::SUCCESS;
  if (m.media_type.empty() || m.media_type == "application/json") {
    m.media_type = std::string(has_manifests ? media::kOciIndex : media::kOciManifest);
  }
  if (m.media_type == media::kOciIndex || m.media_type == media::kDockerList) {
    m.kind = ManifestKind::kIndex;
    if (!has_manifests) return Bad("index has no manifests array");
    size_t i = 0;
    for (auto child : children) {
      auto d = ParseDescriptor(child, ("manifests[" + std::to_string(i++) + "]").c_str());
      if (!d.ok()) return std::move(d).take_status();
      m.manifests.push_back(std::move(*d));
    }
    return m;
  }
  if (m.media_type != media::kOciManifest && m.media_type != media::kDockerManifest) {
    return Bad("unsupported media type '" + m.media_type + "'");
  }
  m.kind = ManifestKind::kImage;
  element config;
  if (o["config"].get(config) != simdjson::SUCCESS) return Bad("image manifest has no config");
  auto c = ParseDescriptor(config, "config");
  if (!c.ok()) return std::move(c).take_status();
  m.config = std::move(*c);
  simdjson::dom::array layers;
  if (o["layers"].get(layers) != simdjson::SUCCESS) return Bad("image manifest has no layers array");
  size_t i = 0;
  for (auto layer : layers) {
    auto d = ParseDescriptor(layer, ("layers[" + std::to_string(i++) + "]").c_str());
    if (!d.ok()) return std::move(d).take_status();
    m.layers.push_back(std::move(*d));
  }
  return m;
}

Result<Platform> ParseConfigPlatform(std::string_view config_bytes) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(config_bytes);
  element root;
  object o;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS || root.get(o) != simdjson::SUCCESS) {
    return Status::InvalidArgument("image config: not a JSON object");
  }
  Platform p;
  p.os = GetString(o, "os");
  p.architecture = GetString(o, "architecture");
  p.variant = GetString(o, "variant");
  return p;
}

}  // namespace silo::index
