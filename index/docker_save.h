// The legacy archive of `docker save` and `podman save --format docker-archive`:
// manifest.json (one entry per image: its config file, tags and layer files, all paths
// inside the archive) and the Docker v2 schema 2 manifest silo rebuilds from an entry, since
// such archives carry no manifest of their own. Pure logic.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace silo::index {

inline constexpr std::string_view kDockerConfigType = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerTar = "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr std::string_view kDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";

struct DockerSaveImage {
  std::string config;                  // path of the config file ("<hex>.json", "blobs/sha256/<hex>")
  std::vector<std::string> repo_tags;  // "name:tag" as docker wrote them (may be empty)
  std::vector<std::string> layers;     // paths of the layer files, base first
};

// manifest.json; InvalidArgument (Corruption for a malformed file) naming the entry and
// field that is wrong. Paths lose a leading "./".
Result<std::vector<DockerSaveImage>> ParseDockerSaveManifest(std::string_view json);

// rootfs.diff_ids of an image config; Corruption when the config has none.
Result<std::vector<std::string>> ConfigDiffIds(std::string_view config_json);

// The layer media type that the first bytes of a layer file imply: gzip, else an
// uncompressed tar. Unsupported for zstd and other compressions (a Docker v2 schema 2
// manifest cannot name them), with `what` in the message.
Result<std::string> DockerLayerMediaType(std::string_view head, const std::string& what);

struct BlobRef {
  std::string media_type;
  std::string digest;  // "sha256:<hex>"
  uint64_t size = 0;
};

// The Docker v2 schema 2 manifest of `config` and `layers` (compact JSON, fixed key order:
// the same inputs give the same bytes, so importing an archive twice gives one digest).
std::string BuildDockerManifest(const BlobRef& config, const std::vector<BlobRef>& layers);

}  // namespace silo::index
