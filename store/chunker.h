// Content-defined chunking in the manner of FastCDC: a gear rolling hash, cut-point
// skipping below the minimum size, and normalized chunking (a stricter mask below the
// average size, a looser one above) so chunk sizes cluster around the average.
// The gear table is fixed forever: changing it changes every chunk boundary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "util/hash.h"
#include "util/result.h"

namespace silo::store {

struct ChunkParams {
  uint32_t min_size = 256 * 1024;
  uint32_t avg_size = 1024 * 1024;
  uint32_t max_size = 4 * 1024 * 1024;

  // "fastcdc-v1 min=262144 avg=1048576 max=4194304", as recorded in the store.
  std::string Encode() const;
  static Result<ChunkParams> Decode(std::string_view text);
  Status Validate() const;
};

class Chunker {
 public:
  explicit Chunker(const ChunkParams& params);

  // Scans `data`, the continuation of the current chunk. Returns how many bytes of `data`
  // complete the current chunk (the state then resets for the next one), or nullopt when
  // the whole of `data` belongs to the current chunk.
  std::optional<size_t> FindCut(ByteSpan data);

 private:
  ChunkParams p_;
  uint64_t mask_small_;  // used below avg_size: more bits, harder to match
  uint64_t mask_large_;  // used from avg_size on: fewer bits, easier to match
  uint64_t fp_ = 0;
  size_t len_ = 0;
};

}  // namespace silo::store
