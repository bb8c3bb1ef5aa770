#include "transfer/fs_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

namespace silo::transfer::fs {

Result<std::vector<std::string>> ListDir(int dirfd, const std::string& what) {
  int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return Status::FromErrno("dup " + what, errno);
  DIR* d = ::fdopendir(dup);
  if (!d) {
    int err = errno;
    ::close(dup);
    return Status::FromErrno("opendir " + what, err);
  }
  ::rewinddir(d);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* ent = ::readdir(d)) {
    std::string_view n = ent->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
    errno = 0;
  }
  int err = errno;
  ::closedir(d);
  if (err) return Status::FromErrno("readdir " + what, err);
  std::sort(names.begin(), names.end());
  return names;
}

std::string ProcPath(int dirfd, const std::string& name) {
  return "/proc/self/fd/" + std::to_string(dirfd) + "/" + name;
}

namespace {

// listxattrat(2) (Linux 6.13): lists a name's attributes relative to a directory fd
// without building a /proc path (whose lookup costs more than the listing). The number is
// the same on every architecture; glibc has no wrapper yet.
#ifndef __NR_listxattrat
#define __NR_listxattrat 465
#endif
std::atomic<bool> g_no_listxattrat{false};

// -1 with errno ENOSYS when the kernel lacks the call.
ssize_t ListXattrAt(int dirfd, const std::string& name, char* list, size_t size) {
  if (g_no_listxattrat.load(std::memory_order_relaxed)) {
    errno = ENOSYS;
    return -1;
  }
  long n = ::syscall(__NR_listxattrat, dirfd, name.c_str(), AT_SYMLINK_NOFOLLOW, list, size);
  if (n < 0 && (errno == ENOSYS || errno == EPERM)) g_no_listxattrat.store(true, std::memory_order_relaxed);
  return n;
}

}  // namespace

Result<std::vector<std::pair<std::string, std::string>>> ReadXattrs(int dirfd, const std::string& name,
                                                                    const std::string& what) {
  std::vector<std::pair<std::string, std::string>> out;
  // The common case, no attributes at all, in one system call.
  char probe[256];
  ssize_t first = ListXattrAt(dirfd, name, probe, sizeof probe);
  if (first == 0 || (first < 0 && (errno == ENOTSUP || errno == EOPNOTSUPP))) return out;
  std::string path = ProcPath(dirfd, name);
  std::string list(1024, '\0');
  ssize_t n;
  for (;;) {
    n = ::llistxattr(path.c_str(), list.data(), list.size());
    if (n >= 0) break;
    if (errno == ENOTSUP || errno == ENOSYS) return out;
    if (errno != ERANGE) return Status::FromErrno("listxattr " + what, errno);
    list.resize(list.size() * 4);
    if (list.size() > (1 << 20)) return Status::IO("listxattr " + what + ": too many attributes");
  }
  list.resize(static_cast<size_t>(n));
  for (size_t pos = 0; pos < list.size();) {
    std::string key = list.c_str() + pos;
    pos += key.size() + 1;
    if (key.empty()) continue;
    std::string value(256, '\0');
    for (;;) {
      ssize_t m = ::lgetxattr(path.c_str(), key.c_str(), value.data(), value.size());
      if (m >= 0) {
        value.resize(static_cast<size_t>(m));
        break;
      }
      if (errno == ENODATA) break;
      if (errno != ERANGE || value.size() > (64 << 10)) return Status::FromErrno("getxattr " + what + " " + key, errno);
      value.resize(value.size() * 4);
    }
    out.emplace_back(std::move(key), std::move(value));
  }
  std::sort(out.begin(), out.end());
  return out;
}

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}
int64_t CtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000LL + st.st_ctim.tv_nsec;
}

bool EntryFromStat(const struct stat& st, index::TreeEntry* e) {
  using index::EntryType;
  switch (st.st_mode & S_IFMT) {
    case S_IFREG:
      e->type = EntryType::kFile;
      break;
    case S_IFDIR:
      e->type = EntryType::kDir;
      break;
    case S_IFLNK:
      e->type = EntryType::kSymlink;
      break;
    case S_IFIFO:
      e->type = EntryType::kFifo;
      break;
    case S_IFCHR:
      e->type = EntryType::kCharDevice;
      break;
    case S_IFBLK:
      e->type = EntryType::kBlockDevice;
      break;
    default:
      return false;
  }
  e->mode = st.st_mode & 07777;
  e->uid = st.st_uid;
  e->gid = st.st_gid;
  e->mtime_ns = MtimeNs(st);
  e->size = e->type == EntryType::kFile ? static_cast<uint64_t>(st.st_size) : 0;
  e->rdev = (e->type == EntryType::kCharDevice || e->type == EntryType::kBlockDevice) ? st.st_rdev : 0;
  return true;
}

Result<Fd> OpenDirBeneath(int rootfd, const std::string& rel, const std::string& what) {
  Fd cur(::fcntl(rootfd, F_DUPFD_CLOEXEC, 0));
  if (!cur.valid()) return Status::FromErrno("dup " + what, errno);
  size_t pos = 0;
  while (pos < rel.size()) {
    size_t slash = rel.find('/', pos);
    std::string comp = rel.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    pos = slash == std::string::npos ? rel.size() : slash + 1;
    if (comp.empty()) continue;
    SILO_TRY(index::ValidateEntryName(comp).WithContext(what));
    Fd next(::openat(cur.get(), comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) return Status::FromErrno("open " + what + " (at " + comp + ")", errno);
    cur = std::move(next);
  }
  return cur;
}

Status RemoveAt(int dirfd, const std::string& name, const std::string& what) {
  if (::unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return Status::Ok();
  if (errno != EISDIR && errno != EPERM) return Status::FromErrno("remove " + what, errno);
  Fd sub(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!sub.valid()) return Status::FromErrno("open " + what, errno);
  SILO_ASSIGN_OR_RETURN(auto names, ListDir(sub.get(), what));
  for (const auto& n : names) SILO_TRY(RemoveAt(sub.get(), n, what + "/" + n));
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0) return Status::FromErrno("rmdir " + what, errno);
  return Status::Ok();
}

}  // namespace silo::transfer::fs
