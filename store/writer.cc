// The streaming object writer: hashes as bytes arrive, cuts content-defined chunks,
// hands each chunk to the store's pool (hash, compress, write if absent), and commits the
// object record in one atomic batch once size and digest check out.
#include <deque>
#include <mutex>

#include "store/commit_group.h"
#include "store/hash_lane.h"
#include "store/rocks.h"
#include "store/store_impl.h"
#include "util/interrupt.h"

namespace silo::store {
namespace {

constexpr std::string_view kPartialSpace = "partial";

class WriterImpl final : public ObjectWriter {
 public:
  WriterImpl(StoreImpl* store, PutOptions options)
      : store_(store),
        options_(std::move(options)),
        group_(static_cast<CommitGroupImpl*>(options_.commit_group.get())),
        chunker_(store->chunk_params()) {
    if (options_.sha1_alias || (options_.expected_digest && !options_.expected_digest->is_sha256())) {
      sha1_.emplace();
    }
    // A writer of a group pins what it relies on in the group's pins, for the group's life.
    for (const auto& l : options_.links) {
      if (group_) {
        group_->PinObject(l.raw());
      } else {
        store_->barrier().PinObject(std::string(l.raw()));
      }
    }
  }

  ~WriterImpl() override {
    inflight_.Wait();
    ReleasePins();
  }

  uint64_t bytes_written() const override { return total_; }

  Status SetExpected(const Digest& digest, std::optional<uint64_t> size) override {
    if (!digest.is_sha256()) return Status::InvalidArgument("expected digest " + digest.ToString() + ": not sha256");
    options_.expected_digest = digest;
    if (size) options_.expected_size = size;
    return Status::Ok();
  }

  // Restores the state of a checkpointed write: every stored chunk is read back, verified
  // and hashed again. Any problem discards the checkpoint and starts afresh.
  void Resume() {
    if (options_.resume_key.empty()) return;
    auto saved = store_->GetIndex(kPartialSpace, options_.resume_key);
    if (!saved.ok() || !saved->has_value()) return;
    auto rec = ObjectRecord::Decode(**saved);
    if (!rec.ok() || rec->inlined) return;
    std::string raw;
    for (const auto& c : rec->chunks) {
      store_->barrier().PinChunk(std::string(KeyOf(c.id)));
      auto& slot = slots_.emplace_back();
      slot.ref = c;
      slot.pinned = true;
      Status read = store_->ReadChunk(c.id, &raw);
      bool damaged = read.ok() ? raw.size() != c.length || Sha256::Of(AsBytes(raw)) != c.id
                               : read.code() == Code::kIntegrity && store_->ChunkExists(c.id);
      if (!read.ok() || damaged) {
        // Damaged bytes are dropped too, so this write stores them afresh instead of
        // deduplicating against them; a mere read error drops nothing.
        if (damaged) store_->DropDamagedChunk(c.id).IgnoreError();
        Restart();
        return;
      }
      sha256_.Update(AsBytes(raw));
      if (sha1_) sha1_->Update(AsBytes(raw));
      total_ += raw.size();
    }
    dispatched_bytes_ = total_;
    checkpointed_ = total_;
  }

  Status Checkpoint() override {
    if (options_.resume_key.empty() || committed_) return Status::Ok();
    inflight_.Wait();
    SILO_TRY(FirstError());
    if (slots_.empty()) return Status::Ok();
    ObjectRecord rec;
    for (const auto& s : slots_) {
      rec.chunks.push_back(s.ref);
      rec.size += s.ref.length;
    }
    rocksdb::WriteBatch batch;
    SILO_TRY(FlushUnlogged().status());
    AddConfirmed(&batch);
    batch.Put(store_->index(), StoreImpl::IndexKey(kPartialSpace, options_.resume_key), rec.Encode());
    SILO_TRY(FromRocks(store_->db()->Write(rocksdb::WriteOptions(), &batch), "checkpoint"));
    MarkConfirmed();
    checkpointed_ = dispatched_bytes_;
    return Status::Ok();
  }

  Status Write(ByteSpan data) override { return WriteImpl(data, nullptr); }
  Status WriteShared(ByteSpan data, std::shared_ptr<const void> owner) override {
    return WriteImpl(data, std::move(owner));
  }

 private:
  // `owner`, when set, keeps `data` alive for chunks still in flight after returning;
  // without one, chunks borrowed from `data` are waited for.
  Status WriteImpl(ByteSpan data, std::shared_ptr<const void> owner) {
    if (committed_) return Status::InvalidArgument("write after commit");
    if (Interrupted()) return Status::Interrupted("put interrupted");
    SILO_TRY(FirstError());
    if (options_.expected_size && total_ + data.size() > *options_.expected_size) {
      return Status::Integrity("content is larger than the expected size " + std::to_string(*options_.expected_size));
    }
    total_ += data.size();
    // A large write is hashed whole on the lane while this thread chunks it (two cores);
    // a small one is hashed and chunked here block by block, so each block is still in
    // cache for the second pass. The lane hashes in order: a small write waits for it.
    const bool laned = data.size() >= kLaneAtLeast;
    if (laned) {
      if (!lane_) lane_.emplace(&sha256_, sha1_ ? &*sha1_ : nullptr);
      lane_->Push(data, owner);
    } else if (lane_) {
      lane_->Drain();
    }
    // A chunk that lies wholly inside `data` is hashed and stored straight from it (no
    // copy), and Write waits for those before returning unless `owner` keeps `data` alive;
    // a chunk that began in an earlier call, or continues into the next, is gathered in buf_.
    size_t start = 0;  // where the current chunk begins in `data` (0 if it began earlier)
    bool borrowed = false;
    for (size_t off = 0; off < data.size();) {
      ByteSpan block = data.subspan(off, std::min<size_t>(kHashBlock, data.size() - off));
      if (!laned) {
        sha256_.Update(block);
        if (sha1_) sha1_->Update(block);
      }
      for (size_t b = 0; b < block.size();) {
        auto cut = chunker_.FindCut(block.subspan(b));
        if (!cut) break;
        b += *cut;
        ByteSpan chunk = data.subspan(start, off + b - start);
        if (buf_.empty()) {
          Dispatch(chunk, owner);
          borrowed = owner == nullptr;
        } else {
          Append(chunk);
          auto owned = std::make_shared<std::vector<uint8_t>>(std::move(buf_));
          buf_ = std::vector<uint8_t>();
          Dispatch(*owned, owned);
        }
        start = off + b;
      }
      off += block.size();
    }
    Append(data.subspan(start));
    if (borrowed) inflight_.Wait();
    if (laned && !owner) lane_->Drain();
    SILO_TRY(FirstError());
    if (!options_.resume_key.empty() && dispatched_bytes_ - checkpointed_ >= kCheckpointBytes) return Checkpoint();
    return Status::Ok();
  }

 public:
  Result<ObjectInfo> Commit() override {
    if (committed_) return Status::InvalidArgument("commit called twice");
    committed_ = true;
    ObjectRecord rec;
    rec.size = total_;
    if (lane_) lane_->Drain();  // the digest is whole once the lane has hashed everything
    const std::array<uint8_t, 32> whole = sha256_.Final();
    Digest digest = Digest::Sha256(whole);
    if (slots_.empty() && buf_.size() <= store_->inline_max()) {
      rec.inlined = true;
      rec.inline_data.assign(reinterpret_cast<const char*>(buf_.data()), buf_.size());
    } else if (!buf_.empty()) {
      auto owned = std::make_shared<std::vector<uint8_t>>(std::move(buf_));
      buf_ = std::vector<uint8_t>();
      // An object of one chunk: the chunk's id is the object's digest, already computed
      // (most files between the inline limit and the average chunk size). The last chunk
      // is stored on this thread, which would only wait for the pool otherwise.
      Dispatch(*owned, owned, slots_.empty() ? &whole : nullptr, /*here=*/true);
    }
    inflight_.Wait();
    SILO_TRY(FirstError());

    if (sha1_) {
      rec.has_sha1 = true;
      rec.sha1 = sha1_->Final();
    }
    if (Status s = CheckExpected(digest, rec); !s.ok()) {
      // Bytes that do not match are no basis for a later resume.
      if (!options_.resume_key.empty()) {
        std::pair<std::string, std::optional<std::string>> drop{options_.resume_key, std::nullopt};
        store_->WriteIndex(kPartialSpace, {&drop, 1}).IgnoreError();
      }
      return s;
    }
    rec.links = options_.links;
    rec.chunks.reserve(slots_.size());
    for (const auto& s : slots_) rec.chunks.push_back(s.ref);

    ObjectInfo info;
    info.digest = digest;
    info.size = total_;
    info.inlined = rec.inlined;
    info.chunk_count = static_cast<uint32_t>(rec.chunks.size());
    if (rec.has_sha1) info.sha1 = Digest::Sha1(rec.sha1);
    info.links = rec.links;
    info.new_chunks = new_chunks_;
    info.new_stored_bytes = new_stored_;

    // Outside the locks below: a flush takes a while.
    SILO_ASSIGN_OR_RETURN(bool any_unlogged, FlushUnlogged());
    // An object with chunks written unlogged (a large one) confirms them in a write of its
    // own; the group still pins it.
    if (group_) {
      group_->PinObject(digest.raw());
      if (!any_unlogged) {
        SILO_TRY(CommitToGroup(digest, rec, &info));
        return info;
      }
      // Its first, logged chunks may wait in the group's batch: written before the record
      // that needs them.
      SILO_TRY(group_->Flush());
    }
    {
      // Under the barrier: a running collection either sees this object or never
      // deletes what it needs.
      std::unique_lock<std::mutex> refs_lock;
      if (!options_.ref.empty()) refs_lock = std::unique_lock(store_->refs_mutex());
      std::lock_guard lock(store_->barrier().mutex());
      rocksdb::PinnableSlice existing;
      auto rs = store_->db()->Get(rocksdb::ReadOptions(), store_->objects(), digest.raw(), &existing);
      if (rs.ok()) {
        auto old = ObjectRecord::Decode(existing.ToStringView());
        info.existed = true;
        info.created_us = old.ok() ? old->created_us : 0;
      } else if (!rs.IsNotFound()) {
        return FromRocks(rs, "commit " + digest.ToString());
      }
      bool need_alias = rec.has_sha1;
      if (info.existed && rec.has_sha1) {
        std::string alias;
        need_alias =
            !store_->db()->Get(rocksdb::ReadOptions(), store_->aliases(), Digest::Sha1(rec.sha1).raw(), &alias).ok();
      }
      if (!info.existed || need_alias || any_unlogged || !options_.ref.empty() || !options_.resume_key.empty()) {
        rocksdb::WriteBatch batch;
        AddConfirmed(&batch);
        if (!options_.ref.empty()) batch.Put(store_->refs(), options_.ref, EncodeRefTarget(digest));
        if (!options_.resume_key.empty())
          batch.Delete(store_->index(), StoreImpl::IndexKey(kPartialSpace, options_.resume_key));
        if (!info.existed) {
          if (rec.inlined) info.new_stored_bytes += rec.inline_data.size();
          rec.created_us = NowMicros();
          info.created_us = rec.created_us;
          std::string encoded = rec.Encode();
          if (group_) group_->CountAdded(encoded.size());
          batch.Put(store_->objects(), digest.raw(), encoded);
        }
        if (need_alias) batch.Put(store_->aliases(), Digest::Sha1(rec.sha1).raw(), digest.raw());
        SILO_TRY(FromRocks(store_->db()->Write(rocksdb::WriteOptions(), &batch), "commit " + digest.ToString()));
      }
      auto& b = store_->barrier();
      b.ShadeObjectLocked(std::string(digest.raw()));
      for (const auto& s : slots_) b.ShadeChunkLocked(std::string(KeyOf(s.ref.id)));
      for (const auto& l : rec.links) b.ShadeObjectLocked(std::string(l.raw()));
    }
    ReleasePins();
    return info;
  }

 private:
  // Commit's end with a group: the record and alias join the group's batch, which writes
  // the record unless the store holds the object by then. What the object needs is pinned
  // by the group already.
  Status CommitToGroup(const Digest& digest, ObjectRecord& rec, ObjectInfo* info) {
    std::optional<Digest> alias;
    if (rec.has_sha1) alias = Digest::Sha1(rec.sha1);
    rec.created_us = NowMicros();
    SILO_ASSIGN_OR_RETURN(bool added, group_->AddObject(digest, rec.Encode(), alias));
    info->existed = !added;  // the group held it already
    if (added) info->created_us = rec.created_us;
    return Status::Ok();
  }

  // Forgets a checkpoint that cannot be used.
  void Restart() {
    for (auto& slot : slots_) {
      if (slot.pinned) store_->barrier().UnpinChunk(std::string(KeyOf(slot.ref.id)));
    }
    slots_.clear();
    sha256_ = Sha256();
    if (sha1_) sha1_.emplace();
    total_ = 0;
    std::pair<std::string, std::optional<std::string>> drop{options_.resume_key, std::nullopt};
    store_->WriteIndex(kPartialSpace, {&drop, 1}).IgnoreError();
  }

  struct Slot {
    ChunkRef ref;
    bool pinned = false;
    bool unlogged = false;  // decided at dispatch: write the bytes without the WAL
    uint64_t ticket = 0;    // set when the bytes were written unlogged and await confirming
    ChunkMeta meta;         // the record that confirms them
  };

  // Makes the chunks this writer wrote without the WAL durable; true when there were any.
  Result<bool> FlushUnlogged() {
    uint64_t ticket = 0;
    for (const auto& s : slots_) ticket = std::max(ticket, s.ticket);
    if (ticket == 0) return false;
    SILO_TRY(store_->FlushUnloggedChunks(ticket));
    return true;
  }
  // Adds the confirmed metadata of those chunks to `batch` (the one that records the
  // object or its checkpoint). Call after FlushUnlogged.
  void AddConfirmed(rocksdb::WriteBatch* batch) {
    for (const auto& s : slots_) {
      if (s.ticket != 0) batch->Put(store_->chunk_meta(), KeyOf(s.ref.id), s.meta.Encode());
    }
  }
  void MarkConfirmed() {
    for (auto& s : slots_) s.ticket = 0;
  }

  Status CheckExpected(const Digest& digest, const ObjectRecord& rec) const {
    if (options_.expected_size && *options_.expected_size != total_) {
      return Status::Integrity("size " + std::to_string(total_) + ", expected " +
                               std::to_string(*options_.expected_size));
    }
    if (options_.expected_digest) {
      const Digest& want = *options_.expected_digest;
      Digest got = want.is_sha256() ? digest : Digest::Sha1(rec.sha1);
      if (got != want) {
        return Status::Integrity("content has digest " + got.ToString() + ", expected " + want.ToString());
      }
    }
    return Status::Ok();
  }

  // Gathers bytes of the chunk under way. A first piece of under a minimum chunk gets a
  // buffer of its own size (a small file is mostly one such piece: no 4 MiB allocation
  // per file); more bytes get room for the largest chunk at once.
  void Append(ByteSpan piece) {
    if (piece.empty()) return;
    if (buf_.size() + piece.size() > buf_.capacity()) {
      const size_t max = store_->chunk_params().max_size;
      const bool small_first = buf_.empty() && piece.size() < store_->chunk_params().min_size;
      buf_.reserve(small_first ? piece.size() : std::max<size_t>(max, buf_.size() + piece.size()));
    }
    buf_.insert(buf_.end(), piece.begin(), piece.end());
  }

  // Queues one chunk for the pool. `owner` keeps owned bytes alive; null when `chunk`
  // borrows the caller's buffer (the caller then waits before returning). `id`, when
  // given, is the chunk's SHA-256 already known (it must outlive the chunk's task).
  // `here`: store it on the calling thread before returning instead of on the pool.
  void Dispatch(ByteSpan chunk, std::shared_ptr<const void> owner, const ChunkId* id = nullptr, bool here = false) {
    // Bounded memory: at most a few chunks in flight per writer.
    inflight_.WaitBelow(2 * store_->pool().size() + 2);
    auto& slot = slots_.emplace_back();
    slot.ref.length = static_cast<uint32_t>(chunk.size());
    slot.unlogged =
        dispatched_bytes_ >= kUnloggedAfter || (options_.expected_size && *options_.expected_size >= kUnloggedObjects);
    dispatched_bytes_ += chunk.size();
    store_->AcquireChunkBudget(chunk.size());
    if (here) {
      Status s = StoreChunk(chunk, &slot, id);
      if (!s.ok()) SetError(std::move(s));
      store_->ReleaseChunkBudget(chunk.size());
      return;
    }
    inflight_.Add();
    store_->pool().Submit([this, &slot, chunk, id, owner = std::move(owner)] {
      Status s = StoreChunk(chunk, &slot, id);
      if (!s.ok()) SetError(std::move(s));
      store_->ReleaseChunkBudget(chunk.size());
      inflight_.Done();
    });
  }

  // Runs on the pool.
  Status StoreChunk(ByteSpan data, Slot* slot, const ChunkId* id) {
    slot->ref.id = id ? *id : Sha256::Of(data);
    if (group_) {
      group_->PinChunk(slot->ref.id);
    } else {
      store_->barrier().PinChunk(std::string(KeyOf(slot->ref.id)));
      slot->pinned = true;
    }
    if (store_->ChunkExists(slot->ref.id)) return Status::Ok();
    uint64_t stored = 0;
    if (group_ && !slot->unlogged) {
      bool added = false;
      SILO_TRY(group_->AddChunk(slot->ref.id, data, options_.compression_level, &added, &stored));
      if (!added) return Status::Ok();
    } else if (slot->unlogged) {
      SILO_TRY(store_->WriteChunkUnlogged(slot->ref.id, data, options_.compression_level, &slot->meta, &slot->ticket));
      stored = slot->meta.stored_length;
      if (group_) group_->CountAdded(stored);
    } else {
      SILO_TRY(store_->WriteChunk(slot->ref.id, data, &stored, options_.compression_level));
    }
    std::lock_guard lock(err_mu_);
    ++new_chunks_;
    new_stored_ += stored;
    return Status::Ok();
  }

  void SetError(Status s) {
    std::lock_guard lock(err_mu_);
    if (first_error_.ok()) first_error_ = std::move(s);
  }

  Status FirstError() {
    std::lock_guard lock(err_mu_);
    return first_error_;
  }

  void ReleasePins() {
    if (released_) return;
    released_ = true;
    for (auto& s : slots_) {
      if (s.pinned) store_->barrier().UnpinChunk(std::string(KeyOf(s.ref.id)));
    }
    if (group_) return;  // the group's pins
    for (const auto& l : options_.links) store_->barrier().UnpinObject(std::string(l.raw()));
  }

  StoreImpl* store_;
  PutOptions options_;
  CommitGroupImpl* group_;  // null without one; options_ keeps it alive
  Chunker chunker_;
  Sha256 sha256_;
  std::optional<Sha1> sha1_;
  std::optional<HashLane> lane_;  // started by the first large write; after the hashes it feeds
  std::vector<uint8_t> buf_;
  std::deque<Slot> slots_;  // stable addresses: pool tasks fill their own slot
  WaitGroup inflight_;
  std::mutex err_mu_;
  Status first_error_;
  static constexpr uint64_t kCheckpointBytes = 128 << 20;
  // Chunks past this many bytes of one object skip the WAL (one flush before the commit
  // then costs less than writing every byte twice), and so do all chunks of an object
  // expected to be this large (a pulled blob: its descriptor gives the size). Smaller
  // objects log everything: a flush per commit would cost them more than the WAL.
  static constexpr uint64_t kUnloggedAfter = 16 << 20;
  static constexpr uint64_t kUnloggedObjects = 4 << 20;
  uint64_t checkpointed_ = 0;
  static constexpr size_t kHashBlock = 256 << 10;
  static constexpr size_t kLaneAtLeast = 1 << 20;
  uint64_t dispatched_bytes_ = 0;
  uint64_t total_ = 0;
  uint64_t new_chunks_ = 0;
  uint64_t new_stored_ = 0;
  bool committed_ = false;
  bool released_ = false;
};

}  // namespace

Result<std::unique_ptr<ObjectWriter>> StoreImpl::NewWriter(const PutOptions& options) {
  SILO_TRY(RequireWritable("put"));
  if (!options.ref.empty()) SILO_TRY(ValidateRefName(options.ref));
  if (options.commit_group && (!options.ref.empty() || !options.resume_key.empty())) {
    return Status::InvalidArgument("put: a commit group cannot set a ref or resume a write");
  }
  for (const auto& l : options.links) {
    if (!l.is_sha256()) return Status::InvalidArgument("link " + l.ToString() + ": links name sha256 objects");
  }
  auto writer = std::make_unique<WriterImpl>(this, options);
  writer->Resume();
  return std::unique_ptr<ObjectWriter>(std::move(writer));
}

Result<ObjectInfo> StoreImpl::Put(ByteSpan data, const PutOptions& options) {
  SILO_ASSIGN_OR_RETURN(auto writer, NewWriter(options));
  SILO_TRY(writer->Write(data));
  return writer->Commit();
}

}  // namespace silo::store
