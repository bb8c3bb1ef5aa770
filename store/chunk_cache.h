// A bounded cache of verified, decoded chunks shared by every reader of one store (private
// to store/). A hit costs no RocksDB read, no copy, no checksum and no decompression, and
// many readers of one hot object share one copy of its chunks in memory.
//
// Only bytes whose XXH3 matched go in, so a damaged chunk still fails the read that loads
// it. Entries never go stale: a chunk id is the SHA-256 of the chunk's bytes, so whatever
// happens to the stored chunk later (gc, a rewrite of the same content), the cached bytes
// are still that chunk's bytes.
//
// Thread safety: every method may be called from any thread at once.
#pragma once

#include <rocksdb/cache.h>
#include <rocksdb/slice.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "store/records.h"
#include "store/store.h"

namespace silo::store {

// One chunk's bytes as loaded: a raw chunk is `pin` (RocksDB's value, after the header), a
// compressed one was decompressed into `scratch`; `view` is the bytes either way.
struct ChunkBytes {
  rocksdb::PinnableSlice pin;
  std::string scratch;
  std::string_view view;
  // The memory this holds (what the cache charges for it).
  size_t footprint() const { return pin.size() + scratch.capacity(); }
};

class ChunkCache {
 public:
  // Holds about `capacity` bytes of chunks (plus the chunks readers still hold after
  // their eviction); `capacity` > 0.
  explicit ChunkCache(size_t capacity);

  // The cached chunk, or null. What is returned stays valid for as long as it is held,
  // evicted or not (and after the cache and its store are gone).
  std::shared_ptr<const ChunkBytes> Lookup(const ChunkId& id);
  // Adds a chunk the caller has verified (replacing any entry for the same id) and returns
  // it, held as Lookup's result is.
  std::shared_ptr<const ChunkBytes> Insert(const ChunkId& id, std::unique_ptr<ChunkBytes> bytes);

  ChunkCacheStats stats() const;

 private:
  std::shared_ptr<const ChunkBytes> Hold(rocksdb::Cache::Handle* handle);

  std::shared_ptr<rocksdb::Cache> cache_;
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
};

}  // namespace silo::store
