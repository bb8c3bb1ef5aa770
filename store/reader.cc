// The streaming object reader: locates the chunk holding an offset by binary search over
// the chunk end offsets, verifies each chunk as it is loaded, and serves byte ranges.
// With the store's chunk cache, chunks come from there (and go there when read).
// A reader pins its object for its whole life, so a collection running meanwhile never
// removes what it is reading (a long response stays whole while gc runs).
#include <algorithm>
#include <cstring>

#include "store/store_impl.h"

namespace silo::store {
namespace {

class ReaderImpl final : public ObjectReader {
 public:
  // Takes over the pin that NewReader set on the object.
  ReaderImpl(StoreImpl* store, ObjectInfo info, ObjectRecord rec)
      : store_(store), info_(std::move(info)), rec_(std::move(rec)) {
    ends_.reserve(rec_.chunks.size());
    uint64_t end = 0;
    for (const auto& c : rec_.chunks) ends_.push_back(end += c.length);
  }
  ~ReaderImpl() override { store_->barrier().UnpinObject(std::string(info_.digest.raw())); }

  const ObjectInfo& info() const override { return info_; }

  Status Seek(uint64_t offset) override {
    if (offset > info_.size) {
      return Status::InvalidArgument("offset " + std::to_string(offset) + " is past the end of " +
                                     info_.digest.ToString() + " (" + std::to_string(info_.size) + " bytes)");
    }
    pos_ = offset;
    return Status::Ok();
  }

  Result<size_t> Read(std::span<uint8_t> buf) override {
    size_t done = 0;
    while (done < buf.size()) {
      SILO_ASSIGN_OR_RETURN(std::string_view avail, Next(buf.size() - done));
      if (avail.empty()) break;
      std::memcpy(buf.data() + done, avail.data(), avail.size());
      done += avail.size();
    }
    return done;
  }

  Result<ObjectPiece> ReadPiece(size_t max) override {
    SILO_ASSIGN_OR_RETURN(std::string_view bytes, Next(max));
    if (rec_.inlined) {
      // Inline bytes live in the record, which the reader owns: copy them.
      auto copy = std::make_shared<std::string>(bytes);
      return ObjectPiece{*copy, std::move(copy)};
    }
    return ObjectPiece{bytes, owner_};
  }

 private:
  // Up to `max` bytes at the position, never past the end of the chunk that holds it;
  // advances the position. Empty at the end of the object.
  Result<std::string_view> Next(size_t max) {
    if (pos_ >= info_.size || max == 0) return std::string_view();
    std::string_view avail;
    if (rec_.inlined) {
      avail = std::string_view(rec_.inline_data).substr(pos_);
    } else {
      size_t idx = static_cast<size_t>(std::upper_bound(ends_.begin(), ends_.end(), pos_) - ends_.begin());
      if (!owner_ || index_ != idx) SILO_TRY(Load(idx));
      uint64_t start = ends_[idx] - rec_.chunks[idx].length;
      avail = view_.substr(pos_ - start);
    }
    avail = avail.substr(0, max);
    pos_ += avail.size();
    return avail;
  }

  // Makes chunk `idx` the current one: from the store's chunk cache when it has one, else
  // read into this reader's own buffers.
  Status Load(size_t idx) {
    owner_.reset();
    index_ = SIZE_MAX;
    const ChunkId& id = rec_.chunks[idx].id;
    auto cached = store_->ReadCachedChunk(id);
    if (!cached.ok()) return std::move(cached).take_status().WithContext(info_.digest.ToString());
    if (*cached) {
      view_ = (*cached)->view;
      owner_ = std::move(cached).value();
    } else {
      // No chunk cache. Pieces handed out keep the previous chunk alive; otherwise its
      // buffers are reused.
      if (!own_ || own_.use_count() > 1) own_ = std::make_shared<ChunkBytes>();
      Status s = store_->ReadChunkView(id, &own_->pin, &own_->scratch, &own_->view);
      if (!s.ok()) return std::move(s).WithContext(info_.digest.ToString());
      view_ = own_->view;
      owner_ = own_;
    }
    if (view_.size() != rec_.chunks[idx].length) {
      owner_.reset();
      return Status::Integrity(info_.digest.ToString() + ": chunk " + std::to_string(idx) + " has the wrong length");
    }
    index_ = idx;
    return Status::Ok();
  }

  StoreImpl* store_;
  ObjectInfo info_;
  ObjectRecord rec_;
  std::vector<uint64_t> ends_;  // end offset of each chunk
  // The current chunk: its bytes, what keeps them alive (handed out with each piece) and
  // its index (SIZE_MAX: none).
  std::string_view view_;
  std::shared_ptr<const void> owner_;
  size_t index_ = SIZE_MAX;
  std::shared_ptr<ChunkBytes> own_;  // this reader's buffers, without a chunk cache
  uint64_t pos_ = 0;
};

}  // namespace

Result<ObjectPiece> ObjectReader::ReadPiece(size_t max) {
  auto buf = std::make_shared<std::string>(max, '\0');
  SILO_ASSIGN_OR_RETURN(size_t n, Read(std::span<uint8_t>(reinterpret_cast<uint8_t*>(buf->data()), max)));
  buf->resize(n);
  return ObjectPiece{*buf, std::move(buf)};
}

Result<std::unique_ptr<ObjectReader>> StoreImpl::NewReader(const Digest& digest) {
  SILO_ASSIGN_OR_RETURN(Digest d, Resolve(digest));
  // Pinned before the record is read: a sweep deciding after this keeps the object, and
  // one that deleted it before makes the load below fail with NotFound.
  std::string key(d.raw());
  barrier().PinObject(key);
  auto rec = LoadRecord(d);
  // The info from the record just read (a Stat would read and decode it once more).
  auto info = rec.ok() ? Result<ObjectInfo>(InfoFromRecord(d, *rec)) : Result<ObjectInfo>(rec.status());
  if (!info.ok()) {
    barrier().UnpinObject(key);
    return std::move(info).take_status();
  }
  return std::unique_ptr<ObjectReader>(new ReaderImpl(this, std::move(info).value(), std::move(rec).value()));
}

Result<std::string> StoreImpl::ReadAll(const Digest& digest, uint64_t max_size) {
  SILO_ASSIGN_OR_RETURN(auto reader, NewReader(digest));
  if (reader->info().size > max_size) {
    return Status::InvalidArgument(digest.ToString() + ": " + std::to_string(reader->info().size) +
                                   " bytes, more than the limit of " + std::to_string(max_size));
  }
  std::string out(reader->info().size, '\0');
  SILO_ASSIGN_OR_RETURN(size_t n, reader->Read({reinterpret_cast<uint8_t*>(out.data()), out.size()}));
  if (n != out.size()) return Status::Integrity(digest.ToString() + ": short read");
  return out;
}

}  // namespace silo::store
