#include "index/gather.h"

#include <cstdio>
#include <map>

#include "index/image.h"
#include "index/manifest.h"
#include "util/hash.h"
#include "util/json.h"

namespace silo::index {
Result<GatherResult> Gather(store::Store& store, const std::vector<std::string>& names, const Reference& target) {
  if (target.tag.empty()) {
    return Status::InvalidArgument("gather: " + target.ToString() + ": the target needs a tag (REGISTRY/REPO:TAG)");
  }
  std::map<std::string, store::Digest> selected;  // ref name -> top
  for (const auto& n : names) {
    SILO_ASSIGN_OR_RETURN(auto found, FindImages(store, n));
    for (const auto& e : found) selected.emplace(e.name, e.target);
  }
  if (selected.empty()) return Status::InvalidArgument("gather: the list names no image");
  std::string out = "{\"schemaVersion\":2,\"mediaType\":" + JsonQuote(media::kOciIndex) + ",\"manifests\":[";
  store::PutOptions po;
  bool first = true;
  for (const auto& [name, digest] : selected) {
    SILO_ASSIGN_OR_RETURN(Reference ref, ImageRefReference(name));
    SILO_ASSIGN_OR_RETURN(std::string bytes, store.ReadAll(digest, kMaxManifestSize));
    auto parsed = ParseManifest(bytes);
    if (!parsed.ok()) return parsed.status().WithContext("gather: image " + ref.ToString());
    std::string media_type = parsed->media_type;
    if (media_type.empty()) media_type = parsed->is_index() ? media::kOciIndex : media::kOciManifest;
    out += std::string(first ? "" : ",") + "{\"mediaType\":" + JsonQuote(media_type) +
           ",\"digest\":" + JsonQuote(digest.ToString()) + ",\"size\":" + std::to_string(bytes.size()) +
           ",\"annotations\":{\"org.opencontainers.image.ref.name\":" + JsonQuote(ref.ToString()) + "}}";
    first = false;
    po.links.push_back(digest);
  }
  out += "]}";
  GatherResult result;
  result.ref = ImageRefName(target);
  result.images = selected.size();
  po.ref = result.ref;
  SILO_ASSIGN_OR_RETURN(auto info, store.Put(AsBytes(out), po));
  result.digest = info.digest;
  return result;
}

}  // namespace silo::index
