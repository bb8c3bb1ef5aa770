// RAII file descriptor and the few file helpers silo needs.
#pragma once

#include <span>
#include <string>
#include <utility>

#include "util/result.h"

namespace silo {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Close(); }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Close();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void Close();

 private:
  int fd_ = -1;
};

// Opens `path` for reading; the error names the path.
Result<Fd> OpenForRead(const std::string& path);

// Reads up to buf.size() bytes, retrying on EINTR and short reads; returns bytes read
// (less than buf.size() only at end of file).
Result<size_t> ReadFull(int fd, std::span<uint8_t> buf, std::string_view what);

// Writes all of `data`, retrying on EINTR and short writes.
Status WriteAll(int fd, std::span<const uint8_t> data, std::string_view what);

}  // namespace silo
