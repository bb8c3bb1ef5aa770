// How repository names served under /v2/ map to the store's image refs, and back.
//
// Pulled images live under refs "image/<registry>/<repository>:<tag>" (and
// "image/<registry>/<repository>@<digest>" for manifests known by digest only; see
// transfer/pull.h ImageRefName). A served name is "<registry>/<repository>" when its first
// component looks like a registry, else "<repository>" under the default registry:
//
//   served name                    refs under
//   docker.io/library/nginx        image/docker.io/library/nginx:TAG
//   127.0.0.1_5000/team/app        image/127.0.0.1:5000/team/app:TAG   (':' is not valid in a
//                                                                       name; '_' stands in)
//   app, team/app                  image/<default registry>/app:TAG     (a plain push)
//
// A first component looks like a registry when it contains '.', is "localhost", or ends
// in "_<port>" (hostnames never contain '_'). The default registry ("localhost" unless
// --default-registry says otherwise) is served by its short names.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "util/result.h"

namespace silo::server {

struct RepoLocation {
  std::string registry;    // "docker.io", "127.0.0.1:5000", "localhost"
  std::string repository;  // "library/nginx"

  // "image/<registry>/<repository>": tags follow after ':', digests after '@'.
  std::string RefPrefix() const { return "image/" + registry + "/" + repository; }
  std::string TagRef(std::string_view tag) const { return RefPrefix() + ":" + std::string(tag); }
  std::string DigestRef(std::string_view digest) const { return RefPrefix() + "@" + std::string(digest); }
  friend bool operator==(const RepoLocation&, const RepoLocation&) = default;
};

// Checks `name` against the distribution spec's repository grammar (lowercase components
// of [a-z0-9] joined by '.', '_', '__' or '-'s, separated by '/'); then maps it.
// InvalidArgument naming the input when it is not a valid name.
Result<RepoLocation> MapRepository(std::string_view name, std::string_view default_registry);

// The served name of the refs under `loc`, or nullopt when no valid name maps back there
// (a registry or repository outside the grammar).
std::optional<std::string> ServedName(const RepoLocation& loc, std::string_view default_registry);

// Splits an image ref "image/<registry>/<repository>(:<tag>|@<digest>)".
struct ImageRef {
  RepoLocation location;
  std::string tag;     // empty for a digest ref
  std::string digest;  // empty for a tag ref
};
std::optional<ImageRef> ParseImageRef(std::string_view ref);

// A tag as the spec allows it: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
bool ValidTag(std::string_view tag);

}  // namespace silo::server
