// CommitGroup: object records and new chunks of many writers written in one batch.
#include "store/commit_group.h"

#include "store/rocks.h"
#include "store/store_impl.h"

namespace silo::store {

CommitGroupImpl::CommitGroupImpl(StoreImpl* store, const CommitGroupOptions& options)
    : store_(store), max_bytes_(std::max<size_t>(options.max_bytes, 1)), pins_(store->barrier()) {}

Status CommitGroupImpl::error() {
  std::lock_guard lock(mu_);
  return error_;
}

Status CommitGroupImpl::AddChunk(const ChunkId& id, ByteSpan raw, int zstd_level, bool* added, uint64_t* stored_size) {
  *added = false;
  *stored_size = 0;
  const RawId key = RawId::Of(KeyOf(id));
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
  if (!chunks_.insert(key).second) return Status::Ok();
  auto meta = store_->PutChunkValue(&pending_.batch, id, raw, enc);
  Status s = meta.ok() ? FromRocks(pending_.batch.Put(store_->chunk_meta(), KeyOf(id), meta->Encode()), "write chunk")
                       : meta.status();
  if (!s.ok()) {
    chunks_.erase(key);
    return s;
  }
  pending_.bytes += meta->stored_length;
  pending_.chunk_bytes += meta->stored_length;
  *added = true;
  *stored_size = meta->stored_length;
  return Status::Ok();
}

Result<bool> CommitGroupImpl::AddObject(const Digest& digest, std::string record, std::optional<Digest> alias) {
  bool full = false;
  {
    std::lock_guard lock(mu_);
    SILO_TRY(error_);
    const RawId id = RawId::Of(digest.raw());
    if (!objects_.insert(id).second) return false;
    pending_.bytes += record.size();
    pending_.objects.push_back({digest, std::move(record), alias});
    full = pending_.bytes >= max_bytes_;
  }
  if (!full) return true;
  // The thread that fills the batch writes it, unless another write is under way (the
  // next commit tries again); far past the mark, it waits for its turn.
  std::unique_lock flush(flush_mu_, std::try_to_lock);
  if (!flush.owns_lock()) {
    {
      std::lock_guard lock(mu_);
      if (pending_.bytes < 4 * max_bytes_) return true;
    }
    flush.lock();
  }
  SILO_TRY(WriteLocked());
  return true;
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
  // Which objects the store holds already: one batched lookup (the group pins them, so
  // gc cannot take them away before the batch is written). Their records are not written
  // again; an alias is (the same pair again, if present).
  uint64_t added = writing.chunk_bytes;
  Status s;
  if (!writing.objects.empty()) {
    const size_t n = writing.objects.size();
    std::vector<rocksdb::Slice> keys;
    keys.reserve(n);
    for (const auto& o : writing.objects) keys.emplace_back(o.digest.raw().data(), o.digest.raw().size());
    std::vector<rocksdb::PinnableSlice> values(n);
    std::vector<rocksdb::Status> statuses(n);
    store_->db()->MultiGet(rocksdb::ReadOptions(), store_->objects(), n, keys.data(), values.data(), statuses.data());
    for (size_t i = 0; i < n && s.ok(); ++i) {
      const QueuedObject& o = writing.objects[i];
      if (statuses[i].IsNotFound()) {
        s = FromRocks(writing.batch.Put(store_->objects(), keys[i], o.record), "commit " + o.digest.ToString());
        added += o.record.size();
      } else if (!statuses[i].ok()) {
        s = FromRocks(statuses[i], "commit " + o.digest.ToString());
      }
      if (s.ok() && o.alias) {
        s = FromRocks(writing.batch.Put(store_->aliases(), o.alias->raw(), keys[i]), "commit " + o.digest.ToString());
      }
    }
  }
  // No barrier needed around the write: everything the batch names is pinned by the group.
  if (s.ok() && writing.batch.Count() > 0) {
    s = FromRocks(store_->db()->Write(rocksdb::WriteOptions(), &writing.batch), "commit group");
  }
  if (!s.ok()) {
    std::lock_guard lock(mu_);
    if (error_.ok()) error_ = s;
    return s;
  }
  bytes_added_ += added;
  return s;
}

Result<std::shared_ptr<CommitGroup>> StoreImpl::NewCommitGroup(const CommitGroupOptions& options) {
  SILO_TRY(RequireWritable("commit group"));
  return std::shared_ptr<CommitGroup>(std::make_shared<CommitGroupImpl>(this, options));
}

}  // namespace silo::store
