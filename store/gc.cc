// Garbage collection: mark from refs over links (at a snapshot), then sweep objects and
// chunks that nothing reaches, while other writers go on (see gc_barrier.h).
#include <rocksdb/options.h>

#include <chrono>
#include <deque>
#include <unordered_set>

#include "store/rocks.h"
#include "store/store_impl.h"
#include "util/interrupt.h"

namespace silo::store {
namespace {

constexpr size_t kBatch = 1024;

struct SnapshotGuard {
  rocksdb::DB* db;
  const rocksdb::Snapshot* snap;
  ~SnapshotGuard() { db->ReleaseSnapshot(snap); }
};

}  // namespace

Result<GcReport> StoreImpl::CollectGarbage(const GcOptions& options) {
  SILO_TRY(RequireWritable("gc"));
  std::lock_guard gc_lock(gc_mu_);
  auto t0 = std::chrono::steady_clock::now();
  GcReport report;
  report.disk_bytes_before = DiskUsage();
  const int64_t start_us = NowMicros();
  const int64_t grace_cutoff_us = start_us - std::chrono::duration_cast<std::chrono::microseconds>(options.grace).count();

  barrier_.Begin();
  struct EndGuard {
    GcBarrier& b;
    ~EndGuard() { b.End(); }
  } end_guard{barrier_};

  // Mark: every object reachable from a ref, as of this snapshot. Later changes are shaded.
  SnapshotGuard snap{db_.get(), db_->GetSnapshot()};
  std::unordered_set<std::string> marked;
  std::deque<Digest> queue;
  {
    rocksdb::ReadOptions ro;
    ro.snapshot = snap.snap;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, refs()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto d = DecodeRefTarget(it->value().ToStringView());
      if (d.ok() && marked.insert(std::string(d->raw())).second) queue.push_back(*d);
    }
    SILO_TRY(FromRocks(it->status(), "gc: read refs"));
  }
  while (!queue.empty()) {
    if (Interrupted()) return Status::Interrupted("gc interrupted while marking; nothing was removed");
    Digest d = queue.front();
    queue.pop_front();
    auto rec = LoadRecord(d, snap.snap);
    if (!rec.ok()) {
      if (rec.status().IsNotFound()) continue;  // a ref or link to an absent object
      return std::move(rec).take_status().WithContext("gc: mark");
    }
    for (const auto& l : rec->links) {
      if (marked.insert(std::string(l.raw())).second) queue.push_back(l);
    }
  }

  // Sweep objects: unmarked, not pinned or shaded by a concurrent writer.
  std::unordered_set<std::string> dead_chunks;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), objects()));
    std::vector<std::pair<std::string, ObjectRecord>> candidates;
    auto flush = [&]() -> Status {
      if (candidates.empty()) return Status::Ok();
      rocksdb::WriteBatch batch;
      std::lock_guard lock(barrier_.mutex());
      for (auto& [key, rec] : candidates) {
        if (!barrier_.ObjectDeletableLocked(key)) {
          ++report.objects_kept;
          continue;
        }
        ++report.objects_removed;
        report.logical_bytes_removed += rec.size;
        batch.Delete(objects(), key);
        if (rec.has_sha1) {
          std::string alias_key(reinterpret_cast<const char*>(rec.sha1.data()), rec.sha1.size());
          std::string target;
          if (db_->Get(rocksdb::ReadOptions(), aliases(), alias_key, &target).ok() && target == key) {
            batch.Delete(aliases(), alias_key);
          }
        }
        for (const auto& c : rec.chunks) dead_chunks.insert(std::string(KeyOf(c.id)));
      }
      candidates.clear();
      if (options.dry_run || batch.Count() == 0) return Status::Ok();
      return FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "gc: delete objects");
    };
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string key = it->key().ToString();
      if (marked.contains(key)) {
        ++report.objects_kept;
        continue;
      }
      auto rec = ObjectRecord::Decode(it->value().ToStringView());
      if (!rec.ok()) {
        ++report.objects_kept;  // fsck reports it; gc never deletes what it cannot read
        continue;
      }
      candidates.emplace_back(std::move(key), std::move(*rec));
      if (candidates.size() >= kBatch) SILO_TRY(flush());
    }
    SILO_TRY(FromRocks(it->status(), "gc: scan objects"));
    SILO_TRY(flush());
  }
  marked.clear();

  // Chunks still referenced by any remaining object (including ones committed meanwhile).
  std::unordered_set<std::string> live_chunks;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), objects()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto rec = ObjectRecord::Decode(it->value().ToStringView());
      if (!rec.ok()) continue;
      for (const auto& c : rec->chunks) live_chunks.insert(std::string(KeyOf(c.id)));
    }
    SILO_TRY(FromRocks(it->status(), "gc: scan objects"));
  }
  if (options.dry_run) {
    for (const auto& k : dead_chunks) live_chunks.erase(k);
  }

  // Sweep chunks: unreferenced, and either freed by this collection or older than the grace
  // period (data of unfinished writes).
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), chunk_meta()));
    std::vector<std::pair<std::string, ChunkMeta>> candidates;
    auto flush = [&]() -> Status {
      if (candidates.empty()) return Status::Ok();
      rocksdb::WriteBatch batch;
      std::lock_guard lock(barrier_.mutex());
      for (auto& [key, meta] : candidates) {
        if (!barrier_.ChunkDeletableLocked(key)) continue;
        ++report.chunks_removed;
        report.stored_bytes_removed += meta.stored_length;
        batch.Delete(chunks(), key);
        batch.Delete(chunk_meta(), key);
      }
      candidates.clear();
      if (options.dry_run || batch.Count() == 0) return Status::Ok();
      return FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "gc: delete chunks");
    };
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string key = it->key().ToString();
      if (live_chunks.contains(key)) continue;
      auto meta = ChunkMeta::Decode(it->value().ToStringView());
      if (!meta.ok()) continue;
      bool freed_now = dead_chunks.contains(key);
      if (!freed_now && meta->written_us >= grace_cutoff_us) continue;
      candidates.emplace_back(std::move(key), *meta);
      if (candidates.size() >= kBatch) SILO_TRY(flush());
    }
    SILO_TRY(FromRocks(it->status(), "gc: scan chunks"));
    SILO_TRY(flush());
  }

  if (!options.dry_run && (report.objects_removed > 0 || report.chunks_removed > 0)) {
    // Drop tombstones and let blob garbage collection release the space of dead chunks.
    // Blob files holding only dead chunks are dropped by the compaction. --full also
    // rewrites the live chunks of partly dead blob files, so no removed byte stays on disk.
    rocksdb::CompactRangeOptions cro;
    if (options.full) {
      cro.blob_garbage_collection_policy = rocksdb::BlobGarbageCollectionPolicy::kForce;
      cro.blob_garbage_collection_age_cutoff = 1.0;
    }
    for (auto* cf : {objects(), aliases(), chunk_meta(), chunks()}) {
      SILO_TRY(FromRocks(db_->CompactRange(cro, cf, nullptr, nullptr), "gc: compact"));
    }
  }
  report.disk_bytes_after = DiskUsage();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace silo::store
