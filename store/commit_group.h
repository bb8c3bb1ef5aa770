// The store's CommitGroup (private to store/): the batch many writers queue their object
// records and new chunks in, and the pins that keep them from gc.
#pragma once

#include <rocksdb/write_batch.h>

#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "store/records.h"
#include "store/store.h"

namespace silo::store {

class StoreImpl;

class CommitGroupImpl final : public CommitGroup {
 public:
  CommitGroupImpl(StoreImpl* store, const CommitGroupOptions& options);
  ~CommitGroupImpl() override;

  Status Flush() override;

  // --- for writers (store/writer.cc); every call is thread-safe ---
  // The first write error, if any (sticky).
  Status error();
  // Pins `digest` (SHA-256) for as long as the group lives (once however often asked).
  void PinObject(const Digest& digest);
  // Queues a chunk not found in the store, unless the group holds it already: *added tells
  // which, *stored_size is what it adds (0 when not added). `zstd_level` as WriteChunk's.
  Status AddChunk(const ChunkId& id, ByteSpan raw, int zstd_level, bool* added, uint64_t* stored_size);
  // Queues an object's record (nullopt: it is stored already) and SHA-1 alias (nullopt:
  // none to add). Takes over the writer's pins, `chunk_pins` (chunk keys) and
  // `object_pins` (link digests' raw bytes), and releases them once the batch holding the
  // object is written. Returns false when the group already held the object (then nothing
  // is queued). May write the batch (the calling thread does).
  Result<bool> AddObject(const Digest& digest, std::optional<std::string> record, std::optional<Digest> alias,
                         std::vector<std::string> chunk_pins, std::vector<std::string> object_pins);

 private:
  struct Pending {
    rocksdb::WriteBatch batch;
    std::vector<std::string> objects;     // raw digests of the records queued
    std::vector<std::string> chunk_pins;  // released once the batch is written
    std::vector<std::string> object_pins;
    size_t bytes = 0;
  };
  // With flush_mu_ held: writes `mu_`'s pending batch (if any) and releases its pins.
  Status WriteLocked();

  StoreImpl* store_;
  const size_t max_bytes_;
  std::mutex flush_mu_;  // one batch written at a time, in the order they were cut
  std::mutex mu_;        // everything below
  Pending pending_;
  Status error_;
  // Every object the group pinned (for its life), true once its record was queued; and
  // every chunk queued. Kept after their batch is written, so a writer that looked
  // before that write does not queue them again.
  std::unordered_map<std::string, bool> objects_;
  std::unordered_set<std::string> chunks_;
};

}  // namespace silo::store
