#include "transfer/local_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <memory>
#include <vector>

#include "util/fd.h"
#include "util/interrupt.h"

namespace silo::transfer {

namespace {
constexpr size_t kBufferSize = 4 << 20;
constexpr uint64_t kWindow = 16 << 20;
// Smaller files are read: mapping costs more than copying them.
constexpr off_t kMapAtLeast = 1 << 20;
}  // namespace

Result<store::ObjectInfo> PutFile(store::Store& store, const std::string& path, const store::PutOptions& options,
                                  Progress* progress) {
  Fd owned;
  int fd = STDIN_FILENO;
  std::string name = path == "-" ? std::string("stdin") : path;
  if (path != "-") {
    SILO_ASSIGN_OR_RETURN(owned, OpenForRead(path));
    fd = owned.get();
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
      return Status::InvalidArgument(path + ": is a directory (use `silo snapshot` for trees)");
    }
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  SILO_ASSIGN_OR_RETURN(auto writer, store.NewWriter(options));
  struct stat st {};
  if (fd != STDIN_FILENO && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= kMapAtLeast) {
    // Regular files are mapped a window at a time: no copy through a read buffer. Chunks
    // in flight hold their window (unmapped when the last one is stored) while the next
    // window is hashed, so resident memory stays bounded by a few windows whatever the
    // file size.
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    for (uint64_t off = 0; off < size; off += kWindow) {
      if (Interrupted()) return Status::Interrupted(name + ": interrupted; nothing was stored");
      size_t len = static_cast<size_t>(std::min<uint64_t>(kWindow, size - off));
      void* p = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(off));
      if (p == MAP_FAILED) return Status::FromErrno("mmap " + name, errno);
      ::madvise(p, len, MADV_SEQUENTIAL | MADV_WILLNEED);
      std::shared_ptr<const void> window(p, [len](const void* m) { ::munmap(const_cast<void*>(m), len); });
      SILO_TRY(writer->WriteShared({static_cast<const uint8_t*>(p), len}, std::move(window)).WithContext(name));
      if (progress) progress->Add(len);
    }
    if (::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) != size) {
      return Status::IO(name + ": file changed size while being stored");
    }
    return writer->Commit().WithContext(name);
  }
  std::vector<uint8_t> buf(fd != STDIN_FILENO && S_ISREG(st.st_mode)
                               ? static_cast<size_t>(std::min<off_t>(st.st_size + 1, kBufferSize))
                               : kBufferSize);
  for (;;) {
    if (Interrupted()) return Status::Interrupted(name + ": interrupted; nothing was stored");
    SILO_ASSIGN_OR_RETURN(size_t n, ReadFull(fd, buf, name));
    if (n == 0) break;
    SILO_TRY(writer->Write({buf.data(), n}).WithContext(name));
    if (progress) progress->Add(n);
  }
  return writer->Commit().WithContext(name);
}

Result<ByteRange> ByteRange::Parse(std::string_view text) {
  auto bad = [&] {
    return Status::InvalidArgument("range '" + std::string(text) + "': expected START-END, START- or -SUFFIX");
  };
  auto dash = text.find('-');
  if (dash == std::string_view::npos) return bad();
  auto parse = [](std::string_view s, uint64_t* v) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
    return ec == std::errc() && p == s.data() + s.size() && !s.empty();
  };
  ByteRange r;
  std::string_view a = text.substr(0, dash), b = text.substr(dash + 1);
  if (a.empty()) {
    uint64_t suffix = 0;
    if (!parse(b, &suffix)) return bad();
    r.start = UINT64_MAX;  // resolved against the size in CatObject
    r.end = suffix;
    return r;
  }
  if (!parse(a, &r.start)) return bad();
  if (!b.empty()) {
    uint64_t e = 0;
    if (!parse(b, &e)) return bad();
    if (e < r.start) return Status::InvalidArgument("range '" + std::string(text) + "': end before start");
    r.end = e;
  }
  return r;
}

Status CatObject(store::Store& store, const store::Digest& digest, std::optional<ByteRange> range, int fd) {
  SILO_ASSIGN_OR_RETURN(auto reader, store.NewReader(digest));
  const uint64_t size = reader->info().size;
  uint64_t start = 0, end = size;  // [start, end)
  if (range) {
    if (range->start == UINT64_MAX) {
      start = size - std::min(size, *range->end);
    } else {
      if (range->start >= size && !(range->start == 0 && size == 0)) {
        return Status::InvalidArgument("range starts at " + std::to_string(range->start) + ", past the end of " +
                                       digest.ToString() + " (" + std::to_string(size) + " bytes)");
      }
      start = range->start;
      if (range->end) end = std::min(size, *range->end + 1);
    }
  }
  SILO_TRY(reader->Seek(start));
  std::vector<uint8_t> buf(std::min<uint64_t>(kBufferSize, std::max<uint64_t>(end - start, 1)));
  uint64_t left = end - start;
  while (left > 0) {
    if (Interrupted()) return Status::Interrupted("cat interrupted");
    size_t want = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
    SILO_ASSIGN_OR_RETURN(size_t n, reader->Read({buf.data(), want}));
    if (n == 0) return Status::Integrity(digest.ToString() + ": object ended early");
    SILO_TRY(WriteAll(fd, {buf.data(), n}, "output"));
    left -= n;
  }
  return Status::Ok();
}

}  // namespace silo::transfer
