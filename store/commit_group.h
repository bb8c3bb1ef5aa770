// The store's CommitGroup (private to store/): the batch many writers queue their object
// records and new chunks in, and the pins that keep them from gc.
#pragma once

#include <rocksdb/write_batch.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "store/gc_barrier.h"
#include "store/records.h"
#include "store/store.h"

namespace silo::store {

class StoreImpl;

class CommitGroupImpl final : public CommitGroup {
 public:
  CommitGroupImpl(StoreImpl* store, const CommitGroupOptions& options);

  Status Flush() override;
  uint64_t bytes_added() const override { return bytes_added_.load(); }

  // --- for writers (store/writer.cc); every call is thread-safe ---
  // The first write error, if any (sticky).
  Status error();
  // Pin an object (raw SHA-256 digest) or a chunk for as long as the group lives. A writer
  // of the group pins here what it relies on, instead of with the store's barrier.
  void PinObject(std::string_view raw_digest) { pins_.PinObject(raw_digest); }
  void PinChunk(const ChunkId& id) { pins_.PinChunk(KeyOf(id)); }
  // Queues a chunk not found in the store, unless the group holds it already: *added tells
  // which, *stored_size is what it adds (0 when not added). `zstd_level` as WriteChunk's.
  Status AddChunk(const ChunkId& id, ByteSpan raw, int zstd_level, bool* added, uint64_t* stored_size);
  // Queues an object's record and SHA-1 alias (nullopt: none). The batch writes the record
  // unless the store holds the object by then. Returns false when the group queued the
  // object already (then nothing is queued). May write the batch (the calling thread
  // does). The writer has pinned the object (PinObject) and what it needs.
  Result<bool> AddObject(const Digest& digest, std::string record, std::optional<Digest> alias);
  // Counts bytes a writer of the group stored by itself (chunks written without the WAL,
  // the record of an object that committed on its own).
  void CountAdded(uint64_t bytes) { bytes_added_ += bytes; }

 private:
  struct QueuedObject {
    Digest digest;
    std::string record;
    std::optional<Digest> alias;
  };
  struct Pending {
    rocksdb::WriteBatch batch;  // the chunks
    std::vector<QueuedObject> objects;
    uint64_t chunk_bytes = 0;  // stored bytes of the chunks in `batch`
    size_t bytes = 0;          // chunks and records
  };
  // With flush_mu_ held: writes `mu_`'s pending batch (if any) with the records of the
  // objects the store lacks.
  Status WriteLocked();

  StoreImpl* store_;
  const size_t max_bytes_;
  PinSet pins_;
  std::mutex flush_mu_;  // one batch written at a time, in the order they were cut
  std::mutex mu_;        // everything below
  Pending pending_;
  Status error_;
  // Every object and chunk queued, kept after their batch is written, so a writer that
  // looked before that write does not queue them again.
  RawIdSet objects_;
  RawIdSet chunks_;
  std::atomic<uint64_t> bytes_added_{0};
};

}  // namespace silo::store
