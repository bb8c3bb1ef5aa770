#include "transfer/restore.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "transfer/fs_util.h"
#include "util/fd.h"
#include "util/hash.h"
#include "util/interrupt.h"
#include "util/thread_pool.h"

namespace silo::transfer {
namespace {

using index::EntryType;
using index::TreeEntry;

std::string JoinRel(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

std::string TempName() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[40];
  std::snprintf(buf, sizeof buf, ".silo-tmp-%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

struct timespec ToTimespec(int64_t ns) {
  struct timespec ts {};
  ts.tv_sec = static_cast<time_t>(ns / 1000000000);
  ts.tv_nsec = static_cast<long>(ns % 1000000000);
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += 1000000000;
    ts.tv_sec -= 1;
  }
  return ts;
}

class Restorer {
 public:
  Restorer(store::Store& store, const RestoreOptions& opts, int rootfd)
      : store_(store),
        opts_(opts),
        rootfd_(rootfd),
        pool_(opts.threads ? opts.threads : std::max(2u, std::thread::hardware_concurrency())),
        is_root_(::geteuid() == 0) {}
  ~Restorer() { wg_.Wait(); }

  // Phase 1: directories, symlinks, specials now; files to the writers. `fresh`: the
  // directory was just made by this restore, so it holds nothing to compare or delete
  // (no listing, no stat per entry).
  Status RestoreDir(const std::shared_ptr<Fd>& dirfd, const std::string& rel, const index::Tree& tree,
                    bool fresh = false) {
    if (Interrupted()) return Status::Interrupted("restore interrupted");
    std::string where = rel.empty() ? "." : rel;
    if (opts_.delete_extra && !fresh) {
      SILO_ASSIGN_OR_RETURN(auto existing, fs::ListDir(dirfd->get(), where));
      for (const auto& name : existing) {
        if (tree.Find(name)) continue;
        Status s = fs::RemoveAt(dirfd->get(), name, JoinRel(rel, name));
        if (s.ok()) {
          stats_.deleted++;
        } else {
          Report(s);
        }
      }
    }
    for (const auto& e : tree.entries) SILO_TRY(RestoreEntry(dirfd, rel, e, fresh));
    return Status::Ok();
  }

  Status RestoreEntry(const std::shared_ptr<Fd>& dirfd, const std::string& rel, const TreeEntry& e,
                      bool parent_fresh = false) {
    const std::string path = JoinRel(rel, e.name);
    const int dfd = dirfd->get();
    struct stat st {};
    bool exists = false;
    if (!parent_fresh) {
      exists = ::fstatat(dfd, e.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
      if (!exists && errno != ENOENT) return Error(Status::FromErrno("stat " + path, errno));
    }
    // Anything of another type goes first (a symlink where a directory belongs is removed,
    // never followed).
    if (exists && !SameType(st, e.type)) {
      if (Status s = fs::RemoveAt(dfd, e.name, path); !s.ok()) return Error(s);
      exists = false;
    }
    switch (e.type) {
      case EntryType::kDir: {
        if (!exists && ::mkdirat(dfd, e.name.c_str(), 0700) != 0)
          return Error(Status::FromErrno("mkdir " + path, errno));
        auto sub = std::make_shared<Fd>(::openat(dfd, e.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub->valid()) return Error(Status::FromErrno("open " + path, errno));
        if (exists && (st.st_mode & 0700) != 0700) ::fchmod(sub->get(), (st.st_mode & 07777) | 0700);
        SILO_ASSIGN_OR_RETURN(index::Tree t, index::LoadTree(store_, e.digest).WithContext(path));
        stats_.dirs++;
        SILO_TRY(RestoreDir(sub, path, t, !exists));
        dirs_.push_back({path, e});  // post-order: children before parents
        return Status::Ok();
      }
      case EntryType::kFile: {
        if (e.hardlink_group != 0) {
          auto [it, fresh] = link_firsts_.try_emplace(e.hardlink_group, path);
          if (!fresh) {
            links_.push_back({rel, e, it->second});
            return Status::Ok();
          }
        }
        bool same_size = exists && static_cast<uint64_t>(st.st_size) == e.size;
        if (same_size && !opts_.verify_content && fs::MtimeNs(st) == e.mtime_ns) {
          {
            std::lock_guard lock(mu_);
            stats_.files_unchanged++;
          }
          if (opts_.progress) opts_.progress->AddItems(1);
          bool owner_differs = is_root_ && (st.st_uid != e.uid || st.st_gid != e.gid);
          if ((st.st_mode & 07777) != e.mode || owner_differs || !e.xattrs.empty()) {
            // chmod first: the file may not be readable as it is (mode 0).
            if ((st.st_mode & 07777) != e.mode && ::fchmodat(dfd, e.name.c_str(), e.mode, 0) != 0) {
              return Error(Status::FromErrno("chmod " + path, errno));
            }
            Fd fd(::openat(dfd, e.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
            if (!fd.valid()) return Error(Status::FromErrno("open " + path, errno));
            if (ApplyMeta(fd.get(), e, path, true) || (st.st_mode & 07777) != e.mode) {
              std::lock_guard lock(mu_);
              stats_.metadata_fixed++;
            }
          }
          return Status::Ok();
        }
        if (dirfd.get() != window_last_dir_) {
          window_last_dir_ = dirfd.get();
          window_dirs_++;
        }
        window_.push_back({dirfd, e, path, same_size && opts_.verify_content, parent_fresh});
        if (window_.size() >= opts_.sort_window_files || window_dirs_ >= window_dir_budget_) FlushWindow();
        return Status::Ok();
      }
      case EntryType::kSymlink: {
        stats_.symlinks++;
        if (exists) {
          std::string cur(e.target.size() + 1, '\0');
          ssize_t n = ::readlinkat(dfd, e.name.c_str(), cur.data(), cur.size());
          if (n >= 0 && static_cast<size_t>(n) == e.target.size() && cur.compare(0, e.target.size(), e.target) == 0) {
            ApplyLinkMeta(dfd, e.name, e, path);
            return Status::Ok();
          }
        }
        std::string tmp = TempName();
        if (::symlinkat(e.target.c_str(), dfd, tmp.c_str()) != 0)
          return Error(Status::FromErrno("symlink " + path, errno));
        ApplyLinkMeta(dfd, tmp, e, path);
        if (::renameat(dfd, tmp.c_str(), dfd, e.name.c_str()) != 0) {
          int err = errno;
          ::unlinkat(dfd, tmp.c_str(), 0);
          return Error(Status::FromErrno("rename " + path, err));
        }
        return Status::Ok();
      }
      default: {  // fifos and devices
        if (exists && (e.type == EntryType::kFifo || st.st_rdev == e.rdev)) {
          ApplyLinkMeta(dfd, e.name, e, path);
          return Status::Ok();
        }
        mode_t type = e.type == EntryType::kFifo          ? S_IFIFO
                      : e.type == EntryType::kCharDevice  ? S_IFCHR
                      : e.type == EntryType::kBlockDevice ? S_IFBLK
                                                          : S_IFSOCK;
        std::string tmp = TempName();
        if (::mknodat(dfd, tmp.c_str(), type | 0600, static_cast<dev_t>(e.rdev)) != 0) {
          Warn(Status::FromErrno("mknod " + path, errno).message() + "; skipped");
          return Status::Ok();
        }
        stats_.specials++;
        if (Fd fd(::openat(dfd, tmp.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC)); fd.valid()) {
          ::fchmodat(dfd, tmp.c_str(), e.mode, 0);
        }
        ApplyLinkMeta(dfd, tmp, e, path);
        if (::renameat(dfd, tmp.c_str(), dfd, e.name.c_str()) != 0) {
          int err = errno;
          ::unlinkat(dfd, tmp.c_str(), 0);
          return Error(Status::FromErrno("rename " + path, err));
        }
        return Status::Ok();
      }
    }
  }

  // Phase 2 and 3, after phase 1: hardlinks once their first name is written, then
  // directories' metadata, deepest first (`root`'s last, on the target itself, when
  // options ask for it).
  Status Finish(const TreeEntry& root) {
    FlushWindow();
    wg_.Wait();
    {
      std::lock_guard lock(mu_);
      if (!fatal_.ok()) return fatal_;
    }
    if (Interrupted()) return Status::Interrupted("restore interrupted");
    for (const auto& l : links_) {
      std::string path = JoinRel(l.rel, l.entry.name);
      size_t slash = l.first.rfind('/');
      std::string first_dir = slash == std::string::npos ? "" : l.first.substr(0, slash);
      std::string first_name = slash == std::string::npos ? l.first : l.first.substr(slash + 1);
      auto from = fs::OpenDirBeneath(rootfd_, first_dir, first_dir);
      auto to = fs::OpenDirBeneath(rootfd_, l.rel, l.rel);
      if (!from.ok() || !to.ok()) {
        Report((from.ok() ? to.status() : from.status()).WithContext("hardlink " + path));
        continue;
      }
      struct stat a {
      }, b{};
      if (::fstatat(from->get(), first_name.c_str(), &a, AT_SYMLINK_NOFOLLOW) == 0 &&
          ::fstatat(to->get(), l.entry.name.c_str(), &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_ino == b.st_ino &&
          a.st_dev == b.st_dev) {
        continue;  // already the same file
      }
      if (::fstatat(to->get(), l.entry.name.c_str(), &b, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(b.st_mode)) {
        if (Status s = fs::RemoveAt(to->get(), l.entry.name, path); !s.ok()) {
          Report(s);
          continue;
        }
      }
      std::string tmp = TempName();
      if (::linkat(from->get(), first_name.c_str(), to->get(), tmp.c_str(), 0) != 0) {
        Report(Status::FromErrno("link " + path, errno));
        continue;
      }
      if (::renameat(to->get(), tmp.c_str(), to->get(), l.entry.name.c_str()) != 0) {
        Report(Status::FromErrno("rename " + path, errno));
        ::unlinkat(to->get(), tmp.c_str(), 0);
        continue;
      }
      stats_.hardlinks++;
    }
    for (const auto& d : dirs_) {
      if (Interrupted()) return Status::Interrupted("restore interrupted");
      auto fd = fs::OpenDirBeneath(rootfd_, d.path, d.path);
      if (!fd.ok()) {
        Report(fd.status());
        continue;
      }
      ApplyMeta(fd->get(), d.entry, d.path, false);
    }
    if (opts_.root_metadata && root.type == EntryType::kDir) ApplyMeta(rootfd_, root, ".", false);
    stats_.bytes_written = bytes_written_.load();
    return Status::Ok();
  }

  RestoreStats& stats() { return stats_; }

 private:
  struct DirMeta {
    std::string path;
    TreeEntry entry;
  };
  struct LinkJob {
    std::string rel;
    TreeEntry entry;
    std::string first;
  };

  static bool SameType(const struct stat& st, EntryType t) {
    switch (t) {
      case EntryType::kFile:
        return S_ISREG(st.st_mode);
      case EntryType::kDir:
        return S_ISDIR(st.st_mode);
      case EntryType::kSymlink:
        return S_ISLNK(st.st_mode);
      case EntryType::kFifo:
        return S_ISFIFO(st.st_mode);
      case EntryType::kCharDevice:
        return S_ISCHR(st.st_mode);
      case EntryType::kBlockDevice:
        return S_ISBLK(st.st_mode);
      case EntryType::kSocket:
        return S_ISSOCK(st.st_mode);
    }
    return false;
  }

  void Warn(const std::string& m) {
    std::lock_guard lock(warn_mu_);
    if (opts_.on_warning) opts_.on_warning(m);
  }

  // Warns about and counts a per-entry error.
  void Report(const Status& s) {
    Warn(s.message());
    std::lock_guard lock(mu_);
    stats_.errors++;
  }
  Status Error(const Status& s) {
    Report(s);
    return Status::Ok();
  }

  // Owner, mode, attributes and times on an open file or directory. Returns whether the
  // existing mode or owner differed.
  bool ApplyMeta(int fd, const TreeEntry& e, const std::string& path, bool keep_times) {
    struct stat st {};
    bool changed = false;
    if (::fstat(fd, &st) == 0) {
      if (is_root_ && (st.st_uid != e.uid || st.st_gid != e.gid)) {
        if (::fchown(fd, e.uid, e.gid) != 0) Warn(Status::FromErrno("chown " + path, errno).message());
        changed = true;
      }
      if ((st.st_mode & 07777) != e.mode) {
        if (::fchmod(fd, e.mode) != 0) Warn(Status::FromErrno("chmod " + path, errno).message());
        changed = true;
      }
    }
    for (const auto& [k, v] : e.xattrs) {
      std::string cur(v.size() + 1, '\0');
      ssize_t n = ::fgetxattr(fd, k.c_str(), cur.data(), cur.size());
      if (n >= 0 && static_cast<size_t>(n) == v.size() && cur.compare(0, v.size(), v) == 0) continue;
      if (::fsetxattr(fd, k.c_str(), v.data(), v.size(), 0) != 0) {
        Warn(Status::FromErrno("setxattr " + path + " " + k, errno).message());
      }
    }
    if (!keep_times || changed) {
      struct timespec ts[2] = {ToTimespec(e.mtime_ns), ToTimespec(e.mtime_ns)};
      if (::futimens(fd, ts) != 0) Warn(Status::FromErrno("utimes " + path, errno).message());
    }
    return changed;
  }

  // Owner and mtime of a symlink or special file, not following it.
  void ApplyLinkMeta(int dfd, const std::string& name, const TreeEntry& e, const std::string& path) {
    if (is_root_ && ::fchownat(dfd, name.c_str(), e.uid, e.gid, AT_SYMLINK_NOFOLLOW) != 0) {
      Warn(Status::FromErrno("chown " + path, errno).message());
    }
    struct timespec ts[2] = {ToTimespec(e.mtime_ns), ToTimespec(e.mtime_ns)};
    if (::utimensat(dfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
      Warn(Status::FromErrno("utimes " + path, errno).message());
    }
  }

  // With verify_content: whether the existing file `e.name` (of the right size) already
  // holds the snapshot's content, by SHA-256. If so its metadata is fixed and it is kept.
  bool KeepIfSameContent(int dfd, const TreeEntry& e, const std::string& path) {
    if (Interrupted()) return false;
    Fd fd(::openat(dfd, e.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    struct stat st {};
    if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<uint64_t>(st.st_size) != e.size) {
      return false;
    }
    Sha256 h;
    thread_local std::vector<uint8_t> buf(1 << 20);
    uint64_t total = 0;
    for (;;) {
      ssize_t n = ::read(fd.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return false;
      if (n == 0) break;
      h.Update({buf.data(), static_cast<size_t>(n)});
      total += static_cast<uint64_t>(n);
    }
    if (total != e.size || store::Digest::Sha256(h.Final()) != e.digest) return false;
    bool fixed = ApplyMeta(fd.get(), e, path, false) || fs::MtimeNs(st) != e.mtime_ns;
    if (opts_.progress) opts_.progress->AddItems(1);
    std::lock_guard lock(mu_);
    stats_.files_unchanged++;
    stats_.files_verified++;
    if (fixed) stats_.metadata_fixed++;
    return true;
  }

  // Files wait in a window until it is full, then go to the writers in digest order: the
  // records of small files sit in the store in digest order, so a window read in that order
  // decompresses each table block about once, where tree order decompresses a block for
  // almost every small file (a third of a restore's CPU on a tree like /usr). A window holds
  // its directories open, so it is bounded by their number as well as by its files.
  struct FileJob {
    std::shared_ptr<Fd> dirfd;
    TreeEntry entry;
    std::string path;
    bool compare;    // same size already there: keep it if the content is the same
    bool fresh_dir;  // the directory was made by this restore: nothing there to replace
  };
  // Half of the descriptors RocksDB leaves (it keeps up to 1024 table files open).
  static size_t WindowDirBudget() {
    struct rlimit rl {};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 8192;
    const size_t limit = static_cast<size_t>(rl.rlim_cur);
    return std::clamp<size_t>(limit > 1100 ? (limit - 1100) / 2 : 0, 16, 8192);
  }

  void FlushWindow() {
    std::sort(window_.begin(), window_.end(),
              [](const FileJob& a, const FileJob& b) { return a.entry.digest < b.entry.digest; });
    for (auto& job : window_) {
      wg_.WaitBelow(2 * pool_.size() + 2);
      wg_.Add();
      pool_.Submit([this, job = std::move(job)] {
        const int dfd = job.dirfd->get();
        Status s = Status::Ok();
        if (!job.compare || !KeepIfSameContent(dfd, job.entry, job.path)) {
          s = WriteFile(dfd, job.entry, job.path, job.fresh_dir);
        }
        if (!s.ok()) {
          if (s.code() == Code::kIO || s.code() == Code::kNotFound || s.code() == Code::kIntegrity) {
            Report(s);
          } else {
            std::lock_guard lock(mu_);
            if (fatal_.ok()) fatal_ = s;
          }
        }
        wg_.Done();
      });
    }
    window_.clear();
    window_dirs_ = 0;
    window_last_dir_ = nullptr;
  }

  // Into a directory this restore made, a file is written in place: there is nothing to
  // replace, and a file cut short by a crash keeps the time of the crash as its mtime, so
  // the next restore rewrites it. Elsewhere through a temporary name and a rename.
  Status WriteFile(int dfd, const TreeEntry& e, const std::string& path, bool fresh_dir) {
    {
      std::lock_guard lock(mu_);
      if (!fatal_.ok()) return Status::Ok();
    }
    if (Interrupted()) return Status::Interrupted("restore interrupted");
    SILO_ASSIGN_OR_RETURN(auto reader, store_.NewReader(e.digest).WithContext(path));
    if (reader->info().size != e.size) {
      return Status::Integrity(path + ": stored content has " + std::to_string(reader->info().size) +
                               " bytes, the tree says " + std::to_string(e.size));
    }
    std::string tmp;
    Fd out;
    if (fresh_dir) {
      tmp = e.name;
      out = Fd(::openat(dfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!out.valid()) return Status::FromErrno("create " + path, errno);
    }
    for (int i = 0; i < 8 && !out.valid(); ++i) {
      tmp = TempName();
      out = Fd(::openat(dfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!out.valid() && errno != EEXIST) return Status::FromErrno("create " + path, errno);
    }
    if (!out.valid()) return Status::IO("create " + path + ": no free temporary name");
    auto cleanup = [&](Status s) {
      ::unlinkat(dfd, tmp.c_str(), 0);
      return s;
    };
    // A chunked object is written straight from the stored chunks (ReadPiece hands them
    // out in place); an inline one, which ReadPiece would copy, through the buffer.
    const bool in_place = !reader->info().inlined;
    thread_local std::vector<uint8_t> buf(1 << 20);
    for (;;) {
      if (Interrupted()) return cleanup(Status::Interrupted("restore interrupted"));
      ByteSpan bytes;
      store::ObjectPiece piece;
      if (in_place) {
        auto p = reader->ReadPiece(buf.size());
        if (!p.ok()) return cleanup(p.status().WithContext(path));
        piece = std::move(p).value();
        bytes = AsBytes(piece.bytes);
      } else {
        auto n = reader->Read(buf);
        if (!n.ok()) return cleanup(n.status().WithContext(path));
        bytes = {buf.data(), *n};
      }
      if (bytes.empty()) break;
      if (Status s = WriteAll(out.get(), bytes, path); !s.ok()) return cleanup(s);
      bytes_written_ += bytes.size();
      if (opts_.progress) opts_.progress->Add(bytes.size());
    }
    ApplyMeta(out.get(), e, path, false);
    if (!fresh_dir && ::renameat(dfd, tmp.c_str(), dfd, e.name.c_str()) != 0) {
      return cleanup(Status::FromErrno("rename " + path, errno));
    }
    if (opts_.progress) opts_.progress->AddItems(1);
    std::lock_guard lock(mu_);
    stats_.files_written++;
    return Status::Ok();
  }

  store::Store& store_;
  const RestoreOptions& opts_;
  int rootfd_;
  ThreadPool pool_;
  WaitGroup wg_;
  bool is_root_;
  std::mutex mu_;
  std::mutex warn_mu_;
  Status fatal_;
  RestoreStats stats_;
  std::atomic<uint64_t> bytes_written_{0};
  std::vector<DirMeta> dirs_;
  std::map<uint64_t, std::string> link_firsts_;
  std::vector<LinkJob> links_;
  std::vector<FileJob> window_;
  size_t window_dirs_ = 0;  // directories entered since the window began (an upper bound)
  const Fd* window_last_dir_ = nullptr;
  const size_t window_dir_budget_ = WindowDirBudget();
};

}  // namespace

Result<RestoreStats> RestoreTree(store::Store& store, const TreeEntry& root, const std::string& target,
                                 const RestoreOptions& options) {
  if (::mkdir(target.c_str(), 0755) != 0 && errno != EEXIST) return Status::FromErrno("mkdir " + target, errno);
  auto rootfd = std::make_shared<Fd>(::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!rootfd->valid()) return Status::FromErrno("open " + target, errno);
  Restorer r(store, options, rootfd->get());
  if (root.type == EntryType::kDir) {
    SILO_ASSIGN_OR_RETURN(index::Tree t, index::LoadTree(store, root.digest));
    SILO_TRY(r.RestoreDir(rootfd, "", t));
  } else {
    SILO_TRY(index::ValidateEntryName(root.name));
    SILO_TRY(r.RestoreEntry(rootfd, "", root));
  }
  SILO_TRY(r.Finish(root));
  return r.stats();
}

}  // namespace silo::transfer
