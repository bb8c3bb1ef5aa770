// ace-dt's `gather`: one OCI index that references every image of a list by digest, so a
// whole set is one artifact for push, export and batch-export.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "index/reference.h"
#include "store/store.h"
#include "util/result.h"

namespace silo::index {

struct GatherResult {
  store::Digest digest;  // of the index
  std::string ref;       // "image/<registry>/<repo>:<tag>" it was stored under
  size_t images = 0;
};

// Builds the index for the images `names` select (as FindImages reads them: references or
// prefixes ending in '/'), one entry per image ref, sorted by name, duplicates once. Each
// entry keeps the image's full name in the org.opencontainers.image.ref.name annotation.
// Stores it (linked to every entry, so gc keeps them) under the image ref of `target`
// ("registry/repo:tag") in one atomic commit. Errors name the input that selects nothing.
Result<GatherResult> Gather(store::Store& store, const std::vector<std::string>& names, const Reference& target);

}  // namespace silo::index
