#include "transfer/blob_pipe.h"

#include <algorithm>
#include <cstring>

namespace silo::transfer {

BlobPipe::BlobPipe(size_t capacity) : ring_(std::max<size_t>(capacity, 1)) {}

bool BlobPipe::Write(ByteSpan data) {
  std::unique_lock lock(mu_);
  while (!data.empty()) {
    cv_.wait(lock, [&] { return read_closed_ || size_ < ring_.size(); });
    if (read_closed_) return false;
    size_t tail = (head_ + size_) % ring_.size();
    size_t n = std::min({data.size(), ring_.size() - size_, ring_.size() - tail});
    std::memcpy(ring_.data() + tail, data.data(), n);
    size_ += n;
    data = data.subspan(n);
    cv_.notify_all();
  }
  return !read_closed_;
}

void BlobPipe::CloseWrite(Status status) {
  std::lock_guard lock(mu_);
  if (write_closed_) return;
  write_closed_ = true;
  write_status_ = std::move(status);
  cv_.notify_all();
}

Result<size_t> BlobPipe::Read(std::span<uint8_t> buf) {
  std::unique_lock lock(mu_);
  // Waits for a fair batch (a quarter of the ring, or the whole request if smaller) rather
  // than whatever one network read delivered: the upload then sends large pieces and both
  // threads wake far less often. Never deadlocks: a full ring always holds a batch.
  size_t want = std::min(buf.size(), std::max<size_t>(ring_.size() / 4, 1));
  cv_.wait(lock, [&] { return size_ >= want || write_closed_; });
  if (write_closed_ && !write_status_.ok()) return write_status_;
  if (size_ == 0 || buf.empty()) return size_t{0};
  size_t n = std::min(buf.size(), size_);
  size_t first = std::min(n, ring_.size() - head_);  // up to the end of the ring, then wrap
  std::memcpy(buf.data(), ring_.data() + head_, first);
  std::memcpy(buf.data() + first, ring_.data(), n - first);
  head_ = (head_ + n) % ring_.size();
  size_ -= n;
  cv_.notify_all();
  return n;
}

void BlobPipe::CloseRead() {
  std::lock_guard lock(mu_);
  read_closed_ = true;
  size_ = 0;
  cv_.notify_all();
}

}  // namespace silo::transfer
