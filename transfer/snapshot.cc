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
#include <unordered_map>
#include <unordered_set>

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
constexpr int kSnapshotZstdLevel = 2;
constexpr size_t kBatchFiles = 64;
constexpr uint64_t kBatchBytes = 8 << 20;

struct DirNode {
  std::vector<TreeEntry> entries;
  std::vector<std::unique_ptr<DirNode>> children;  // parallel to entries; set for directories
  std::string cache_key;                           // StatCacheKey of the directory itself
  // The scan's view of the entries (index/stat_cache.h, DirCacheValue), without the
  // subtrees' digests, which join it once known.
  std::string view;
  // The directory cache may describe it: no hardlinks, no entry changed within the racy
  // window, nothing left out with a warning, no file changed between the scan and its read.
  bool cacheable = true;
  // Settled from the directory cache during the walk: `digest` is its tree, `entries` and
  // `children` are dropped, and the counts below describe the whole subtree.
  bool settled = false;
  store::Digest digest;
  uint64_t sub_files = 0;
  uint64_t sub_dirs = 0;
  uint64_t sub_bytes = 0;
  size_t kept = 0;  // entries the tree keeps (settled nodes)
};

struct IgnoreSet {
  std::string base;  // directory (relative to the source root) the patterns apply below
  std::vector<std::string> patterns;
};

// A file for the readers: where it is, what the walk saw of it, and the entry to fill.
struct ReadJob {
  std::shared_ptr<Fd> dirfd;
  DirNode* node;
  TreeEntry* entry;
  struct stat scanned;
  std::string what;  // its path as messages name it
  bool had_entry;    // the stat cache knew the inode (a changed file, not a new one)
};

struct HardlinkGroup {
  std::vector<TreeEntry*> members;  // in scan order; the first one is read
};

std::string JoinRel(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

// One entry of a directory's view: what a scan learns of it from the listing and a stat.
void AppendView(std::string* view, const std::string& name, const struct stat& st) {
  auto put = [&](uint64_t v) {
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
    view->append(b, 8);
  };
  put(name.size());
  view->append(name);
  put(static_cast<uint64_t>(st.st_dev));
  put(static_cast<uint64_t>(st.st_ino));
  put(static_cast<uint64_t>(st.st_mode));
  put(static_cast<uint64_t>(st.st_uid));
  put(static_cast<uint64_t>(st.st_gid));
  put(static_cast<uint64_t>(st.st_nlink));
  put(static_cast<uint64_t>(st.st_size));
  put(static_cast<uint64_t>(st.st_rdev));
  put(static_cast<uint64_t>(fs::MtimeNs(st)));
  put(static_cast<uint64_t>(fs::CtimeNs(st)));
}

// The fingerprint of a directory: its view, then its subtrees' digests in entry order.
// `sha1`: the snapshot records sha1: aliases (a tree cached without them does not match).
store::Digest Fingerprint(const DirNode& node, bool settled_children, bool sha1) {
  Sha256 h;
  const char version = sha1 ? 2 : 1;
  h.Update(AsBytes(std::string_view(&version, 1)));
  h.Update(AsBytes(node.view));
  for (size_t i = 0; i < node.entries.size(); ++i) {
    const auto& e = node.entries[i];
    if (e.type != EntryType::kDir || e.name.empty()) continue;
    const store::Digest& d = settled_children ? node.children[i]->digest : e.digest;
    h.Update(AsBytes(d.raw()));
  }
  return store::Digest::Sha256(h.Final());
}

bool SameVersion(const struct stat& a, const struct stat& b) {
  return a.st_size == b.st_size && fs::MtimeNs(a) == fs::MtimeNs(b) && fs::CtimeNs(a) == fs::CtimeNs(b) &&
         a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

class Scanner {
 public:
  // `use_dir_cache`: settle unchanged directories from the directory cache (false for the
  // second pass when a cached tree turned out to be gone).
  Scanner(store::Store& store, const SnapshotRequest& req, bool use_dir_cache)
      : store_(store),
        req_(req),
        pool_(req.threads ? req.threads : std::max(2u, std::thread::hardware_concurrency())),
        pins_(store.NewPins()),
        cache_space_(index::StatCacheSpace(req.name)),
        dir_space_(index::DirCacheSpace(req.name)),
        use_dir_cache_(use_dir_cache && req.use_stat_cache) {
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

  // Opens the commit group the files' contents are committed through: one write per
  // couple of MiB instead of one or two per file.
  Status Start() {
    SILO_ASSIGN_OR_RETURN(group_, store_.NewCommitGroup());
    return Status::Ok();
  }

  // Reads the directory cache (one scan of its index space).
  Status LoadDirCache() {
    return store_.ScanIndex(dir_space_, "", [&](std::string_view key, std::string_view value) {
      index::DirCacheValue v;
      if (index::DecodeDirCacheValue(value, &v)) {
        dir_cache_.emplace(std::string(key), v);
      } else {
        dir_stale_.emplace_back(key);
      }
      return true;
    });
  }

  // Scans one source into `node` (its root directory, whose stat is `st`).
  Status Walk(const SnapshotSourceSpec& src, std::shared_ptr<Fd> dirfd, const struct stat& st, DirNode* node) {
    std::vector<IgnoreSet> ignores;
    if (!req_.excludes.empty()) ignores.push_back({"", req_.excludes});
    SILO_TRY(WalkDir(src, std::move(dirfd), "", src.path, st, node, ignores));
    if (node->settled) reused_trees_.push_back(node->digest);
    return Status::Ok();
  }

  // After every walk: waits for the readers, settles hardlink groups, and checks that the
  // trees reused from the directory cache are still stored (pinning them until the
  // scanner is gone). *stale tells that one is not: the caller scans again without it.
  Status Settle(bool* stale) {
    *stale = false;
    SubmitPending();
    wg_.Wait();
    {
      std::lock_guard lock(mu_);
      if (!fatal_.ok()) return fatal_;
    }
    stats_.bytes_read = bytes_read_.load();
    if (Interrupted()) return Status::Interrupted("snapshot interrupted; nothing was committed");
    // The files' objects become visible before any tree names them.
    SILO_TRY(group_->Flush());
    if (!reused_trees_.empty()) {
      // A stored tree has all it links to (gc removes objects in one batch and keeps what
      // pinned objects reach), so the topmost reused trees are all there is to check.
      SILO_ASSIGN_OR_RETURN(auto missing, pins_->PinExisting(reused_trees_));
      if (!missing.empty()) {
        *stale = true;
        return Status::Ok();
      }
    }
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
    if (node.settled) {
      stats_.dirs += node.sub_dirs;
      stats_.total_bytes += node.sub_bytes;
      files_ += node.sub_files;
      *empty = node.kept == 0;
      return node.digest;
    }
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
    // Through the group, like the files (pinned by it; visible once it is flushed).
    SILO_ASSIGN_OR_RETURN(auto digest, index::StoreTree(store_, std::move(tree), group_));
    if (node.cacheable && !leaf_only) {
      dir_updates_.emplace_back(node.cache_key,
                                index::DirCacheValue{Fingerprint(node, false, req_.sha1_alias), digest});
    }
    return digest;
  }

  // Writes the stat-cache entries of the files read, and deletes the entries of files this
  // scan did not meet (removed, excluded or unreadable now): the cache holds only what the
  // latest snapshot of the name saw, so it does not grow with every file that ever
  // existed. Entries are hints, so this may run before the commit, beside Finish (it
  // touches nothing else of the scanner). *pruned: the entries deleted.
  Status WriteFileCache(uint64_t* pruned) {
    // The stale entries are found before the new ones are written (a first snapshot of a
    // name scans an empty space).
    std::vector<std::string> stale;
    bool sorted = false;
    SILO_TRY(store_.ScanIndex(cache_space_, "", [&](std::string_view key, std::string_view) {
      if (!sorted) {
        std::sort(seen_.begin(), seen_.end());
        sorted = true;
      }
      if (!std::binary_search(seen_.begin(), seen_.end(), std::string_view(key))) stale.emplace_back(key);
      return true;
    }));
    *pruned = stale.size();
    std::vector<std::pair<std::string, std::optional<std::string>>> batch;
    auto add = [&](std::string key, std::optional<std::string> value) -> Status {
      batch.emplace_back(std::move(key), std::move(value));
      if (batch.size() < kCacheBatch) return Status::Ok();
      SILO_TRY(store_.WriteIndex(cache_space_, batch));
      batch.clear();
      return Status::Ok();
    };
    for (auto& [k, v] : cache_updates_) SILO_TRY(add(k, index::EncodeStatCacheValue(v)));
    for (auto& k : stale) SILO_TRY(add(std::move(k), std::nullopt));
    if (!batch.empty()) SILO_TRY(store_.WriteIndex(cache_space_, batch));
    return Status::Ok();
  }

  // Writes the directory cache after Finish: new views, and deletions of the entries of
  // directories no longer met or no longer cacheable. Returns how many were deleted.
  Result<size_t> WriteDirCache() {
    std::vector<std::pair<std::string, std::optional<std::string>>> dir_batch;
    std::unordered_set<std::string> written;
    for (auto& [k, v] : dir_updates_) {
      written.insert(k);
      dir_batch.emplace_back(k, index::EncodeDirCacheValue(v));
    }
    size_t dirs_pruned = dir_stale_.size();
    for (auto& k : dir_stale_) dir_batch.emplace_back(k, std::nullopt);
    for (auto& [k, v] : dir_cache_) {
      if (dir_kept_.contains(k) || written.contains(k)) continue;
      dir_batch.emplace_back(k, std::nullopt);
      ++dirs_pruned;
    }
    for (size_t i = 0; i < dir_batch.size(); i += kCacheBatch) {
      size_t n = std::min(kCacheBatch, dir_batch.size() - i);
      SILO_TRY(store_.WriteIndex(dir_space_, std::span(dir_batch).subspan(i, n)));
    }
    return dirs_pruned;
  }

  // The group the files and trees are committed through.
  const std::shared_ptr<store::CommitGroup>& group() const { return group_; }

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

  bool Racy(const struct stat& st) const {
    const int64_t racy = scan_start_ns_ - 1000000000LL;
    return fs::MtimeNs(st) >= racy || fs::CtimeNs(st) >= racy;
  }

  // Walks one directory: lists and stats its entries, walks its subdirectories, then
  // either settles it from the directory cache or reads what it needs (attributes, link
  // targets, the stat cache, new and changed files).
  Status WalkDir(const SnapshotSourceSpec& src, std::shared_ptr<Fd> dirfd, const std::string& rel,
                 const std::string& what, const struct stat& self, DirNode* node, std::vector<IgnoreSet>& ignores) {
    if (Interrupted()) return Status::Interrupted("snapshot interrupted; nothing was committed");
    node->cache_key = index::StatCacheKey(self.st_dev, self.st_ino);
    if (src.leaf_only) node->cacheable = false;
    SILO_ASSIGN_OR_RETURN(auto names, fs::ListDir(dirfd->get(), what));
    size_t ignores_before = ignores.size();
    if (std::binary_search(names.begin(), names.end(), std::string(".siloignore"))) {
      LoadIgnoreFile(dirfd->get(), rel, ignores);
    }
    // Pass 1: stat every name (entries must not move once readers hold pointers to them).
    std::vector<struct stat> stats;
    node->entries.reserve(names.size());
    stats.reserve(names.size());
    for (auto& name : names) {
      std::string child_rel = JoinRel(rel, name);
      if ((src.ignore_hidden && name[0] == '.') || Excluded(ignores, child_rel, name)) {
        stats_.excluded++;
        continue;
      }
      struct stat st {};
      if (::fstatat(dirfd->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
          node->cacheable = false;
          continue;  // removed since the listing
        }
        Warn(Status::FromErrno("stat " + what + "/" + name, errno).message() + "; left out");
        stats_.errors++;
        node->cacheable = false;
        continue;
      }
      if (S_ISDIR(st.st_mode) && st.st_dev == store_dev_ && st.st_ino == store_ino_) {
        Warn(what + "/" + name + ": the store itself; left out");
        stats_.skipped++;
        node->cacheable = false;
        continue;
      }
      TreeEntry e;
      if (!fs::EntryFromStat(st, &e)) {
        Warn(what + "/" + name + ": socket or unsupported file type; skipped");
        stats_.skipped++;
        node->cacheable = false;
        continue;
      }
      if (e.type == EntryType::kSymlink) {
        stats_.symlinks++;
      } else if (e.type == EntryType::kFile) {
        if (req_.progress) req_.progress->AddItems(1);
        seen_.push_back(index::StatCacheKey(st.st_dev, st.st_ino));
        if (st.st_nlink > 1) node->cacheable = false;  // group numbers depend on the whole scan
      } else if (e.type != EntryType::kDir) {
        stats_.specials++;
      }
      if (Racy(st)) node->cacheable = false;
      AppendView(&node->view, name, st);
      e.name = std::move(name);
      node->entries.push_back(std::move(e));
      stats.push_back(st);
    }
    node->children.resize(node->entries.size());
    // Subdirectories first, in name order (so hardlink groups are numbered the same way
    // every time).
    bool children_settled = true;
    for (size_t i = 0; i < node->entries.size(); ++i) {
      TreeEntry& e = node->entries[i];
      if (e.type != EntryType::kDir) continue;
      std::string child_what = what + "/" + e.name;
      auto sub =
          std::make_shared<Fd>(::openat(dirfd->get(), e.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub->valid()) {
        Warn(Status::FromErrno("open " + child_what, errno).message() + "; left out");
        stats_.errors++;
        e.name.clear();
        node->cacheable = false;
        children_settled = false;
        continue;
      }
      node->children[i] = std::make_unique<DirNode>();
      SILO_TRY(
          WalkDir(src, std::move(sub), JoinRel(rel, e.name), child_what, stats[i], node->children[i].get(), ignores));
      children_settled = children_settled && node->children[i]->settled;
    }
    ignores.resize(ignores_before);
    if (use_dir_cache_ && node->cacheable && children_settled) {
      auto it = dir_cache_.find(node->cache_key);
      if (it != dir_cache_.end() && it->second.fingerprint == Fingerprint(*node, true, req_.sha1_alias)) {
        SettleFromCache(node, stats, it->second.tree);
        return Status::Ok();
      }
    }
    // The children settled from the cache are now the topmost reused trees.
    for (auto& child : node->children) {
      if (child && child->settled) reused_trees_.push_back(child->digest);
    }
    return ReadEntries(dirfd, what, stats, node);
  }

  void SettleFromCache(DirNode* node, const std::vector<struct stat>& stats, const store::Digest& tree) {
    node->settled = true;
    node->digest = tree;
    dir_kept_.insert(node->cache_key);
    node->kept = node->entries.size();
    uint64_t own_files = 0;
    for (size_t i = 0; i < node->entries.size(); ++i) {
      const TreeEntry& e = node->entries[i];
      if (e.type == EntryType::kFile) {
        ++own_files;
        node->sub_files++;
        node->sub_bytes += static_cast<uint64_t>(stats[i].st_size);
      } else if (e.type == EntryType::kDir) {
        const DirNode& c = *node->children[i];
        node->sub_dirs += 1 + c.sub_dirs;
        node->sub_files += c.sub_files;
        node->sub_bytes += c.sub_bytes;
      }
    }
    stats_.files_unchanged += own_files;
    node->entries.clear();
    node->entries.shrink_to_fit();
    node->children.clear();
    node->children.shrink_to_fit();
    node->view.clear();
    node->view.shrink_to_fit();
  }

  // The slow path of a directory: attributes and link targets, then its files from the
  // stat cache or to the readers.
  Status ReadEntries(const std::shared_ptr<Fd>& dirfd, const std::string& what, const std::vector<struct stat>& stats,
                     DirNode* node) {
    for (size_t i = 0; i < node->entries.size(); ++i) {
      TreeEntry& e = node->entries[i];
      if (e.name.empty()) continue;
      std::string child_what = what + "/" + e.name;
      if (e.type == EntryType::kSymlink) {
        const struct stat& st = stats[i];
        std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 255) + 1, '\0');
        ssize_t n = ::readlinkat(dirfd->get(), e.name.c_str(), target.data(), target.size());
        if (n <= 0 || static_cast<size_t>(n) >= target.size()) {
          Warn(child_what + ": cannot read the symlink (changed while scanning?); left out");
          stats_.errors++;
          stats_.symlinks--;
          e.name.clear();
          node->cacheable = false;
          continue;
        }
        target.resize(static_cast<size_t>(n));
        e.target = std::move(target);
      }
      auto xattrs = fs::ReadXattrs(dirfd->get(), e.name, child_what);
      if (xattrs.ok()) {
        e.xattrs = std::move(xattrs).value();
      } else {
        Warn(xattrs.status().message() + "; attributes not kept");
        node->cacheable = false;
      }
    }
    // One batched stat-cache lookup for the directory's files (in entry order).
    std::vector<std::optional<std::string>> cached;
    if (req_.use_stat_cache) {
      std::vector<std::string> keys;
      for (size_t i = 0; i < node->entries.size(); ++i) {
        if (node->entries[i].type != EntryType::kFile || node->entries[i].name.empty()) continue;
        keys.push_back(index::StatCacheKey(stats[i].st_dev, stats[i].st_ino));
      }
      if (!keys.empty()) {
        SILO_ASSIGN_OR_RETURN(cached, store_.GetIndexMany(cache_space_, keys));
      }
    }
    std::vector<size_t> cache_hits;
    std::vector<store::Digest> hit_digests;
    size_t file_no = 0;
    for (size_t i = 0; i < node->entries.size(); ++i) {
      TreeEntry& e = node->entries[i];
      const struct stat& st = stats[i];
      if (e.type != EntryType::kFile || e.name.empty()) continue;
      const std::optional<std::string>* cache_value = req_.use_stat_cache ? &cached[file_no] : nullptr;
      ++file_no;
      if (st.st_nlink > 1) {
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
              v.ctime_ns == fs::CtimeNs(st) && (v.sha1 || !req_.sha1_alias)) {
            e.digest = v.digest;
            cache_hits.push_back(i);
            hit_digests.push_back(v.digest);
            continue;
          }
        }
      }
      Submit(dirfd, node, &e, st, child_path(what, e.name), had_entry);
    }
    // Cache entries are hints: content gc has since removed is read again. The rest is
    // pinned until the snapshot is committed.
    if (!hit_digests.empty()) {
      std::vector<store::Digest> missing;
      {
        std::lock_guard lock(mu_);
        SILO_ASSIGN_OR_RETURN(missing, pins_->PinExisting(hit_digests));
      }
      std::sort(missing.begin(), missing.end());
      for (size_t i : cache_hits) {
        TreeEntry& e = node->entries[i];
        if (std::binary_search(missing.begin(), missing.end(), e.digest)) {
          Submit(dirfd, node, &e, stats[i], child_path(what, e.name), true);
        } else {
          stats_.files_unchanged++;
        }
      }
    }
    return Status::Ok();
  }

  static std::string child_path(const std::string& what, const std::string& name) { return what + "/" + name; }

  // Queues a file for the readers. Files go to the pool in batches (up to kBatchFiles
  // files or kBatchBytes bytes), so a tree of small files costs a hand-off and a wake-up
  // per batch rather than per file.
  void Submit(const std::shared_ptr<Fd>& dirfd, DirNode* node, TreeEntry* e, const struct stat& scanned,
              std::string what, bool had_entry) {
    pending_.push_back(ReadJob{dirfd, node, e, scanned, std::move(what), had_entry});
    pending_bytes_ += static_cast<uint64_t>(std::max<off_t>(scanned.st_size, 0));
    if (pending_.size() >= kBatchFiles || pending_bytes_ >= kBatchBytes) SubmitPending();
  }

  void SubmitPending() {
    if (pending_.empty()) return;
    wg_.WaitBelow(2 * pool_.size() + 2);
    wg_.Add();
    pool_.Submit([this, jobs = std::move(pending_)] {
      for (const ReadJob& j : jobs) Run(j);
      wg_.Done();
    });
    pending_ = {};
    pending_bytes_ = 0;
  }

  void Run(const ReadJob& j) {
    Status s = ReadFile(j.dirfd->get(), j.node, j.entry, j.scanned, j.what, j.had_entry);
    if (s.ok()) return;
    std::lock_guard lock(mu_);
    j.node->cacheable = false;
    if (s.code() == Code::kIO || s.code() == Code::kNotFound) {
      Warn(s.message() + "; left out");
      stats_.errors++;
      j.entry->name.clear();
    } else if (fatal_.ok()) {
      // An interrupt the store noticed first (mid-write) says what it means for the snapshot.
      fatal_ = s.code() == Code::kInterrupted ? Status::Interrupted("snapshot interrupted; nothing was committed") : s;
    }
  }

  Status ReadFile(int dirfd, DirNode* node, TreeEntry* e, const struct stat& scanned, const std::string& what,
                  bool had_entry) {
    {
      std::lock_guard lock(mu_);
      if (!fatal_.ok()) return Status::Ok();
    }
    if (Interrupted()) return Status::Interrupted("snapshot interrupted; nothing was committed");
    int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    Fd fd(::openat(dirfd, e->name.c_str(), flags | O_NOATIME));
    if (!fd.valid() && errno == EPERM) fd = Fd(::openat(dirfd, e->name.c_str(), flags));
    if (!fd.valid()) return Status::FromErrno("open " + what, errno);
    struct stat before {};
    if (::fstat(fd.get(), &before) != 0) return Status::FromErrno("stat " + what, errno);
    if (!S_ISREG(before.st_mode)) return Status::IO(what + ": no longer a regular file");
    // What the directory's view recorded must be what is read, or the view cannot vouch
    // for the tree next time.
    bool as_scanned = SameVersion(before, scanned);
    // Read-ahead advice pays only for files longer than one read.
    if (before.st_size > static_cast<off_t>(kReadBuffer)) ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    thread_local std::vector<uint8_t> buf(kReadBuffer);
    store::PutOptions opts;
    opts.sha1_alias = req_.sha1_alias;
    // Snapshots are kept long and read rarely: compress harder than the store's default
    // (level 1). On /usr/share + /usr/include with large text files, level 2 stores the
    // chunks 1.5% larger than level 3 did (375 vs 370 MB) for about a sixth less
    // compression CPU (~0.9 CPU-s of ~14 in a cold snapshot); level 1 is 4% larger again.
    opts.compression_level = kSnapshotZstdLevel;
    // Visible at the group's next flush (before the trees are stored), and pinned by the
    // group until the scanner is gone.
    opts.commit_group = group_;
    for (int attempt = 1;; ++attempt) {
      SILO_ASSIGN_OR_RETURN(auto writer, store_.NewWriter(opts));
      uint64_t off = 0;
      for (;;) {
        if (Interrupted()) return Status::Interrupted("snapshot interrupted; nothing was committed");
        ssize_t n = ::pread(fd.get(), buf.data(), buf.size(), static_cast<off_t>(off));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Status::FromErrno("read " + what, errno);
        if (n == 0) break;
        SILO_TRY(writer->Write({buf.data(), static_cast<size_t>(n)}).WithContext(what));
        off += static_cast<uint64_t>(n);
        bytes_read_ += static_cast<uint64_t>(n);
        if (req_.progress) req_.progress->Add(static_cast<uint64_t>(n));
        if (req_.after_read_block) req_.after_read_block(what, off);
        // At the size the stat gave, no read to see the end: a file that grew meanwhile
        // has a new size or mtime, which the stat below sees (and the file is read again).
        if (before.st_size > 0 && off == static_cast<uint64_t>(before.st_size)) break;
      }
      struct stat after {};
      if (::fstat(fd.get(), &after) != 0) return Status::FromErrno("stat " + what, errno);
      bool stable = SameVersion(before, after) && off == static_cast<uint64_t>(after.st_size);
      if (!stable && attempt < kReadAttempts) {
        before = after;
        as_scanned = false;
        continue;  // the writer is dropped: nothing of this attempt becomes visible
      }
      SILO_ASSIGN_OR_RETURN(auto info, writer->Commit().WithContext(what));
      fs::EntryFromStat(after, e);  // the metadata of what was read
      e->size = off;
      e->digest = info.digest;
      std::lock_guard lock(mu_);
      (had_entry ? stats_.files_changed : stats_.files_new)++;
      if (!as_scanned) node->cacheable = false;
      if (!stable) {
        stats_.changed_during_read++;
        node->cacheable = false;
        Warn(what + ": kept changing while being read; stored as last read");
        return Status::Ok();
      }
      // A file modified within the last second could change again without its mtime
      // moving (coarse timestamps): do not let the cache vouch for it.
      if (!Racy(after)) {
        cache_updates_.emplace_back(
            index::StatCacheKey(after.st_dev, after.st_ino),
            index::StatCacheValue{off, fs::MtimeNs(after), fs::CtimeNs(after), info.digest, req_.sha1_alias});
      } else {
        node->cacheable = false;
      }
      return Status::Ok();
    }
  }

  store::Store& store_;
  const SnapshotRequest& req_;
  ThreadPool pool_;
  WaitGroup wg_;
  std::vector<ReadJob> pending_;  // the walk's next batch for the readers
  uint64_t pending_bytes_ = 0;
  std::mutex mu_;
  std::mutex warn_mu_;
  Status fatal_;
  SnapshotStats stats_;  // the readers update it under mu_
  std::atomic<uint64_t> bytes_read_{0};
  uint64_t files_ = 0;                         // file names kept (hardlinked names count each)
  std::unique_ptr<store::ObjectPins> pins_;    // under mu_ once readers run
  std::shared_ptr<store::CommitGroup> group_;  // the files' contents; pins them while it lives
  std::map<std::pair<dev_t, ino_t>, size_t> inodes_;
  std::vector<HardlinkGroup> groups_;
  std::vector<std::pair<std::string, index::StatCacheValue>> cache_updates_;
  const std::string cache_space_;
  const std::string dir_space_;
  const bool use_dir_cache_;
  std::unordered_map<std::string, index::DirCacheValue> dir_cache_;  // as loaded
  std::vector<std::string> dir_stale_;                               // undecodable entries
  std::unordered_set<std::string> dir_kept_;                         // settled from the cache
  std::vector<std::pair<std::string, index::DirCacheValue>> dir_updates_;
  std::vector<store::Digest> reused_trees_;  // topmost trees settled from the cache
  std::vector<std::string> seen_;            // stat-cache keys of every file met (the walk's thread only)
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

  // The walk, with the directory cache; once more without it in the rare case that a
  // tree it names has been collected since.
  for (int pass = 0;; ++pass) {
    Scanner scanner(store, req, pass == 0);
    SILO_TRY(scanner.Start());
    if (pass == 0 && req.use_stat_cache) SILO_TRY(scanner.LoadDirCache().WithContext("directory cache"));
    record.sources.clear();
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
      SILO_TRY(scanner.Walk(src, fd, st, roots.back().get()));
    }
    bool stale = false;
    SILO_TRY(scanner.Settle(&stale));
    if (stale) {
      if (req.on_warning) req.on_warning("a tree the directory cache names is gone from the store; scanning again");
      continue;
    }
    bool all_settled = true;
    for (const auto& r : roots) all_settled = all_settled && r->settled;
    // The files' records and chunks are written: out to the store's files while the trees
    // are built (the close then writes little more than the trees).
    if (!all_settled) store.StartFlush();
    // Files were read: their stat-cache entries are written while the trees are stored.
    Status file_cache;
    uint64_t pruned = 0;
    std::jthread file_cache_writer;  // joined before the scanner goes
    if (!all_settled) file_cache_writer = std::jthread([&] { file_cache = scanner.WriteFileCache(&pruned); });
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
      SILO_ASSIGN_OR_RETURN(record.root, index::StoreTree(store, std::move(top), scanner.group()));
    }
    // The trees become visible before the record names them.
    SILO_TRY(scanner.group()->Flush());
    SnapshotStats stats = scanner.stats();
    stats.bytes_added = scanner.group()->bytes_added();  // contents and trees
    record.files = scanner.files();
    record.dirs = stats.dirs;
    record.bytes = stats.total_bytes;
    if (Interrupted()) return Status::Interrupted("snapshot interrupted; nothing was committed");
    // The scanner's pins keep what the record reaches until the commit makes it reachable.
    SILO_ASSIGN_OR_RETURN(auto info, index::CommitSnapshot(store, record));
    // The directory cache is written after the commit; losing it costs only a re-read
    // next time. When every directory was settled from it and none it held went unseen,
    // the files are those of the last snapshot: no stat-cache entry to prune.
    SILO_ASSIGN_OR_RETURN(size_t dirs_pruned, scanner.WriteDirCache().WithContext("directory cache"));
    if (file_cache_writer.joinable()) {
      file_cache_writer.join();
    } else if (dirs_pruned > 0) {
      file_cache = scanner.WriteFileCache(&pruned);
    }
    SILO_TRY(file_cache.WithContext("stat cache"));
    stats.cache_pruned = pruned;
    return SnapshotResult{std::move(info), stats};
  }
}

}  // namespace silo::transfer
