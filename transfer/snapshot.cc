#include "transfer/snapshot.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "index/stat_cache.h"
#include "index/tree.h"
#include "transfer/fs_util.h"
#include "util/fd.h"
#include "util/hash.h"
#include "util/interrupt.h"
#include "util/thread_pool.h"

namespace silo::transfer {
namespace {

using index::EntryType;
using index::TreeEntry;

constexpr size_t kReadBuffer = 1 << 20;
constexpr int kReadAttempts = 3;
constexpr size_t kCacheBatch = 10000;
constexpr int kSnapshotZstdLevel = 3;

struct DirNode {
  std::vector<TreeEntry> entries;
  std::vector<std::unique_ptr<DirNode>> children;  // parallel to entries; set for directories
  // Set when the scan could settle the whole subtree from the stat cache and found its
  // tree already stored (the fast path of an unchanged directory): its encoding and digest.
  bool settled = false;
  std::string encoded;
  store::Digest digest;
};

struct IgnoreSet {
  std::string base;  // directory (relative to the source root) the patterns apply below
  std::vector<std::string> patterns;
};

struct HardlinkGroup {
  std::vector<TreeEntry*> members;  // in scan order; the first one is read
};

std::string JoinRel(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

bool SameVersion(const struct stat& a, const struct stat& b) {
  return a.st_size == b.st_size && fs::MtimeNs(a) == fs::MtimeNs(b) && fs::CtimeNs(a) == fs::CtimeNs(b) &&
         a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

class Scanner {
 public:
  Scanner(store::Store& store, const SnapshotRequest& req)
      : store_(store),
        req_(req),
        pool_(req.threads ? req.threads : std::max(2u, std::thread::hardware_concurrency())),
        cache_space_(index::StatCacheSpace(req.name)) {
    scan_start_ns_ =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    struct stat st {};
    if (::stat(store.path().c_str(), &st) == 0) {
      store_dev_ = st.st_dev;
      store_ino_ = st.st_ino;
    }
  }

  ~Scanner() { wg_.Wait(); }

  // Scans one source into `node` (its root directory's entries).
  Status Walk(const SnapshotSourceSpec& src, std::shared_ptr<Fd> dirfd, DirNode* node) {
    std::vector<IgnoreSet> ignores;
    if (!req_.excludes.empty()) ignores.push_back({"", req_.excludes});
    return WalkDir(src, std::move(dirfd), "", src.path, node, ignores);
  }

  // After every walk: waits for the readers, settles hardlink groups.
  Status Settle() {
    wg_.Wait();
    {
      std::lock_guard lock(mu_);
      if (!fatal_.ok()) return fatal_;
    }
    stats_.bytes_read = bytes_read_.load();
    if (Interrupted()) return Status::Interrupted("snapshot interrupted; nothing was committed");
    uint64_t next = 0;
    for (auto& g : groups_) {
      TreeEntry* first = g.members.front();
      if (g.members.size() < 2) {
        first->hardlink_group = 0;
        continue;
      }
      ++next;
      for (TreeEntry* m : g.members) {
        m->hardlink_group = next;
        if (m == first) continue;
        if (first->name.empty()) {
          m->name.clear();  // the inode could not be read: leave every name of it out
          continue;
        }
        m->digest = first->digest;
        m->size = first->size;
        m->mtime_ns = first->mtime_ns;
        m->mode = first->mode;
        m->xattrs = first->xattrs;
      }
    }
    return Status::Ok();
  }

  // Stores the trees of `node` bottom-up; *empty tells whether it kept no entry.
  Result<store::Digest> Finish(DirNode& node, bool leaf_only, bool* empty) {
    index::Tree tree;
    for (size_t i = 0; i < node.entries.size(); ++i) {
      TreeEntry& e = node.entries[i];
      if (e.name.empty()) continue;
      if (e.type == EntryType::kDir) {
        bool child_empty = false;
        SILO_ASSIGN_OR_RETURN(e.digest, Finish(*node.children[i], leaf_only, &child_empty));
        if (leaf_only && child_empty) continue;
        stats_.dirs++;
      } else if (e.type == EntryType::kFile) {
        stats_.total_bytes += e.size;
        files_++;
      }
      tree.entries.push_back(e);
    }
    *empty = tree.entries.empty();
    if (node.settled) {
      // Still put (an existing object writes nothing) so a running gc is told it is used.
      store::PutOptions opts;
      opts.links = index::TreeLinks(tree);
      SILO_ASSIGN_OR_RETURN(auto info, store_.Put(AsBytes(node.encoded), opts));
      return info.digest;
    }
    return index::StoreTree(store_, std::move(tree));
  }

  // Writes the entries of the files read, and deletes the entries of files this scan did
  // not meet (removed, excluded or unreadable now): the cache holds only what the latest
  // snapshot of the name saw, so it does not grow with every file that ever existed.
  Status FlushStatCache() {
    std::vector<std::pair<std::string, std::optional<std::string>>> batch;
    auto add = [&](std::string key, std::optional<std::string> value) -> Status {
      batch.emplace_back(std::move(key), std::move(value));
      if (batch.size() < kCacheBatch) return Status::Ok();
      SILO_TRY(store_.WriteIndex(cache_space_, batch));
      batch.clear();
      return Status::Ok();
    };
    for (auto& [k, v] : cache_updates_) SILO_TRY(add(k, index::EncodeStatCacheValue(v)));
    std::sort(seen_.begin(), seen_.end());
    std::vector<std::string> stale;
    SILO_TRY(store_.ScanIndex(cache_space_, "", [&](std::string_view key, std::string_view) {
      if (!std::binary_search(seen_.begin(), seen_.end(), std::string_view(key))) stale.emplace_back(key);
      return true;
    }));
    for (auto& k : stale) SILO_TRY(add(std::move(k), std::nullopt));
    stats_.cache_pruned = stale.size();
    if (!batch.empty()) SILO_TRY(store_.WriteIndex(cache_space_, batch));
    return Status::Ok();
  }

  SnapshotStats& stats() { return stats_; }
  uint64_t files() const { return files_; }

 private:
  void Warn(const std::string& m) {
    std::lock_guard lock(warn_mu_);
    if (req_.on_warning) req_.on_warning(m);
  }

  bool Excluded(const std::vector<IgnoreSet>& ignores, const std::string& rel, const std::string& name) {
    for (const auto& set : ignores) {
      std::string sub = set.base.empty() ? rel : rel.substr(set.base.size() + 1);
      for (const auto& p : set.patterns) {
        bool anchored = p.find('/') != std::string::npos;
        std::string pat = !p.empty() && p[0] == '/' ? p.substr(1) : p;
        if (!pat.empty() && pat.back() == '/') pat.pop_back();
        if (::fnmatch(pat.c_str(), anchored ? sub.c_str() : name.c_str(), anchored ? FNM_PATHNAME : 0) == 0)
          return true;
      }
    }
    return false;
  }

  void LoadIgnoreFile(int dirfd, const std::string& rel, std::vector<IgnoreSet>& ignores) {
    Fd f(::openat(dirfd, ".siloignore", O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!f.valid()) return;
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(f.get(), buf, sizeof buf)) > 0 && text.size() < (1 << 20))
      text.append(buf, static_cast<size_t>(n));
    IgnoreSet set{rel, {}};
    size_t pos = 0;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      pos = nl == std::string::npos ? text.size() : nl + 1;
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty() && line[0] != '#') set.patterns.push_back(line);
    }
    if (!set.patterns.empty()) ignores.push_back(std::move(set));
  }

  Status WalkDir(const SnapshotSourceSpec& src, std::shared_ptr<Fd> dirfd, const std::string& rel,
                 const std::string& what, DirNode* node, std::vector<IgnoreSet>& ignores) {
    if (Interrupted()) return Status::Interrupted("snapshot interrupted; nothing was committed");
    size_t ignores_before = ignores.size();
    LoadIgnoreFile(dirfd->get(), rel, ignores);
    SILO_ASSIGN_OR_RETURN(auto names, fs::ListDir(dirfd->get(), what));
    // Pass 1: stat every name (entries must not move once readers hold pointers to them).
    std::vector<struct stat> stats;
    node->entries.reserve(names.size());
    for (auto& name : names) {
      std::string child_rel = JoinRel(rel, name);
      if ((src.ignore_hidden && name[0] == '.') || Excluded(ignores, child_rel, name)) {
        stats_.excluded++;
        continue;
      }
      struct stat st {};
      std::string child_what = what + "/" + name;
      if (::fstatat(dirfd->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // removed since the listing
        Warn(Status::FromErrno("stat " + child_what, errno).message() + "; left out");
        stats_.errors++;
        continue;
      }
      if (S_ISDIR(st.st_mode) && st.st_dev == store_dev_ && st.st_ino == store_ino_) {
        Warn(child_what + ": the store itself; left out");
        stats_.skipped++;
        continue;
      }
      TreeEntry e;
      if (!fs::EntryFromStat(st, &e)) {
        Warn(child_what + ": socket or unsupported file type; skipped");
        stats_.skipped++;
        continue;
      }
      e.name = std::move(name);
      if (e.type == EntryType::kSymlink) {
        std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 255) + 1, '\0');
        ssize_t n = ::readlinkat(dirfd->get(), e.name.c_str(), target.data(), target.size());
        if (n <= 0 || static_cast<size_t>(n) >= target.size()) {
          Warn(child_what + ": cannot read the symlink (changed while scanning?); left out");
          stats_.errors++;
          continue;
        }
        target.resize(static_cast<size_t>(n));
        e.target = std::move(target);
        stats_.symlinks++;
      } else if (e.type != EntryType::kFile && e.type != EntryType::kDir) {
        stats_.specials++;
      }
      auto xattrs = fs::ReadXattrs(dirfd->get(), e.name, child_what);
      if (xattrs.ok()) {
        e.xattrs = std::move(xattrs).value();
      } else {
        Warn(xattrs.status().message() + "; attributes not kept");
      }
      node->entries.push_back(std::move(e));
      stats.push_back(st);
    }
    node->children.resize(node->entries.size());
    // Pass 2: files to the readers (or from the stat cache), directories recursively, in
    // name order so hardlink groups are numbered the same way every time.
    std::vector<size_t> cache_hits;
    std::vector<store::Digest> hit_digests;
    // One batched stat-cache lookup for the directory's files (in entry order).
    std::vector<std::optional<std::string>> cached;
    {
      std::vector<std::string> keys;
      for (size_t i = 0; i < node->entries.size(); ++i) {
        if (node->entries[i].type != EntryType::kFile) continue;
        keys.push_back(index::StatCacheKey(stats[i].st_dev, stats[i].st_ino));
        seen_.push_back(keys.back());
      }
      if (req_.use_stat_cache && !keys.empty()) {
        SILO_ASSIGN_OR_RETURN(cached, store_.GetIndexMany(cache_space_, keys));
      }
    }
    size_t file_no = 0;
    // Whether every entry's digest is known now (no reads, hardlinks or unsettled subtrees).
    bool settled = !src.leaf_only;
    for (size_t i = 0; i < node->entries.size(); ++i) {
      TreeEntry& e = node->entries[i];
      const struct stat& st = stats[i];
      if (e.type == EntryType::kDir) {
        std::string child_what = what + "/" + e.name;
        auto sub = std::make_shared<Fd>(
            ::openat(dirfd->get(), e.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub->valid()) {
          Warn(Status::FromErrno("open " + child_what, errno).message() + "; left out");
          stats_.errors++;
          e.name.clear();
          continue;
        }
        node->children[i] = std::make_unique<DirNode>();
        SILO_TRY(WalkDir(src, std::move(sub), JoinRel(rel, e.name), child_what, node->children[i].get(), ignores));
        settled = settled && node->children[i]->settled;
        continue;
      }
      if (e.type != EntryType::kFile) continue;
      const std::optional<std::string>* cache_value = req_.use_stat_cache ? &cached[file_no] : nullptr;
      ++file_no;
      if (st.st_nlink > 1) {
        settled = false;
        auto [it, fresh] = inodes_.try_emplace({st.st_dev, st.st_ino}, groups_.size());
        if (fresh) groups_.emplace_back();
        groups_[it->second].members.push_back(&e);
        e.hardlink_group = it->second + 1;
        if (!fresh) continue;  // read once, through the first name
      }
      bool had_entry = false;
      if (cache_value) {
        index::StatCacheValue v;
        if (*cache_value && index::DecodeStatCacheValue(**cache_value, &v)) {
          had_entry = true;
          if (v.size == static_cast<uint64_t>(st.st_size) && v.mtime_ns == fs::MtimeNs(st) &&
              v.ctime_ns == fs::CtimeNs(st)) {
            e.digest = v.digest;
            cache_hits.push_back(i);
            hit_digests.push_back(v.digest);
            continue;
          }
        }
      }
      settled = false;
      Submit(dirfd, &e, what + "/" + e.name, had_entry);
    }
    // Unchanged directory: when its tree (as the cache describes it) is already stored, so
    // is everything it links to (gc removes a tree no later than what it links), and the
    // cache hits need no check of their own.
    if (settled) {
      index::Tree tree;
      for (size_t i = 0; i < node->entries.size(); ++i) {
        TreeEntry e = node->entries[i];
        if (e.name.empty()) continue;
        if (e.type == EntryType::kDir) e.digest = node->children[i]->digest;
        tree.entries.push_back(std::move(e));
      }
      node->encoded = index::EncodeTree(std::move(tree));
      node->digest = store::Digest::Sha256(Sha256::Of(AsBytes(node->encoded)));
      SILO_ASSIGN_OR_RETURN(auto missing, store_.Missing({&node->digest, 1}));
      if (missing.empty()) {
        node->settled = true;
        stats_.files_unchanged += cache_hits.size();
        hit_digests.clear();
      } else {
        node->encoded.clear();
      }
    }
    // Cache entries are hints: content gc has since removed is read again.
    if (!hit_digests.empty()) {
      SILO_ASSIGN_OR_RETURN(auto missing, store_.Missing(hit_digests));
      std::sort(missing.begin(), missing.end());
      for (size_t i : cache_hits) {
        TreeEntry& e = node->entries[i];
        if (std::binary_search(missing.begin(), missing.end(), e.digest)) {
          Submit(dirfd, &e, what + "/" + e.name, true);
        } else {
          stats_.files_unchanged++;
        }
      }
    }
    ignores.resize(ignores_before);
    return Status::Ok();
  }

  void Submit(const std::shared_ptr<Fd>& dirfd, TreeEntry* e, std::string what, bool had_entry) {
    wg_.WaitBelow(2 * pool_.size() + 2);
    wg_.Add();
    pool_.Submit([this, dirfd, e, what = std::move(what), had_entry] {
      Status s = ReadFile(dirfd->get(), e, what, had_entry);
      if (!s.ok()) {
        std::lock_guard lock(mu_);
        if (s.code() == Code::kIO || s.code() == Code::kNotFound) {
          Warn(s.message() + "; left out");
          stats_.errors++;
          e->name.clear();
        } else if (fatal_.ok()) {
          fatal_ = s;
        }
      }
      wg_.Done();
    });
  }

  Status ReadFile(int dirfd, TreeEntry* e, const std::string& what, bool had_entry) {
    {
      std::lock_guard lock(mu_);
      if (!fatal_.ok()) return Status::Ok();
    }
    if (Interrupted()) return Status::Interrupted("snapshot interrupted");
    int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    Fd fd(::openat(dirfd, e->name.c_str(), flags | O_NOATIME));
    if (!fd.valid() && errno == EPERM) fd = Fd(::openat(dirfd, e->name.c_str(), flags));
    if (!fd.valid()) return Status::FromErrno("open " + what, errno);
    struct stat before {};
    if (::fstat(fd.get(), &before) != 0) return Status::FromErrno("stat " + what, errno);
    if (!S_ISREG(before.st_mode)) return Status::IO(what + ": no longer a regular file");
    ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    thread_local std::vector<uint8_t> buf(kReadBuffer);
    store::PutOptions opts;
    opts.sha1_alias = true;
    // Snapshots are kept long and read rarely: compress harder than the store's default
    // (level 3 keeps about a tenth more off disk than level 1 on a tree like /usr).
    opts.compression_level = kSnapshotZstdLevel;
    for (int attempt = 1;; ++attempt) {
      SILO_ASSIGN_OR_RETURN(auto writer, store_.NewWriter(opts));
      uint64_t off = 0;
      for (;;) {
        if (Interrupted()) return Status::Interrupted("snapshot interrupted");
        ssize_t n = ::pread(fd.get(), buf.data(), buf.size(), static_cast<off_t>(off));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Status::FromErrno("read " + what, errno);
        if (n == 0) break;
        SILO_TRY(writer->Write({buf.data(), static_cast<size_t>(n)}).WithContext(what));
        off += static_cast<uint64_t>(n);
        bytes_read_ += static_cast<uint64_t>(n);
        if (req_.progress) req_.progress->Add(static_cast<uint64_t>(n));
      }
      struct stat after {};
      if (::fstat(fd.get(), &after) != 0) return Status::FromErrno("stat " + what, errno);
      bool stable = SameVersion(before, after) && off == static_cast<uint64_t>(after.st_size);
      if (!stable && attempt < kReadAttempts) {
        before = after;
        continue;  // the writer is dropped: nothing of this attempt becomes visible
      }
      SILO_ASSIGN_OR_RETURN(auto info, writer->Commit().WithContext(what));
      fs::EntryFromStat(after, e);  // the metadata of what was read
      e->size = off;
      e->digest = info.digest;
      std::lock_guard lock(mu_);
      stats_.bytes_added += info.new_stored_bytes;
      (had_entry ? stats_.files_changed : stats_.files_new)++;
      if (!stable) {
        stats_.changed_during_read++;
        Warn(what + ": kept changing while being read; stored as last read");
        return Status::Ok();
      }
      // A file modified within the last second could change again without its mtime
      // moving (coarse timestamps): do not let the cache vouch for it.
      const int64_t racy = scan_start_ns_ - 1000000000LL;
      if (fs::MtimeNs(after) < racy && fs::CtimeNs(after) < racy) {
        cache_updates_.emplace_back(index::StatCacheKey(after.st_dev, after.st_ino),
                                    index::StatCacheValue{off, fs::MtimeNs(after), fs::CtimeNs(after), info.digest});
      }
      return Status::Ok();
    }
  }

  store::Store& store_;
  const SnapshotRequest& req_;
  ThreadPool pool_;
  WaitGroup wg_;
  std::mutex mu_;
  std::mutex warn_mu_;
  Status fatal_;
  SnapshotStats stats_;  // the readers update it under mu_
  std::atomic<uint64_t> bytes_read_{0};
  uint64_t files_ = 0;  // file names kept (hardlinked names count each)
  std::map<std::pair<dev_t, ino_t>, size_t> inodes_;
  std::vector<HardlinkGroup> groups_;
  std::vector<std::pair<std::string, index::StatCacheValue>> cache_updates_;
  const std::string cache_space_;
  std::vector<std::string> seen_;  // stat-cache keys of every file met (the walk's thread only)
  int64_t scan_start_ns_ = 0;
  dev_t store_dev_ = 0;
  ino_t store_ino_ = 0;
};

}  // namespace

Result<SnapshotResult> TakeSnapshot(store::Store& store, const SnapshotRequest& req) {
  SILO_TRY(index::ValidateSnapshotName(req.name));
  if (req.sources.empty()) return Status::InvalidArgument("snapshot: name at least one directory");
  for (size_t i = 0; i < req.sources.size(); ++i) {
    SILO_TRY(index::ValidateEntryName(req.sources[i].key)
                 .WithContext("snapshot: source key \"" + req.sources[i].key + "\""));
    for (size_t j = 0; j < i; ++j) {
      if (req.sources[j].key == req.sources[i].key) {
        return Status::InvalidArgument("snapshot: two sources named " + req.sources[i].key + "; give them keys");
      }
    }
  }
  SILO_ASSIGN_OR_RETURN(index::SnapshotRecord record, index::NewSnapshotRecord(store, req.name));

  Scanner scanner(store, req);
  std::vector<std::unique_ptr<DirNode>> roots;
  std::vector<TreeEntry> root_entries;
  for (const auto& src : req.sources) {
    char* real = ::realpath(src.path.c_str(), nullptr);
    if (!real) return Status::FromErrno("snapshot " + src.path, errno);
    std::string abs = real;
    std::free(real);
    auto fd = std::make_shared<Fd>(::open(abs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd->valid()) return Status::FromErrno("snapshot " + src.path, errno);
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) return Status::FromErrno("stat " + src.path, errno);
    TreeEntry e;
    fs::EntryFromStat(st, &e);
    e.name = src.key;
    auto xattrs = fs::ReadXattrs(fd->get(), ".", src.path);
    if (xattrs.ok()) {
      e.xattrs = std::move(xattrs).value();
    } else if (req.on_warning) {
      req.on_warning(xattrs.status().message() + "; attributes not kept");
    }
    root_entries.push_back(e);
    record.sources.push_back({src.key, abs, {}});
    roots.push_back(std::make_unique<DirNode>());
    SILO_TRY(scanner.Walk(src, fd, roots.back().get()));
  }
  SILO_TRY(scanner.Settle());
  index::Tree top;
  for (size_t i = 0; i < roots.size(); ++i) {
    bool empty = false;
    SILO_ASSIGN_OR_RETURN(record.sources[i].tree, scanner.Finish(*roots[i], req.sources[i].leaf_only, &empty));
    root_entries[i].digest = record.sources[i].tree;
    top.entries.push_back(root_entries[i]);
  }
  if (roots.size() == 1 && req.top_is_source) {
    record.root = record.sources[0].tree;
    record.root_entry = root_entries[0];
  } else {
    SILO_ASSIGN_OR_RETURN(record.root, index::StoreTree(store, std::move(top)));
  }
  SnapshotStats& stats = scanner.stats();
  record.files = scanner.files();
  record.dirs = stats.dirs;
  record.bytes = stats.total_bytes;
  if (Interrupted()) return Status::Interrupted("snapshot interrupted; nothing was committed");
  SILO_ASSIGN_OR_RETURN(auto info, index::CommitSnapshot(store, record));
  // The cache is written after the commit; losing it costs only a re-read next time.
  SILO_TRY(scanner.FlushStatCache().WithContext("stat cache"));
  return SnapshotResult{std::move(info), stats};
}

}  // namespace silo::transfer
