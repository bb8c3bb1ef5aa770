// Garbage collection: mark from refs over links (at a snapshot), then sweep objects and
// chunks that nothing reaches, while other writers go on (see gc_barrier.h).
#include <rocksdb/metadata.h>
#include <rocksdb/options.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <unordered_set>
#include <utility>

#include "store/rocks.h"
#include "store/store_impl.h"
#include "util/interrupt.h"

namespace silo::store {
namespace {

constexpr size_t kBatch = 1024;

struct SnapshotGuard {
  rocksdb::DB* db;
  const rocksdb::Snapshot* snap;
  ~SnapshotGuard() { Release(); }
  void Release() {
    if (snap) db->ReleaseSnapshot(std::exchange(snap, nullptr));
  }
};

}  // namespace

Status StoreImpl::Reclaim(bool full) {
  // Flush every column family first, so the WAL that still holds removed chunks can go.
  rocksdb::FlushOptions fo;
  SILO_TRY(FromRocks(db_->Flush(fo, cfs_), "gc: flush"));
  // A plain compaction drops the tombstones, records which blobs became garbage, and
  // deletes blob files that hold nothing else.
  rocksdb::CompactRangeOptions plain;
  for (auto* cf : {objects(), aliases(), chunk_meta(), chunks()}) {
    SILO_TRY(FromRocks(db_->CompactRange(plain, cf, nullptr, nullptr), "gc: compact"));
  }
  // Blob files partly garbage: rewrite the live chunks of the oldest files up to the newest
  // one that is at least a quarter garbage (all of them with --full), so the cost follows
  // the garbage rather than the size of the store.
  rocksdb::ColumnFamilyMetaData meta;
  db_->GetColumnFamilyMetaData(chunks(), &meta);
  auto files = meta.blob_files;
  std::sort(files.begin(), files.end(),
            [](const auto& a, const auto& b) { return a.blob_file_number < b.blob_file_number; });
  size_t upto = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& f = files[i];
    if (full || (f.garbage_blob_bytes > 0 && f.garbage_blob_bytes * 4 >= f.total_blob_bytes)) upto = i + 1;
  }
  if (upto == 0) return Status::Ok();
  rocksdb::CompactRangeOptions force;
  force.blob_garbage_collection_policy = rocksdb::BlobGarbageCollectionPolicy::kForce;
  force.blob_garbage_collection_age_cutoff = static_cast<double>(upto) / static_cast<double>(files.size());
  return FromRocks(db_->CompactRange(force, chunks(), nullptr, nullptr), "gc: rewrite blob files");
}

Result<GcReport> StoreImpl::CollectGarbage(const GcOptions& options) {
  SILO_TRY(RequireWritable("gc"));
  std::lock_guard gc_lock(gc_mu_);
  auto t0 = std::chrono::steady_clock::now();
  GcReport report;
  report.disk_bytes_before = DiskUsage();
  const int64_t start_us = NowMicros();
  const int64_t grace_cutoff_us =
      start_us - std::chrono::duration_cast<std::chrono::microseconds>(options.grace).count();

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

  // The snapshot must go before the sweep: while held, compactions keep what it can see.
  snap.Release();

  // Everything `roots` reaches (as the store is now) joins the marked set.
  auto trace = [&](std::vector<std::string> roots) -> Status {
    std::deque<Digest> pending;
    for (auto& id : roots) {
      Digest d;
      if (Digest::FromRaw(id, &d) && marked.insert(std::move(id)).second) pending.push_back(d);
    }
    while (!pending.empty()) {
      Digest d = pending.front();
      pending.pop_front();
      auto rec = LoadRecord(d);
      if (!rec.ok()) {
        if (rec.status().IsNotFound()) continue;
        return std::move(rec).take_status().WithContext("gc: trace");
      }
      for (const auto& l : rec->links) {
        if (marked.insert(std::string(l.raw())).second) pending.push_back(l);
      }
    }
    return Status::Ok();
  };

  // Sweep objects: unmarked, and not reached from anything kept for another reason (younger
  // than the grace period, pinned or shaded by a concurrent writer). The removals are one
  // atomic batch, so an object that exists always has what it links to: a snapshot may
  // trust a stored tree to be whole.
  std::unordered_set<std::string> dead_chunks;
  {
    struct Candidate {
      std::string key;
      ObjectRecord rec;
    };
    std::vector<Candidate> candidates;
    std::vector<std::string> young;
    uint64_t scanned = 0;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), objects()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (Interrupted()) return Status::Interrupted("gc interrupted while sweeping; nothing was removed");
      ++scanned;
      std::string key = it->key().ToString();
      if (marked.contains(key)) continue;
      auto rec = ObjectRecord::Decode(it->value().ToStringView());
      if (!rec.ok()) continue;  // unreadable records are fsck's business
      if (rec->created_us >= grace_cutoff_us) {
        // Objects younger than the grace period may be about to gain a ref (a pull stores
        // blobs before its manifest and tag); what they link to stays with them.
        young.push_back(std::move(key));
        continue;
      }
      rec->inline_data.clear();
      candidates.push_back({std::move(key), std::move(*rec)});
    }
    SILO_TRY(FromRocks(it->status(), "gc: scan objects"));
    it.reset();
    SILO_TRY(trace(std::move(young)));

    rocksdb::WriteBatch batch;
    GcBarrier::SweepLock lock(barrier_);
    SILO_TRY(trace(barrier_.ProtectedObjectsLocked()));
    for (auto& [key, rec] : candidates) {
      if (marked.contains(key) || !barrier_.ObjectDeletableLocked(key)) continue;
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
    report.objects_kept = scanned - report.objects_removed;
    if (!options.dry_run && batch.Count() > 0) {
      SILO_TRY(FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "gc: delete objects"));
    }
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
      GcBarrier::SweepLock lock(barrier_);
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
    SILO_TRY(Reclaim(options.full));
  }
  report.disk_bytes_after = DiskUsage();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace silo::store
