#include "store/chunk_cache.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace silo::store {
namespace {

// What a handed-out chunk's shared_ptr holds: the cache handle, released with the last
// holder. A named type, so FileOfPiece can find it with std::get_deleter.
struct ChunkHold {
  std::shared_ptr<rocksdb::Cache> cache;  // keeps the cache alive: a piece may outlive the store
  rocksdb::Cache::Handle* handle;
  void operator()(const ChunkBytes*) const { cache->Release(handle); }
};

// Cached chunks may use descriptors up to half the process's limit, so that sockets and
// RocksDB's files always find one; chunks beyond that stay on the heap.
int FdCeiling() {
  static const int ceiling = [] {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 512;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 30)) return 1 << 29;
    return static_cast<int>(rl.rlim_cur / 2);
  }();
  return ceiling;
}

// Moves a verified chunk's bytes into a memfd mapped read-only (one copy, on a miss). Keeps
// them where they are when the kernel refuses (no memfd, out of descriptors) or when the
// cache would hold too many descriptors.
void MoveToMemfd(ChunkBytes* b) {
  size_t len = b->view.size();
  if (len == 0) return;
  Fd fd(::memfd_create("silo-chunk", MFD_CLOEXEC));
  if (fd.get() < 0 || fd.get() >= FdCeiling()) return;
  for (size_t done = 0; done < len;) {
    ssize_t n = ::write(fd.get(), b->view.data() + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
  void* map = ::mmap(nullptr, len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
  if (map == MAP_FAILED) return;
  b->file = std::move(fd);
  b->map = map;
  b->map_len = len;
  b->view = std::string_view(static_cast<const char*>(map), len);
  b->pin = rocksdb::PinnableSlice();
  std::string().swap(b->scratch);
}

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
  return std::shared_ptr<const ChunkBytes>(bytes, ChunkHold{cache_, handle});
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
  MoveToMemfd(bytes.get());
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

ChunkBytes::~ChunkBytes() {
  if (map) ::munmap(map, map_len);
}

std::optional<PieceFile> FileOfPiece(const ObjectPiece& piece) {
  const auto* hold = std::get_deleter<ChunkHold>(piece.owner);
  if (!hold) return std::nullopt;
  const auto* bytes = static_cast<const ChunkBytes*>(hold->cache->Value(hold->handle));
  if (bytes->file.get() < 0 || piece.bytes.data() < bytes->view.data() ||
      piece.bytes.data() + piece.bytes.size() > bytes->view.data() + bytes->view.size()) {
    return std::nullopt;
  }
  return PieceFile{bytes->file.get(), static_cast<uint64_t>(piece.bytes.data() - bytes->view.data())};
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
