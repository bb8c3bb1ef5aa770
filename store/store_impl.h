// The RocksDB-backed Store (private to store/).
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "store/chunk_cache.h"
#include "store/gc_barrier.h"
#include "store/records.h"
#include "store/store.h"
#include "util/thread_pool.h"

namespace silo::store {

class StoreImpl final : public Store {
 public:
  ~StoreImpl() override;

  static Result<std::unique_ptr<Store>> Open(const std::string& path, const OpenOptions& options);

  const std::string& path() const override { return path_; }
  const ChunkParams& chunk_params() const override { return params_; }

  Result<std::unique_ptr<ObjectWriter>> NewWriter(const PutOptions& options) override;
  Result<ObjectInfo> Put(ByteSpan data, const PutOptions& options) override;
  Result<ObjectInfo> Stat(const Digest& digest) override;
  Result<std::unique_ptr<ObjectReader>> NewReader(const Digest& digest) override;
  Result<std::string> ReadAll(const Digest& digest, uint64_t max_size) override;
  Result<std::vector<Digest>> Missing(std::span<const Digest> digests) override;
  Result<Digest> Resolve(const Digest& digest) override;
  std::unique_ptr<ObjectPins> NewPins() override;
  Result<std::shared_ptr<CommitGroup>> NewCommitGroup(const CommitGroupOptions& options) override;

  Result<std::optional<Digest>> GetRef(const std::string& name) override;
  Status SetRef(const std::string& name, const Digest& target, std::optional<std::optional<Digest>> expected) override;
  Status DeleteRef(const std::string& name, std::optional<Digest> expected) override;
  Result<std::vector<RefEntry>> ListRefs(const std::string& prefix) override;

  Result<std::optional<std::string>> GetIndex(std::string_view space, std::string_view key) override;
  Result<std::vector<std::optional<std::string>>> GetIndexMany(std::string_view space,
                                                               std::span<const std::string> keys) override;
  Status PutIndex(std::string_view space, std::string_view key, std::string_view value) override;
  Status WriteIndex(std::string_view space,
                    std::span<const std::pair<std::string, std::optional<std::string>>> changes) override;
  Status ScanIndex(std::string_view space, std::string_view prefix,
                   const std::function<bool(std::string_view, std::string_view)>& fn) override;
  Status DropIndex(std::string_view space) override;

  Result<GcReport> CollectGarbage(const GcOptions& options) override;
  Result<FsckReport> Check(const FsckOptions& options) override;
  Result<StoreStats> Stats() override;
  ChunkCacheStats chunk_cache_stats() const override;
  void StartFlush() override;

  // --- shared by the writer, reader, gc and fsck ---
  rocksdb::DB* db() { return db_.get(); }
  rocksdb::ColumnFamilyHandle* objects() { return cfs_[kObjects]; }
  rocksdb::ColumnFamilyHandle* aliases() { return cfs_[kAliases]; }
  rocksdb::ColumnFamilyHandle* chunks() { return cfs_[kChunks]; }
  rocksdb::ColumnFamilyHandle* chunk_meta() { return cfs_[kChunkMeta]; }
  rocksdb::ColumnFamilyHandle* refs() { return cfs_[kRefs]; }
  rocksdb::ColumnFamilyHandle* meta() { return cfs_[kMeta]; }
  rocksdb::ColumnFamilyHandle* index() { return cfs_[kIndex]; }
  GcBarrier& barrier() { return barrier_; }
  std::mutex& refs_mutex() { return refs_mu_; }
  ThreadPool& pool() { return *pool_; }
  uint32_t inline_max() const { return inline_max_; }
  int zstd_level() const { return zstd_level_; }
  bool read_only() const { return read_only_; }
  Status RequireWritable(std::string_view what) const;

  // What Stat() tells of the object `digest` whose record is `r`.
  static ObjectInfo InfoFromRecord(const Digest& digest, const ObjectRecord& r);
  // The record of a SHA-256 object; NotFound when absent.
  Result<ObjectRecord> LoadRecord(const Digest& digest, const rocksdb::Snapshot* snapshot = nullptr);
  // Reads and verifies one chunk into `out`. Integrity error when damaged or missing.
  Status ReadChunk(const ChunkId& id, std::string* out);
  // Reads and verifies one chunk without copying it when stored raw: `*out` points into
  // `pin` (raw) or `scratch` (decompressed) and stays valid until either changes.
  Status ReadChunkView(const ChunkId& id, rocksdb::PinnableSlice* pin, std::string* scratch, std::string_view* out);
  // A verified chunk through the chunk cache: from it when there, else read, verified and
  // added. Null without error when the store has no chunk cache (use ReadChunkView).
  Result<std::shared_ptr<const ChunkBytes>> ReadCachedChunk(const ChunkId& id);
  bool ChunkExists(const ChunkId& id);
  // Deletes a chunk found damaged (objects using it are damaged already; fsck names them).
  Status DropDamagedChunk(const ChunkId& id);
  // Appends chunk `id`'s value to `batch` (`enc`'s header, then its frame or `raw` itself,
  // not copied first) and returns the chunk's metadata as of now.
  Result<ChunkMeta> PutChunkValue(rocksdb::WriteBatch* batch, const ChunkId& id, ByteSpan raw, const EncodedChunk& enc);
  // Writes a new chunk and its metadata in one batch through the WAL (so a commit written
  // after it can never survive a crash that loses it). `zstd_level` 0: the store's level.
  Status WriteChunk(const ChunkId& id, ByteSpan raw, uint64_t* stored_size, int zstd_level = 0);
  // The zstd level a chunk written with `zstd_level` gets (0: the store's level; a store
  // created without compression stays without it).
  int ChunkLevel(int zstd_level) const { return zstd_level_ == 0 ? 0 : zstd_level > 0 ? zstd_level : zstd_level_; }
  // The same for the bulk of a large object, with each byte written once instead of twice:
  // a pending metadata record goes through the WAL, the bytes do not. Until the caller
  // has called FlushUnloggedChunks(*ticket) and written `*meta` with pending cleared (in
  // the batch that commits or checkpoints the object), the chunk is invisible to
  // ChunkExists, so no other object can come to depend on bytes a crash could lose; a
  // crash leaves a pending record that gc sweeps after its grace period.
  Status WriteChunkUnlogged(const ChunkId& id, ByteSpan raw, int zstd_level, ChunkMeta* meta, uint64_t* ticket);
  // Makes every chunk whose WriteChunkUnlogged returned a ticket up to `ticket` durable,
  // by flushing the chunks column family; concurrent callers share one flush.
  Status FlushUnloggedChunks(uint64_t ticket);
  uint64_t DiskUsage() const;
  // Store-wide bound on chunk bytes queued or being written by all writers together, so
  // memory stays bounded however many objects are written at once.
  void AcquireChunkBudget(size_t bytes);
  void ReleaseChunkBudget(size_t bytes);

  // The raw key of `key` in index space `space`: "<space>\0<key>".
  static std::string IndexKey(std::string_view space, std::string_view key);

 private:
  enum Cf { kMeta = 0, kObjects, kAliases, kChunks, kChunkMeta, kRefs, kIndex, kCfCount };

  StoreImpl() = default;
  Status InitMeta(const OpenOptions& options, bool created);
  // After a collection: flush, compact, and rewrite blob files that are mostly garbage.
  Status Reclaim(bool full);

  std::string path_;
  bool read_only_ = false;
  ChunkParams params_;
  uint32_t inline_max_ = 16 * 1024;
  int zstd_level_ = 1;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;
  GcBarrier barrier_;
  std::mutex refs_mu_;
  std::mutex gc_mu_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<ChunkCache> chunk_cache_;  // null: OpenOptions::chunk_cache_bytes was 0
  std::mutex budget_mu_;
  std::condition_variable budget_cv_;
  size_t budget_used_ = 0;
  static constexpr size_t kChunkBudget = 48 << 20;
  // Unlogged chunk writes hold unlogged_mu_ shared while they take a ticket and write;
  // FlushUnloggedChunks holds it exclusively to read the last ticket, so every write with
  // a ticket up to that one is in a memtable the flush that follows covers.
  std::shared_mutex unlogged_mu_;
  std::atomic<uint64_t> unlogged_tickets_{0};  // taken with unlogged_mu_ held shared
  std::mutex flush_mu_;
  uint64_t flushed_ticket_ = 0;  // under flush_mu_
};

}  // namespace silo::store
