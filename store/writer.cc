// The streaming object writer: hashes as bytes arrive, cuts content-defined chunks,
// hands each chunk to the store's pool (hash, compress, write if absent), and commits the
// object record in one atomic batch once size and digest check out.
#include <deque>
#include <mutex>

#include "store/rocks.h"
#include "store/store_impl.h"
#include "util/interrupt.h"

namespace silo::store {
namespace {

class WriterImpl final : public ObjectWriter {
 public:
  WriterImpl(StoreImpl* store, PutOptions options)
      : store_(store), options_(std::move(options)), chunker_(store->chunk_params()) {
    if (options_.sha1_alias || (options_.expected_digest && !options_.expected_digest->is_sha256())) {
      sha1_.emplace();
    }
    for (const auto& l : options_.links) store_->barrier().PinObject(std::string(l.raw()));
    buf_.reserve(store_->chunk_params().max_size);
  }

  ~WriterImpl() override {
    inflight_.Wait();
    ReleasePins();
  }

  uint64_t bytes_written() const override { return total_; }

  Status Write(ByteSpan data) override {
    if (committed_) return Status::InvalidArgument("write after commit");
    if (Interrupted()) return Status::Interrupted("put interrupted");
    SILO_TRY(FirstError());
    if (options_.expected_size && total_ + data.size() > *options_.expected_size) {
      return Status::Integrity("content is larger than the expected size " +
                               std::to_string(*options_.expected_size));
    }
    sha256_.Update(data);
    if (sha1_) sha1_->Update(data);
    total_ += data.size();
    while (!data.empty()) {
      auto cut = chunker_.FindCut(data);
      size_t take = cut ? *cut : data.size();
      buf_.insert(buf_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(take));
      data = data.subspan(take);
      if (cut) Dispatch();
    }
    return Status::Ok();
  }

  Result<ObjectInfo> Commit() override {
    if (committed_) return Status::InvalidArgument("commit called twice");
    committed_ = true;
    ObjectRecord rec;
    rec.size = total_;
    if (slots_.empty() && buf_.size() <= store_->inline_max()) {
      rec.inlined = true;
      rec.inline_data.assign(reinterpret_cast<const char*>(buf_.data()), buf_.size());
    } else if (!buf_.empty()) {
      Dispatch();
    }
    inflight_.Wait();
    SILO_TRY(FirstError());
    // Chunks this object relies on may sit unlogged in a memtable (ours, or another
    // writer's that we deduplicated against): flush them before the record can exist.
    if (!slots_.empty()) SILO_TRY(store_->EnsureChunksDurable());

    Digest digest = Digest::Sha256(sha256_.Final());
    if (sha1_) {
      rec.has_sha1 = true;
      rec.sha1 = sha1_->Final();
    }
    SILO_TRY(CheckExpected(digest, rec));
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

    {
      // Under the barrier: a running collection either sees this object or never
      // deletes what it needs.
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
        need_alias = !store_->db()->Get(rocksdb::ReadOptions(), store_->aliases(),
                                        Digest::Sha1(rec.sha1).raw(), &alias).ok();
      }
      if (!info.existed || need_alias) {
        rocksdb::WriteBatch batch;
        if (!info.existed) {
          rec.created_us = NowMicros();
          info.created_us = rec.created_us;
          batch.Put(store_->objects(), digest.raw(), rec.Encode());
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
  struct Slot {
    ChunkRef ref;
    bool pinned = false;
  };

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

  void Dispatch() {
    // Bounded memory: at most a few chunks in flight per writer.
    inflight_.WaitBelow(2 * store_->pool().size() + 2);
    auto& slot = slots_.emplace_back();
    slot.ref.length = static_cast<uint32_t>(buf_.size());
    auto data = std::make_shared<std::vector<uint8_t>>(std::move(buf_));
    buf_ = std::vector<uint8_t>();
    buf_.reserve(store_->chunk_params().max_size);
    // The first chunks of an object go through the WAL; past kLoggedBytes the rest skip it
    // and one flush before the commit makes them durable (a large object's bytes are then
    // written once to blob files instead of twice).
    const bool logged = dispatched_bytes_ < kLoggedBytes;
    dispatched_bytes_ += data->size();
    any_unlogged_ |= !logged;
    inflight_.Add();
    store_->pool().Submit([this, &slot, data, logged] {
      Status s = StoreChunk(*data, &slot, logged);
      if (!s.ok()) SetError(std::move(s));
      inflight_.Done();
    });
  }

  // Runs on the pool.
  Status StoreChunk(const std::vector<uint8_t>& data, Slot* slot, bool logged) {
    slot->ref.id = Sha256::Of(data);
    std::string key(KeyOf(slot->ref.id));
    store_->barrier().PinChunk(key);
    slot->pinned = true;
    if (store_->ChunkExists(slot->ref.id)) return Status::Ok();
    uint64_t stored = 0;
    SILO_TRY(store_->WriteChunk(slot->ref.id, data, logged, &stored));
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
    for (const auto& l : options_.links) store_->barrier().UnpinObject(std::string(l.raw()));
  }

  StoreImpl* store_;
  PutOptions options_;
  Chunker chunker_;
  Sha256 sha256_;
  std::optional<Sha1> sha1_;
  std::vector<uint8_t> buf_;
  std::deque<Slot> slots_;  // stable addresses: pool tasks fill their own slot
  WaitGroup inflight_;
  std::mutex err_mu_;
  Status first_error_;
  static constexpr uint64_t kLoggedBytes = 8 << 20;
  uint64_t dispatched_bytes_ = 0;
  bool any_unlogged_ = false;
  uint64_t total_ = 0;
  uint64_t new_chunks_ = 0;
  uint64_t new_stored_ = 0;
  bool committed_ = false;
  bool released_ = false;
};

}  // namespace

Result<std::unique_ptr<ObjectWriter>> StoreImpl::NewWriter(const PutOptions& options) {
  SILO_TRY(RequireWritable("put"));
  for (const auto& l : options.links) {
    if (!l.is_sha256()) return Status::InvalidArgument("link " + l.ToString() + ": links name sha256 objects");
  }
  return std::unique_ptr<ObjectWriter>(new WriterImpl(this, options));
}

Result<ObjectInfo> StoreImpl::Put(ByteSpan data, const PutOptions& options) {
  SILO_ASSIGN_OR_RETURN(auto writer, NewWriter(options));
  SILO_TRY(writer->Write(data));
  return writer->Commit();
}

}  // namespace silo::store
