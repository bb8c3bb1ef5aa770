// A bounded in-memory byte pipe between one writer thread and one reader thread: mirror
// streams a blob to the destination registry while the same bytes are fetched into the
// store (the fetch writes, the upload's request body reads). Memory stays at `capacity`
// whatever the blob size. Either side may give up: a failed writer makes the reader's next
// Read fail (so an upload is aborted before the registry commits it); a reader that stops
// makes later writes no-ops (the fetch goes on into the store). Thread-safe for one writer
// and one reader.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "util/hash.h"
#include "util/result.h"

namespace silo::transfer {

class BlobPipe {
 public:
  explicit BlobPipe(size_t capacity);

  // Writer: appends `data`, blocking while the pipe is full. False once the reader has
  // closed (the bytes are dropped).
  bool Write(ByteSpan data);
  // Writer: no more bytes. With an error status the reader's next Read returns it.
  void CloseWrite(Status status);

  // Reader: up to buf.size() bytes, blocking until min(buf.size(), capacity / 4) arrive
  // (fewer only at the end of the stream); 0 at the end of a
  // successful stream; the writer's error when it failed.
  Result<size_t> Read(std::span<uint8_t> buf);
  // Reader: stops reading; the writer's later writes are dropped.
  void CloseRead();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<uint8_t> ring_;
  size_t head_ = 0;  // next byte to read
  size_t size_ = 0;  // bytes buffered
  bool write_closed_ = false;
  bool read_closed_ = false;
  Status write_status_;
};

}  // namespace silo::transfer
