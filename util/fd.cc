#include "util/fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace silo {

void Fd::Close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

Result<Fd> OpenForRead(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  return Fd(fd);
}

Result<size_t> ReadFull(int fd, std::span<uint8_t> buf, std::string_view what) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::read(fd, buf.data() + done, buf.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(std::string("read ") + std::string(what), errno);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

Status WriteAll(int fd, std::span<const uint8_t> data, std::string_view what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(std::string("write ") + std::string(what), errno);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace silo
