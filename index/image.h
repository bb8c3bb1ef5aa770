// Images in the store: naming (which ref an image is recorded under, which refs a user's
// name selects) and the graph under a top-level manifest or index (its manifests and blobs,
// in the order a push or export writes them). Used by push, export, tree and images.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "index/manifest.h"
#include "index/reference.h"
#include "store/store.h"

namespace silo::index {

// The ref an image is recorded under: "image/<registry>/<repo>:<tag>", or
// "image/<registry>/<repo>@<digest>" when known by digest alone.
std::string ImageRefName(const Reference& ref);
// The reference a ref name ("image/…") stands for; InvalidArgument for other names.
Result<Reference> ImageRefReference(std::string_view ref_name);

// The image refs a user's name selects: a full reference ("127.0.0.1:5000/app:1.0",
// "nginx" = docker.io/library/nginx:latest) selects its one ref; a name with a trailing
// '/' or '*' ("127.0.0.1:5000/team/*") selects every image under that prefix. NotFound
// naming the input when nothing matches.
Result<std::vector<store::RefEntry>> FindImages(store::Store& store, std::string_view name);

// A manifest or index as stored: its exact bytes, media type and parsed form.
struct ImageManifest {
  store::Digest digest;
  std::string bytes;
  std::string media_type;  // the manifest's mediaType (or the index entry's)
  Manifest parsed;
  std::optional<Platform> platform;  // from the parent index entry, when any
};

struct ImageGraph {
  store::Digest top;
  // Every manifest present in the store, children before their index (the top last): the
  // order a registry accepts them in.
  std::vector<ImageManifest> manifests;
  // Unique configs and layers of those manifests, in first-seen order.
  std::vector<Descriptor> blobs;
  // Index entries whose manifests are not in the store (a platform-filtered pull, or a
  // filter given here): the index is partial when this is non-empty.
  std::vector<Descriptor> absent_children;
  // Blobs a present manifest names that the store lacks (an incomplete image).
  std::vector<Descriptor> missing_blobs;

  bool partial() const { return !absent_children.empty(); }
  // Sum of the sizes of the manifests and unique blobs.
  uint64_t total_bytes() const;
};

struct GraphOptions {
  // Only index children of these platforms (empty: all that are present).
  std::vector<Platform> platforms;
};

// Reads the graph under `top` (a manifest or an index, nested indexes followed). Errors:
// NotFound when `top` is absent; InvalidArgument naming the manifest when one does not
// parse. Blobs are checked with one batched Missing() lookup.
Result<ImageGraph> LoadImageGraph(store::Store& store, const store::Digest& top, const GraphOptions& options = {});

}  // namespace silo::index
