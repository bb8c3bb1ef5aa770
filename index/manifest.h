// OCI and Docker image manifests and indexes. Parsing reads the raw bytes and never
// re-serializes them: what is stored and pushed is the registry's exact bytes, so digests
// are preserved.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace silo::index {

namespace media {
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
// The Accept header for manifest requests: every kind silo understands.
std::string AcceptHeader();
}  // namespace media

// Manifests larger than this are refused (as containerd does).
inline constexpr uint64_t kMaxManifestSize = 4 << 20;

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;

  // "linux/arm64/v8"
  std::string ToString() const;
  // "os/arch[/variant]"; the error names the input.
  static Result<Platform> Parse(std::string_view text);
  // True when `want` names this platform (an empty variant in `want` matches any).
  bool Matches(const Platform& want) const;
};

struct Descriptor {
  std::string media_type;
  std::string digest;  // "sha256:<hex>"
  uint64_t size = 0;
  std::optional<Platform> platform;
  std::vector<std::string> urls;  // foreign layers
};

enum class ManifestKind { kIndex, kImage };

struct Manifest {
  ManifestKind kind = ManifestKind::kImage;
  std::string media_type;
  // kIndex: the child manifests.
  std::vector<Descriptor> manifests;
  // kImage: the config and layers.
  Descriptor config;
  std::vector<Descriptor> layers;

  bool is_index() const { return kind == ManifestKind::kIndex; }
  // Every descriptor this manifest references (children, or config then layers).
  std::vector<Descriptor> References() const;
};

// Parses a manifest or index. `content_type` (the HTTP Content-Type, may be empty) is used
// when the JSON has no mediaType. Errors are InvalidArgument naming what is wrong.
Result<Manifest> ParseManifest(std::string_view bytes, std::string_view content_type = "");

// The platform of an image config ("os", "architecture", "variant"), for manifests whose
// index entry carried none.
Result<Platform> ParseConfigPlatform(std::string_view config_bytes);

}  // namespace silo::index
