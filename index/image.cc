#include "index/image.h"

#include <map>
#include <set>

namespace silo::index {

std::string ImageRefName(const Reference& ref) {
  std::string name = "image/" + ref.registry + "/" + ref.repository;
  return ref.tag.empty() ? name + "@" + ref.digest : name + ":" + ref.tag;
}

Result<Reference> ImageRefReference(std::string_view ref_name) {
  constexpr std::string_view kPrefix = "image/";
  if (!ref_name.starts_with(kPrefix)) {
    return Status::InvalidArgument("ref " + std::string(ref_name) + ": not an image ref (image/…)");
  }
  std::string_view rest = ref_name.substr(kPrefix.size());
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) {
    return Status::InvalidArgument("ref " + std::string(ref_name) + ": no registry/repository");
  }
  Reference ref;
  ref.registry = std::string(rest.substr(0, slash));
  std::string_view path = rest.substr(slash + 1);
  if (size_t at = path.find('@'); at != std::string_view::npos) {
    ref.digest = std::string(path.substr(at + 1));
    path = path.substr(0, at);
  } else {
    size_t colon = path.rfind(':');
    if (colon == std::string_view::npos || path.find('/', colon) != std::string_view::npos) {
      return Status::InvalidArgument("ref " + std::string(ref_name) + ": no tag or digest");
    }
    ref.tag = std::string(path.substr(colon + 1));
    path = path.substr(0, colon);
  }
  if (path.empty()) return Status::InvalidArgument("ref " + std::string(ref_name) + ": empty repository");
  ref.repository = std::string(path);
  return ref;
}

Result<std::vector<store::RefEntry>> FindImages(store::Store& store, std::string_view name) {
  if (name.ends_with('/') || name.ends_with('*')) {
    std::string prefix(name);
    if (prefix.ends_with('*')) prefix.pop_back();
    SILO_ASSIGN_OR_RETURN(auto refs, store.ListRefs("image/" + prefix));
    if (refs.empty()) return Status::NotFound("no image in the store under " + std::string(name));
    return refs;
  }
  SILO_ASSIGN_OR_RETURN(Reference ref, ParseReference(name));
  std::string ref_name = ImageRefName(ref);
  if (!ref.tag.empty()) {
    SILO_ASSIGN_OR_RETURN(auto target, store.GetRef(ref_name));
    if (target && (ref.digest.empty() || target->ToString() == ref.digest)) {
      return std::vector<store::RefEntry>{{ref_name, *target}};
    }
    if (ref.digest.empty()) return Status::NotFound("image " + std::string(name) + " is not in the store");
  }
  // By digest: the object itself, whatever tag (if any) it was pulled under.
  SILO_ASSIGN_OR_RETURN(auto digest, store::Digest::Parse(ref.digest));
  if (!store.Stat(digest).ok()) return Status::NotFound("image " + std::string(name) + " is not in the store");
  Reference by_digest = ref;
  by_digest.tag.clear();
  return std::vector<store::RefEntry>{{ImageRefName(by_digest), digest}};
}

uint64_t ImageGraph::total_bytes() const {
  uint64_t total = 0;
  for (const auto& m : manifests) total += m.bytes.size();
  for (const auto& b : blobs) total += b.size;
  return total;
}

namespace {

struct GraphBuilder {
  store::Store& store;
  const GraphOptions& options;
  ImageGraph graph;
  std::set<store::Digest> manifests_seen;
  std::set<std::string> blobs_seen;

  bool Wanted(const Descriptor& child) const {
    if (options.platforms.empty() || !child.platform) return true;
    for (const auto& p : options.platforms) {
      if (child.platform->Matches(p)) return true;
    }
    return false;
  }

  Status Visit(const store::Digest& digest, std::string_view media_type, std::optional<Platform> platform) {
    if (!manifests_seen.insert(digest).second) return Status::Ok();
    SILO_ASSIGN_OR_RETURN(std::string bytes, store.ReadAll(digest, kMaxManifestSize));
    auto parsed = ParseManifest(bytes, media_type);
    if (!parsed.ok()) return parsed.status().WithContext("manifest " + digest.ToString());
    if (parsed->is_index()) {
      for (const auto& child : parsed->manifests) {
        SILO_ASSIGN_OR_RETURN(auto d, store::Digest::Parse(child.digest));
        bool present = Wanted(child) && store.Stat(d).ok();
        if (!present) {
          graph.absent_children.push_back(child);
          continue;
        }
        SILO_TRY(Visit(d, child.media_type, child.platform));
      }
    } else {
      for (const auto& blob : parsed->References()) {
        if (blobs_seen.insert(blob.digest).second) graph.blobs.push_back(blob);
      }
    }
    ImageManifest m;
    m.digest = digest;
    m.media_type = parsed->media_type.empty() ? std::string(media_type) : parsed->media_type;
    m.parsed = std::move(*parsed);
    m.bytes = std::move(bytes);
    m.platform = std::move(platform);
    graph.manifests.push_back(std::move(m));
    return Status::Ok();
  }
};

}  // namespace

Result<ImageGraph> LoadImageGraph(store::Store& store, const store::Digest& top, const GraphOptions& options) {
  GraphBuilder b{store, options, {}, {}, {}};
  b.graph.top = top;
  SILO_TRY(b.Visit(top, "", std::nullopt).WithContext("image " + top.ToString()));
  std::vector<store::Digest> digests;
  digests.reserve(b.graph.blobs.size());
  for (const auto& blob : b.graph.blobs) {
    SILO_ASSIGN_OR_RETURN(auto d, store::Digest::Parse(blob.digest));
    digests.push_back(d);
  }
  SILO_ASSIGN_OR_RETURN(auto missing, store.Missing(digests));
  std::set<std::string> missing_set;
  for (const auto& d : missing) missing_set.insert(d.ToString());
  for (const auto& blob : b.graph.blobs) {
    if (missing_set.count(blob.digest)) b.graph.missing_blobs.push_back(blob);
  }
  return std::move(b.graph);
}

}  // namespace silo::index
