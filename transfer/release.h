// OpenShift release images (FastSync's release mode): the component images a release
// names in `release-manifests/image-references`, an ImageStream JSON inside one of its layers.
#pragma once

#include <string>
#include <vector>

#include "store/store.h"
#include "util/result.h"

namespace silo::transfer {

// Reads the release image `top` (an index or a manifest, already in the store) and returns
// the component references ("quay.io/…@sha256:…") of every platform present, without
// duplicates, in the order found. NotFound when no layer holds image-references.
Result<std::vector<std::string>> ReleaseComponents(store::Store& store, const store::Digest& top);

// Parses an ImageStream document: spec.tags[].from.name where from.kind is DockerImage.
Result<std::vector<std::string>> ParseImageReferences(std::string_view json);

}  // namespace silo::transfer
