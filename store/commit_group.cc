// CommitGroup: object records and new chunks of many writers written in one batch.
#include "store/commit_group.h"

#include "store/rocks.h"
#include "store/store_impl.h"

namespace silo::store {

CommitGroupImpl::CommitGroupImpl(StoreImpl* store, const CommitGroupOptions& options)
    : store_(store), max_bytes_(std::max<size_t>(options.max_bytes, 1)) {}

CommitGroupImpl::~CommitGroupImpl() {
  // Nothing unwritten becomes visible; the writers' pins and the group's go.
  auto& b = store_->barrier();
  for (const auto& k : pending_.chunk_pins) b.UnpinChunk(k);
  for (const auto& k : pending_.object_pins) b.UnpinObject(k);
  for (const auto& [id, queued] : objects_) b.UnpinObject(id);
}

Status CommitGroupImpl::error() {
  std::lock_guard lock(mu_);
  return error_;
}

void CommitGroupImpl::PinObject(const Digest& digest) {
  std::string id(digest.raw());
  {
    std::lock_guard lock(mu_);
    if (!objects_.try_emplace(id, false).second) return;
  }
  store_->barrier().PinObject(id);
}

Status CommitGroupImpl::AddChunk(const ChunkId& id, ByteSpan raw, int zstd_level, bool* added, uint64_t* stored_size) {
  *added = false;
  *stored_size = 0;
  std::string key(KeyOf(id));
  {
    std::lock_guard lock(mu_);
    SILO_TRY(error_);
    if (chunks_.contains(key)) return Status::Ok();
  }
  // Compressed outside the lock; two writers racing on the same new chunk may both
  // compress it, and the second finds it queued below.
  EncodedChunk enc = EncodeChunk(raw, store_->ChunkLevel(zstd_level));
  std::lock_guard lock(mu_);
  SILO_TRY(error_);
  if (chunks_.contains(key)) return Status::Ok();
  SILO_ASSIGN_OR_RETURN(ChunkMeta meta, store_->PutChunkValue(&pending_.batch, id, raw, enc));
  SILO_TRY(FromRocks(pending_.batch.Put(store_->chunk_meta(), key, meta.Encode()), "write chunk"));
  chunks_.insert(std::move(key));
  pending_.bytes += meta.stored_length;
  *added = true;
  *stored_size = meta.stored_length;
  return Status::Ok();
}

Result<bool> CommitGroupImpl::AddObject(const Digest& digest, std::optional<std::string> record,
                                        std::optional<Digest> alias, std::vector<std::string> chunk_pins,
                                        std::vector<std::string> object_pins) {
  std::string id(digest.raw());
  bool added = false;
  bool full = false;
  {
    std::lock_guard lock(mu_);
    // The pins go with the batch either way: it may hold chunks this object uses.
    for (auto& k : chunk_pins) pending_.chunk_pins.push_back(std::move(k));
    for (auto& k : object_pins) pending_.object_pins.push_back(std::move(k));
    SILO_TRY(error_);
    bool& queued = objects_[id];  // pinned by the writer through PinObject already
    if (!queued) {
      if (record) {
        SILO_TRY(FromRocks(pending_.batch.Put(store_->objects(), id, *record), "commit " + digest.ToString()));
        pending_.bytes += record->size();
      }
      if (alias)
        SILO_TRY(FromRocks(pending_.batch.Put(store_->aliases(), alias->raw(), id), "commit " + digest.ToString()));
      pending_.objects.push_back(id);
      queued = true;
      added = true;
    }
    full = pending_.bytes >= max_bytes_;
  }
  if (!full) return added;
  // The thread that fills the batch writes it, unless another write is under way (the
  // next commit tries again); far past the mark, it waits for its turn.
  std::unique_lock flush(flush_mu_, std::try_to_lock);
  if (!flush.owns_lock()) {
    {
      std::lock_guard lock(mu_);
      if (pending_.bytes < 4 * max_bytes_) return added;
    }
    flush.lock();
  }
  SILO_TRY(WriteLocked());
  return added;
}

Status CommitGroupImpl::Flush() {
  std::lock_guard flush(flush_mu_);
  return WriteLocked();
}

Status CommitGroupImpl::WriteLocked() {
  Pending writing;
  {
    std::lock_guard lock(mu_);
    SILO_TRY(error_);
    writing = std::move(pending_);
    pending_ = Pending();
  }
  Status s;
  auto& b = store_->barrier();
  if (writing.batch.Count() > 0) {
    // Under the barrier, as a single commit: a running collection either sees these
    // records or keeps what they use (shaded here; the objects are pinned besides).
    std::lock_guard lock(b.mutex());
    s = FromRocks(store_->db()->Write(rocksdb::WriteOptions(), &writing.batch), "commit group");
    if (s.ok()) {
      for (const auto& id : writing.objects) b.ShadeObjectLocked(id);
      for (const auto& k : writing.chunk_pins) b.ShadeChunkLocked(k);
      for (const auto& k : writing.object_pins) b.ShadeObjectLocked(k);
    }
  }
  for (const auto& k : writing.chunk_pins) b.UnpinChunk(k);
  for (const auto& k : writing.object_pins) b.UnpinObject(k);
  if (!s.ok()) {
    std::lock_guard lock(mu_);
    if (error_.ok()) error_ = s;
  }
  return s;
}

Result<std::shared_ptr<CommitGroup>> StoreImpl::NewCommitGroup(const CommitGroupOptions& options) {
  SILO_TRY(RequireWritable("commit group"));
  return std::shared_ptr<CommitGroup>(std::make_shared<CommitGroupImpl>(this, options));
}

}  // namespace silo::store
