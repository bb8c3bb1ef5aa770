#include "store/chunk_cache.h"

#include <utility>

namespace silo::store {
namespace {

void DeleteChunkBytes(const rocksdb::Slice& /*key*/, void* value) {
  delete static_cast<ChunkBytes*>(value);
}

// Few shards of at least 32 MiB each: a shard evicts by its own share of the capacity, so
// with many small shards an uneven spread of one object's chunks would evict some of them
// while the cache as a whole has room. Lookups come once per chunk (about 1 MiB), so one
// lock per shard is no contention.
int ShardBits(size_t capacity) {
  int bits = 0;
  while (bits < 4 && (capacity >> (bits + 1)) >= (size_t{32} << 20)) ++bits;
  return bits;
}

}  // namespace

ChunkCache::ChunkCache(size_t capacity)
    : cache_(rocksdb::NewLRUCache(capacity, ShardBits(capacity), /*strict_capacity_limit=*/false)) {}

std::shared_ptr<const ChunkBytes> ChunkCache::Hold(rocksdb::Cache::Handle* handle) {
  auto* bytes = static_cast<const ChunkBytes*>(cache_->Value(handle));
  // The holder keeps the cache itself alive, so a piece may outlive the store.
  return std::shared_ptr<const ChunkBytes>(bytes,
                                           [cache = cache_, handle](const ChunkBytes*) { cache->Release(handle); });
}

std::shared_ptr<const ChunkBytes> ChunkCache::Lookup(const ChunkId& id) {
  rocksdb::Cache::Handle* handle = cache_->Lookup(rocksdb::Slice(KeyOf(id).data(), KeyOf(id).size()));
  if (!handle) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  hits_.fetch_add(1, std::memory_order_relaxed);
  return Hold(handle);
}

std::shared_ptr<const ChunkBytes> ChunkCache::Insert(const ChunkId& id, std::unique_ptr<ChunkBytes> bytes) {
  size_t charge = bytes->footprint() + sizeof(ChunkBytes);
  rocksdb::Cache::Handle* handle = nullptr;
  ChunkBytes* raw = bytes.release();
  rocksdb::Status s =
      cache_->Insert(rocksdb::Slice(KeyOf(id).data(), KeyOf(id).size()), raw, charge, &DeleteChunkBytes, &handle);
  if (!s.ok()) {
    // Only a strict capacity limit refuses an entry, and this cache sets none. Refused, the
    // bytes are still the caller's to read, uncached.
    return std::shared_ptr<const ChunkBytes>(raw);
  }
  return Hold(handle);
}

ChunkCacheStats ChunkCache::stats() const {
  ChunkCacheStats out;
  out.capacity = cache_->GetCapacity();
  out.usage = cache_->GetUsage();
  out.pinned = cache_->GetPinnedUsage();
  out.hits = hits_.load(std::memory_order_relaxed);
  out.misses = misses_.load(std::memory_order_relaxed);
  return out;
}

}  // namespace silo::store
