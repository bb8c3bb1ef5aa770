// Snapshot and restore against a real filesystem and a real store: a random tree with the
// edge cases (odd names, empty directories, symlinks, hardlinks, fifos, modes, nanosecond
// mtimes, xattrs), round trips compared field by field and by `diff -r`, incremental
// rescans, restores over changed directories, --delete, hostile trees, forget + gc.
#include "index/snapshot.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "index/stat_cache.h"
#include "index/tree.h"
#include "tests/support/process.h"
#include "tests/support/store_test.h"
#include "transfer/restore.h"
#include "transfer/snapshot.h"
#include "util/interrupt.h"

namespace silo::testing {
namespace {

using index::EntryType;

void SetMtime(const std::string& path, int64_t sec, long nsec) {
  struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << path;
}

bool XattrsSupported(const std::string& dir) {
  std::string probe = dir + "/.xattr-probe";
  WriteFile(probe, "");
  bool ok = ::setxattr(probe.c_str(), "user.probe", "1", 1, 0) == 0;
  ::unlink(probe.c_str());
  return ok;
}

// A random tree under `root`: `files` regular files across nested directories, plus the
// edge cases. Returns the relative paths of the regular files.
std::vector<std::string> MakeTree(const std::string& root, int files, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::filesystem::create_directories(root);
  std::vector<std::string> dirs{""};
  for (int i = 0; i < files / 8 + 1; ++i) {
    std::string parent = dirs[rng() % dirs.size()];
    std::string d = (parent.empty() ? "" : parent + "/") + "d" + std::to_string(i);
    std::filesystem::create_directory(root + "/" + d);
    dirs.push_back(d);
  }
  const std::vector<std::string> odd = {
      "with space", "new\nline", "\xff\xfe latin1 \xe9", "tab\there", "-dash", "back\\slash", "*star?", ".hidden"};
  std::vector<std::string> out;
  for (int i = 0; i < files; ++i) {
    std::string dir = dirs[rng() % dirs.size()];
    std::string name = i < static_cast<int>(odd.size()) ? odd[i] : "f" + std::to_string(i) + ".dat";
    std::string rel = (dir.empty() ? "" : dir + "/") + name;
    size_t size = rng() % 5 == 0 ? 0 : (rng() % 20 == 0 ? 200000 + rng() % 300000 : rng() % 5000);
    WriteFile(root + "/" + rel, RandomBytes(size, seed * 1000 + i));
    ::chmod((root + "/" + rel).c_str(), i % 3 == 0 ? 0600 : (i % 3 == 1 ? 0644 : 0755));
    SetMtime(root + "/" + rel, 1600000000 + i, static_cast<long>(i * 7919) % 1000000000);
    out.push_back(rel);
  }
  std::filesystem::create_directories(root + "/empty/nested-empty");
  ::symlink("f9.dat", (root + "/rel-link").c_str());
  ::symlink("/nonexistent/abs", (root + "/dangling-abs").c_str());
  ::symlink("../../outside", (root + "/d0/up-link").c_str());
  ::link((root + "/" + out[9]).c_str(), (root + "/hardlink-a").c_str());
  ::link((root + "/" + out[9]).c_str(), (root + "/empty/hardlink-b").c_str());
  ::mkfifo((root + "/fifo").c_str(), 0640);
  ::chmod((root + "/d0").c_str(), 0750);
  if (XattrsSupported(root)) {
    ::setxattr((root + "/" + out[10]).c_str(), "user.comment", "hello\0bin", 9, 0);
    ::setxattr((root + "/d0").c_str(), "user.dir", "d", 1, 0);
  }
  SetMtime(root + "/d0", 1500000000, 123456789);
  SetMtime(root + "/empty/nested-empty", 1500000001, 1);
  return out;
}

struct Meta {
  char type;
  mode_t mode;
  uid_t uid;
  gid_t gid;
  int64_t mtime;
  std::string content;  // file content or symlink target
  nlink_t nlink;
  std::map<std::string, std::string> xattrs;
  bool operator==(const Meta&) const = default;
};

// Everything restore promises to keep, keyed by relative path (directory mtimes included).
std::map<std::string, Meta> Describe(const std::string& root) {
  std::map<std::string, Meta> out;
  for (auto it = std::filesystem::recursive_directory_iterator(root);
       it != std::filesystem::recursive_directory_iterator(); ++it) {
    std::string p = it->path().string();
    std::string rel = p.substr(root.size() + 1);
    if (rel.rfind(".silo-tmp", 0) == 0) ADD_FAILURE() << "temporary file left: " << rel;
    struct stat st {};
    ::lstat(p.c_str(), &st);
    Meta m{};
    m.type = S_ISREG(st.st_mode) ? 'f' : S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l' : 'o';
    m.mode = st.st_mode & 07777;
    m.uid = st.st_uid;
    m.gid = st.st_gid;
    m.mtime = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    m.nlink = S_ISDIR(st.st_mode) ? 0 : st.st_nlink;
    if (m.type == 'f') m.content = ReadFileToString(p);
    if (m.type == 'l') m.content = std::filesystem::read_symlink(it->path()).string();
    if (m.type == 'l') m.mode = 0;  // symlink modes are not settable on Linux
    char names[4096];
    ssize_t n = ::llistxattr(p.c_str(), names, sizeof names);
    for (ssize_t i = 0; i < n; i += static_cast<ssize_t>(std::strlen(names + i)) + 1) {
      char v[4096];
      ssize_t vn = ::lgetxattr(p.c_str(), names + i, v, sizeof v);
      m.xattrs[names + i] = std::string(v, vn > 0 ? static_cast<size_t>(vn) : 0);
    }
    out[rel] = m;
  }
  return out;
}

void ExpectSameTree(const std::string& a, const std::string& b) {
  auto da = Describe(a), db = Describe(b);
  EXPECT_EQ(da.size(), db.size());
  for (const auto& [rel, m] : da) {
    auto it = db.find(rel);
    if (it == db.end()) {
      ADD_FAILURE() << "missing after restore: " << rel;
      continue;
    }
    EXPECT_EQ(m.type, it->second.type) << rel;
    EXPECT_EQ(m.mode, it->second.mode) << rel;
    EXPECT_EQ(m.uid, it->second.uid) << rel;
    EXPECT_EQ(m.gid, it->second.gid) << rel;
    if (m.type != 'l') {
      EXPECT_EQ(m.mtime, it->second.mtime) << rel;
    }
    EXPECT_TRUE(m.content == it->second.content) << rel;
    EXPECT_EQ(m.nlink, it->second.nlink) << rel;
    EXPECT_EQ(m.xattrs, it->second.xattrs) << rel;
  }
  std::string out;
  EXPECT_EQ(RunCommand({"diff", "-r", "--no-dereference", "--exclude=fifo", a, b}, &out), 0) << out;
}

class SnapshotTest : public StoreTest {
 protected:
  Result<transfer::SnapshotResult> Snap(const std::string& dir, const std::string& name = "t", bool sha1 = false) {
    transfer::SnapshotRequest req;
    req.name = name;
    req.sha1_alias = sha1;
    req.sources.push_back({"src", dir, false, false});
    req.on_warning = [this](const std::string& m) { warnings_.push_back(m); };
    return transfer::TakeSnapshot(*store_, req);
  }
  Result<transfer::RestoreStats> Restore(const index::SnapshotInfo& s, const std::string& dir, bool del = false,
                                         bool verify = false) {
    transfer::RestoreOptions o;
    o.delete_extra = del;
    o.verify_content = verify;
    o.on_warning = [this](const std::string& m) { warnings_.push_back(m); };
    index::TreeEntry root;
    root.type = EntryType::kDir;
    root.digest = s.record.root;
    return transfer::RestoreTree(*store_, root, dir, o);
  }
  std::vector<std::string> warnings_;
};

TEST_F(SnapshotTest, RoundTripKeepsContentAndMetadata) {
  std::string src = tmp_ / "src";
  MakeTree(src, 120, 1);
  auto snap = Snap(src);
  ASSERT_TRUE(snap.ok()) << snap.status().message();
  EXPECT_EQ(snap->stats.errors, 0u);
  EXPECT_EQ(snap->stats.specials, 1u);  // the fifo
  EXPECT_EQ(snap->snapshot.record.sources.at(0).path, src);
  auto r = Restore(snap->snapshot, tmp_ / "out");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->errors, 0u);
  EXPECT_EQ(r->hardlinks, 2u);
  ExpectSameTree(src, tmp_ / "out");
  // Equal trees, equal digests: a second snapshot of the unchanged tree has the same root.
  auto again = Snap(src);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->snapshot.record.root, snap->snapshot.record.root);
  EXPECT_EQ(again->snapshot.record.parent, snap->snapshot.digest);
  EXPECT_EQ(again->stats.bytes_added, 0u);
  // The restored copy snapshots to the same root as well (names, modes, mtimes, links).
  auto copy = Snap(tmp_ / "out", "copy");
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(copy->snapshot.record.root, snap->snapshot.record.root);
  auto fsck = store_->Check({});
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE(fsck->clean());
}

// Restore hands files to its writers in digest-sorted batches; batches of three make
// hardlinks, directories and files cross many batch edges, and the tree must come out
// the same.
TEST_F(SnapshotTest, RestoreInSmallSortedBatchesGivesTheSameTree) {
  std::string src = tmp_ / "src";
  MakeTree(src, 120, 7);
  auto snap = Snap(src);
  ASSERT_TRUE(snap.ok()) << snap.status().message();
  transfer::RestoreOptions o;
  o.sort_window_files = 3;
  index::TreeEntry root;
  root.type = EntryType::kDir;
  root.digest = snap->snapshot.record.root;
  auto r = transfer::RestoreTree(*store_, root, tmp_ / "out", o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->errors, 0u);
  EXPECT_EQ(r->hardlinks, 2u);
  ExpectSameTree(src, tmp_ / "out");
}

// A file whose stored bytes are damaged is reported and left out; written in place into a
// directory the restore made, no partial file stays behind under its name.
TEST_F(SnapshotTest, ADamagedFileIsReportedAndLeavesNoPartialFile) {
  std::string src = tmp_ / "src";
  std::filesystem::create_directories(src + "/d");
  std::string big = testing::RandomBytes(3 << 20, 21);
  WriteFile(src + "/d/big", big);
  WriteFile(src + "/d/small", "kept\n");
  auto snap = Snap(src);
  ASSERT_TRUE(snap.ok()) << snap.status().message();
  Close();
  ASSERT_TRUE(testing::CorruptStoredBytes(store_path(), std::string_view(big).substr(2 << 20, 64)));
  Reopen();
  auto r = Restore(snap->snapshot, tmp_ / "out");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->errors, 1u);
  EXPECT_EQ(ReadFileToString(tmp_ / "out/d/small"), "kept\n");
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "out/d/big"));
  ASSERT_FALSE(warnings_.empty());
  EXPECT_NE(warnings_.back().find("d/big"), std::string::npos) << warnings_.back();
}

TEST_F(SnapshotTest, RescanReadsOnlyChangedFiles) {
  std::string src = tmp_ / "src";
  auto files = MakeTree(src, 400, 2);
  // The stat cache does not vouch for files changed in the second before a scan (their
  // timestamps could still move within one clock tick), so let the tree age.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto first = Snap(src);
  ASSERT_TRUE(first.ok()) << first.status().message();
  auto second = Snap(src);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->stats.bytes_read, 0u);
  EXPECT_EQ(second->stats.files_new + second->stats.files_changed, 0u);
  EXPECT_EQ(second->stats.files_unchanged, first->stats.files_new);
  EXPECT_EQ(second->snapshot.record.root, first->snapshot.record.root);
  // Change 1% of the files (in place: same inode), plus one new file.
  uint64_t changed_bytes = 0;
  for (int i = 0; i < 4; ++i) {
    std::string p = src + "/" + files[40 + i * 50];
    std::string data = RandomBytes(3000 + i, 999 + i);
    {
      int fd = ::open(p.c_str(), O_WRONLY | O_TRUNC);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
      ::close(fd);
    }
    changed_bytes += data.size();
  }
  WriteFile(src + "/brand-new", "new file");
  auto third = Snap(src);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->stats.files_changed, 4u);
  EXPECT_EQ(third->stats.files_new, 1u);
  EXPECT_EQ(third->stats.bytes_read, changed_bytes + 8);
  EXPECT_LE(third->stats.bytes_added, changed_bytes + 8 + (64 << 10)) << "only the new content (and trees) is stored";
  EXPECT_NE(third->snapshot.record.root, first->snapshot.record.root);
  auto r = Restore(third->snapshot, tmp_ / "out");
  ASSERT_TRUE(r.ok());
  ExpectSameTree(src, tmp_ / "out");
}

// sha1: aliases are recorded on request. A snapshot asking for them reads again the files
// the caches know only from snapshots without them, then trusts the caches as before.
TEST_F(SnapshotTest, Sha1AliasesOnRequestReadCachedFilesOnce) {
  std::string src = tmp_ / "src";
  auto files = MakeTree(src, 40, 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // let the caches vouch
  const std::string content = ReadFileToString(src + "/" + files[0]);
  Sha1 h;
  h.Update(AsBytes(content));
  const store::Digest sha1 = store::Digest::Sha1(h.Final());
  auto plain = Snap(src);
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  EXPECT_FALSE(store_->Resolve(sha1).ok()) << "no alias without asking";

  auto with = Snap(src, "t", /*sha1=*/true);
  ASSERT_TRUE(with.ok()) << with.status().message();
  EXPECT_EQ(with->stats.files_unchanged, 0u);
  EXPECT_EQ(with->stats.bytes_read, plain->stats.bytes_read);
  EXPECT_EQ(with->snapshot.record.root, plain->snapshot.record.root);
  auto resolved = store_->Resolve(sha1);
  ASSERT_TRUE(resolved.ok()) << resolved.status().message();
  EXPECT_EQ(*resolved, store::Digest::Sha256(Sha256::Of(AsBytes(content))));

  // Both kinds of snapshot now find every file in the caches.
  for (bool again_sha1 : {true, false}) {
    auto again = Snap(src, "t", again_sha1);
    ASSERT_TRUE(again.ok()) << again.status().message();
    EXPECT_EQ(again->stats.bytes_read, 0u) << again_sha1;
    EXPECT_EQ(again->snapshot.record.root, plain->snapshot.record.root);
  }
}

TEST_F(SnapshotTest, RestoreWritesOnlyWhatDiffersAndDeletes) {
  std::string src = tmp_ / "src";
  auto files = MakeTree(src, 100, 3);
  auto snap = Snap(src);
  ASSERT_TRUE(snap.ok());
  std::string out = tmp_ / "out";
  ASSERT_TRUE(Restore(snap->snapshot, out).ok());
  // Damage the copy: change two files, chmod one, remove one, replace a directory by a
  // file, add extras.
  WriteFile(out + "/" + files[20], "changed content");
  WriteFile(out + "/" + files[21], RandomBytes(10, 5));
  ::chmod((out + "/" + files[22]).c_str(), 0);
  std::filesystem::remove(out + "/" + files[23]);
  std::filesystem::remove_all(out + "/empty");
  WriteFile(out + "/empty", "a file where a directory was");
  WriteFile(out + "/extra", "not in the snapshot");
  std::filesystem::create_directories(out + "/extra-dir/sub");
  auto r = Restore(snap->snapshot, out);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->files_written, 3u);  // two changed, one removed (the chmod is metadata only)
  EXPECT_EQ(r->metadata_fixed, 1u);
  EXPECT_EQ(r->deleted, 0u);
  EXPECT_TRUE(std::filesystem::exists(out + "/extra"));
  auto again = Restore(snap->snapshot, out, /*del=*/true);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->files_written, 0u);
  EXPECT_EQ(again->deleted, 2u);
  ExpectSameTree(src, out);
}

size_t CountIndex(store::Store& store, const std::string& space) {
  size_t n = 0;
  EXPECT_TRUE(store
                  .ScanIndex(space, "",
                             [&](std::string_view, std::string_view) {
                               ++n;
                               return true;
                             })
                  .ok());
  return n;
}

TEST_F(SnapshotTest, StatCacheIsPerNameAndForgetsVanishedFiles) {
  std::string src = tmp_ / "src";
  auto files = MakeTree(src, 60, 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past the racy window
  auto first = Snap(src, "a");
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->stats.cache_pruned, 0u);
  const size_t entries = CountIndex(*store_, index::StatCacheSpace("a"));
  EXPECT_EQ(entries, first->stats.files_new);  // one per inode read (hardlinks share one)
  // Remove five files (not the hardlinked one): their entries go with the next snapshot.
  for (int i = 20; i < 25; ++i) ASSERT_TRUE(std::filesystem::remove(src + "/" + files[i]));
  auto second = Snap(src, "a");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->stats.files_new + second->stats.files_changed, 0u);
  EXPECT_EQ(second->stats.cache_pruned, 5u);
  EXPECT_EQ(CountIndex(*store_, index::StatCacheSpace("a")), entries - 5);
  // Another name has a cache of its own: it reads everything once and leaves "a"'s alone.
  auto other = Snap(src, "b");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->stats.files_new, second->stats.files_unchanged);
  EXPECT_EQ(other->stats.cache_pruned, 0u);
  EXPECT_EQ(CountIndex(*store_, index::StatCacheSpace("a")), entries - 5);
  EXPECT_EQ(CountIndex(*store_, index::StatCacheSpace("b")), entries - 5);
  // An excluded directory is not met either: its files' entries are dropped.
  transfer::SnapshotRequest req;
  req.name = "a";
  req.sources.push_back({"src", src, false, false});
  req.excludes = {"d0"};
  auto excluded = transfer::TakeSnapshot(*store_, req);
  ASSERT_TRUE(excluded.ok());
  EXPECT_GT(excluded->stats.cache_pruned, 0u);
  EXPECT_EQ(CountIndex(*store_, index::StatCacheSpace("a")), entries - 5 - excluded->stats.cache_pruned);
}

TEST_F(SnapshotTest, RootDirectoryMetadataIsKeptAndRestored) {
  std::string src = tmp_ / "src";
  MakeTree(src, 20, 5);
  ASSERT_EQ(::chmod(src.c_str(), 0710), 0);
  bool xattrs = XattrsSupported(src);
  if (xattrs) {
    ASSERT_EQ(::setxattr(src.c_str(), "user.root", "top", 3, 0), 0);
  }
  SetMtime(src, 1400000000, 42);
  auto snap = Snap(src);
  ASSERT_TRUE(snap.ok()) << snap.status().message();
  const auto& rec = snap->snapshot.record;
  ASSERT_TRUE(rec.root_entry.has_value());
  EXPECT_EQ(rec.root_entry->type, EntryType::kDir);
  EXPECT_EQ(rec.root_entry->digest, rec.root);
  EXPECT_EQ(rec.root_entry->mode, 0710u);
  EXPECT_EQ(rec.root_entry->mtime_ns, 1400000000LL * 1000000000LL + 42);
  // The record as stored reads back with it.
  auto listed = index::ListSnapshots(*store_, "t");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->at(0).record.root_entry, rec.root_entry);

  transfer::RestoreOptions o;
  o.root_metadata = true;
  std::string out = tmp_ / "out";
  auto r = transfer::RestoreTree(*store_, *rec.root_entry, out, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  struct stat st {};
  ASSERT_EQ(::stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0710u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1400000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 42);
  if (xattrs) {
    char v[16] = {};
    EXPECT_EQ(::getxattr(out.c_str(), "user.root", v, sizeof v), 3);
    EXPECT_EQ(std::string(v), "top");
  }
  ExpectSameTree(src, out);
  // Several sources: the root is a tree silo made, with no recorded metadata of its own.
  transfer::SnapshotRequest req;
  req.name = "two";
  req.sources = {{"x", src, false, false}, {"y", src, false, false}};
  auto two = transfer::TakeSnapshot(*store_, req);
  ASSERT_TRUE(two.ok());
  EXPECT_FALSE(two->snapshot.record.root_entry.has_value());
}

TEST_F(SnapshotTest, RestoreVerifyComparesContent) {
  std::string src = tmp_ / "src";
  auto files = MakeTree(src, 60, 6);
  auto snap = Snap(src);
  ASSERT_TRUE(snap.ok());
  std::string out = tmp_ / "out";
  ASSERT_TRUE(Restore(snap->snapshot, out).ok());
  // Find two restored files of at least 10 bytes; garble one keeping size and mtime (what
  // a size+mtime comparison cannot see), touch the other's mtime only.
  std::vector<std::string> picked;
  for (const auto& f : files) {
    if (std::filesystem::file_size(out + "/" + f) >= 10 && std::filesystem::hard_link_count(out + "/" + f) == 1) {
      picked.push_back(f);
    }
    if (picked.size() == 2) break;
  }
  ASSERT_EQ(picked.size(), 2u);
  std::string garbled = out + "/" + picked[0];
  struct stat before {};
  ASSERT_EQ(::stat(garbled.c_str(), &before), 0);
  std::string data = ReadFileToString(garbled);
  data[3] = static_cast<char>(data[3] ^ 0x5a);
  WriteFile(garbled, data);
  SetMtime(garbled, before.st_mtim.tv_sec, before.st_mtim.tv_nsec);
  SetMtime(out + "/" + picked[1], 1234567890, 0);

  auto trusting = Restore(snap->snapshot, out);
  ASSERT_TRUE(trusting.ok());
  EXPECT_EQ(trusting->files_written, 1u);  // only the touched one: the garbled file looks unchanged
  EXPECT_NE(ReadFileToString(garbled), ReadFileToString(src + "/" + picked[0]));

  SetMtime(out + "/" + picked[1], 1234567890, 0);
  auto verified = Restore(snap->snapshot, out, false, /*verify=*/true);
  ASSERT_TRUE(verified.ok()) << verified.status().message();
  EXPECT_EQ(verified->files_written, 1u);  // the garbled file
  EXPECT_GT(verified->files_verified, 10u);
  EXPECT_EQ(verified->files_verified, verified->files_unchanged);
  EXPECT_GE(verified->metadata_fixed, 1u);  // the touched file kept, its mtime put back
  ExpectSameTree(src, out);
}

TEST_F(SnapshotTest, HostileTreesAreRefused) {
  std::string outside = tmp_ / "outside";
  std::filesystem::create_directories(outside);
  auto file = store_->Put(AsBytes(std::string("pwned")), {});
  ASSERT_TRUE(file.ok());
  for (std::string bad : {std::string(".."), std::string("../escape"), std::string("/abs"), std::string("")}) {
    index::Tree t;
    index::TreeEntry e;
    e.name = bad;
    e.digest = file->digest;
    e.size = 5;
    e.mode = 0644;
    t.entries.push_back(e);
    auto tree = index::StoreTree(*store_, t);
    ASSERT_TRUE(tree.ok());
    index::TreeEntry root;
    root.type = EntryType::kDir;
    root.digest = *tree;
    std::string target = tmp_ / "target";
    auto r = transfer::RestoreTree(*store_, root, target, {});
    EXPECT_FALSE(r.ok()) << "restored an entry named " << bad;
    EXPECT_TRUE(std::filesystem::is_empty(outside));
    EXPECT_FALSE(std::filesystem::exists(tmp_ / "escape"));
  }
  // A symlink in the target where the snapshot has a directory is replaced, not followed.
  std::string src = tmp_ / "src";
  std::filesystem::create_directories(src + "/sub");
  WriteFile(src + "/sub/x", "data");
  auto snap = Snap(src);
  ASSERT_TRUE(snap.ok());
  std::string target = tmp_ / "target2";
  std::filesystem::create_directories(target);
  ::symlink(outside.c_str(), (target + "/sub").c_str());
  auto r = Restore(snap->snapshot, target);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(std::filesystem::is_empty(outside));
  EXPECT_FALSE(std::filesystem::is_symlink(target + "/sub"));
  EXPECT_EQ(ReadFileToString(target + "/sub/x"), "data");
  // And a symlinked file is replaced, the file it pointed at untouched.
  WriteFile(outside + "/victim", "keep");
  std::filesystem::remove(target + "/sub/x");
  ::symlink((outside + "/victim").c_str(), (target + "/sub/x").c_str());
  ASSERT_TRUE(Restore(snap->snapshot, target).ok());
  EXPECT_EQ(ReadFileToString(outside + "/victim"), "keep");
  EXPECT_EQ(ReadFileToString(target + "/sub/x"), "data");
}

TEST_F(SnapshotTest, InterruptedSnapshotCommitsNothing) {
  std::string src = tmp_ / "src";
  MakeTree(src, 60, 4);
  auto first = Snap(src);
  ASSERT_TRUE(first.ok());
  WriteFile(src + "/more", RandomBytes(100000, 6));
  RequestInterrupt(SIGINT);
  auto second = Snap(src);
  RequestInterrupt(0);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kInterrupted);
  auto list = index::ListSnapshots(*store_, "t");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ(list->at(0).digest, first->snapshot.digest);
  auto fsck = store_->Check({});
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE(fsck->clean());
}

TEST_F(SnapshotTest, ForgetThenGcReclaimsAndKeptSnapshotsRestore) {
  std::string src = tmp_ / "src";
  MakeTree(src, 50, 7);
  WriteFile(src + "/big-old", RandomBytes(3 << 20, 8));
  auto old = Snap(src);
  ASSERT_TRUE(old.ok());
  std::filesystem::remove(src + "/big-old");
  WriteFile(src + "/big-new", RandomBytes(2 << 20, 9));
  auto kept = Snap(src);
  ASSERT_TRUE(kept.ok());
  ASSERT_TRUE(store_->DeleteRef(old->snapshot.ref, old->snapshot.digest).ok());
  store::GcOptions gc;
  gc.grace = std::chrono::seconds(0);
  auto report = store_->CollectGarbage(gc);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_GE(report->logical_bytes_removed, 3u << 20);
  EXPECT_TRUE(store_->Stat(old->snapshot.digest).status().IsNotFound());
  auto r = Restore(kept->snapshot, tmp_ / "out");
  ASSERT_TRUE(r.ok()) << r.status().message();
  ExpectSameTree(src, tmp_ / "out");
  auto fsck = store_->Check({});
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE(fsck->clean());
}

// A file that changes between its read and the stat after it is read again (the hook in
// the reader changes it at a chosen point, so the race is deterministic).
TEST_F(SnapshotTest, FileChangedWhileReadIsReadAgain) {
  std::string src = tmp_ / "src";
  std::filesystem::create_directories(src);
  WriteFile(src + "/grows", RandomBytes(3000, 1));
  WriteFile(src + "/steady", "steady");
  std::string more = RandomBytes(100, 2);
  bool appended = false;
  transfer::SnapshotRequest req;
  req.name = "t";
  req.sources.push_back({"src", src, false, false});
  req.on_warning = [this](const std::string& m) { warnings_.push_back(m); };
  req.after_read_block = [&](const std::string& path, uint64_t) {
    if (path != src + "/grows" || appended) return;
    appended = true;
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, more.data(), more.size()), static_cast<ssize_t>(more.size()));
    ::close(fd);
  };
  auto snap = transfer::TakeSnapshot(*store_, req);
  ASSERT_TRUE(snap.ok()) << snap.status().message();
  EXPECT_TRUE(appended);
  EXPECT_EQ(snap->stats.changed_during_read, 0u);
  EXPECT_EQ(snap->stats.files_new, 2u);
  // The first attempt read the 3000 bytes its stat promised (no read past them), but the
  // stat after it no longer matched the one before: a second attempt read all 3100.
  EXPECT_EQ(snap->stats.bytes_read, 3000u + 3100u + 6u);
  EXPECT_TRUE(warnings_.empty());
  auto r = Restore(snap->snapshot, tmp_ / "out");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(ReadFileToString(tmp_ / "out/grows"), ReadFileToString(src + "/grows"));
  EXPECT_EQ(ReadFileToString(tmp_ / "out/grows").size(), 3100u);
}

// A file that changes on every read: stored as last read, counted and warned about, and
// neither cache vouches for it, so the next snapshot reads it again.
TEST_F(SnapshotTest, FileThatKeepsChangingIsReportedAndNotCached) {
  std::string src = tmp_ / "src";
  std::filesystem::create_directories(src);
  std::string path = src + "/restless";
  std::vector<std::string> versions;
  for (int i = 0; i < 5; ++i) versions.push_back(RandomBytes(4000, 10 + i));
  WriteFile(path, versions[0]);
  SetMtime(path, 1600000000, 0);
  WriteFile(src + "/calm", "calm");
  SetMtime(src + "/calm", 1600000000, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // out of the racy window
  int reads = 0;
  transfer::SnapshotRequest req;
  req.name = "t";
  req.sources.push_back({"src", src, false, false});
  req.on_warning = [this](const std::string& m) { warnings_.push_back(m); };
  req.after_read_block = [&](const std::string& p, uint64_t) {
    if (p != path) return;
    // Same size, new content, a different mtime: only the stat after the read can tell.
    ++reads;
    WriteFile(path, versions.at(static_cast<size_t>(reads)));
    SetMtime(path, 1600000000 + reads, 0);
  };
  auto snap = transfer::TakeSnapshot(*store_, req);
  ASSERT_TRUE(snap.ok()) << snap.status().message();
  EXPECT_EQ(reads, 3);  // three attempts
  EXPECT_EQ(snap->stats.changed_during_read, 1u);
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_NE(warnings_[0].find("restless: kept changing while being read"), std::string::npos) << warnings_[0];
  auto r = Restore(snap->snapshot, tmp_ / "out");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(ReadFileToString(tmp_ / "out/restless"), versions[2]) << "stored as the last attempt read it";
  // Next time it is read again (now steadily), and only it.
  req.after_read_block = nullptr;
  auto again = transfer::TakeSnapshot(*store_, req);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->stats.files_changed + again->stats.files_new, 1u);
  EXPECT_EQ(again->stats.files_unchanged, 1u);
  EXPECT_EQ(again->stats.bytes_read, 4000u);
  auto r2 = Restore(again->snapshot, tmp_ / "out2");
  ASSERT_TRUE(r2.ok()) << r2.status().message();
  EXPECT_EQ(ReadFileToString(tmp_ / "out2/restless"), versions[3]);
}

// The caches name trees and contents that gc may have collected since: a snapshot after
// forget + gc re-reads what is gone, and one taken while gc runs never ends up naming an
// object the collection removes.
TEST_F(SnapshotTest, GcAfterForgetNeverBreaksSnapshotsTakenMeanwhile) {
  std::string src = tmp_ / "src";
  std::string other = tmp_ / "other";
  auto files = MakeTree(src, 200, 11);
  MakeTree(other, 80, 12);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto kept = Snap(other, "kept");
  ASSERT_TRUE(kept.ok()) << kept.status().message();
  auto forget = [&](const std::string& name) {
    auto list = index::ListSnapshots(*store_, name);
    ASSERT_TRUE(list.ok());
    for (const auto& s : *list) ASSERT_TRUE(store_->DeleteRef(s.ref, s.digest).ok());
  };
  auto check = [&](const index::SnapshotInfo& snap, const std::string& dir, const std::string& out) {
    auto r = Restore(snap, out);
    ASSERT_TRUE(r.ok()) << r.status().message();
    ExpectSameTree(dir, out);
    auto fsck = store_->Check({});
    ASSERT_TRUE(fsck.ok());
    EXPECT_TRUE(fsck->clean());
  };

  // Everything of "a" collected, its caches left: the next snapshot of "a" reads it all again.
  auto first = Snap(src, "a");
  ASSERT_TRUE(first.ok()) << first.status().message();
  forget("a");
  store::GcOptions now;
  now.grace = std::chrono::seconds(0);
  ASSERT_TRUE(store_->CollectGarbage(now).ok());
  ASSERT_TRUE(store_->Stat(first->snapshot.record.root).status().IsNotFound());
  warnings_.clear();
  auto reread = Snap(src, "a");
  ASSERT_TRUE(reread.ok()) << reread.status().message();
  EXPECT_EQ(reread->snapshot.record.root, first->snapshot.record.root);
  // Contents the kept snapshot shares (the empty file, at least) are still there.
  EXPECT_GT(reread->stats.files_changed, 0u);
  EXPECT_GT(reread->stats.bytes_read, 0u);
  ASSERT_FALSE(warnings_.empty());
  EXPECT_NE(warnings_[0].find("scanning again"), std::string::npos) << warnings_[0];
  check(reread->snapshot, src, tmp_ / "out0");

  // Forget, then snapshot the same tree while collections run back to back.
  for (int round = 1; round <= 3; ++round) {
    // A few files change each round, so the snapshot also writes while gc runs.
    for (int i = 0; i < 3; ++i) {
      std::string p = src + "/" + files[static_cast<size_t>(20 + round * 10 + i)];
      WriteFile(p, RandomBytes(1000 + i, 100 * round + i));
      SetMtime(p, 1700000000 + round, 0);
    }
    forget("a");
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // older than the gc grace
    std::atomic<bool> done{false};
    std::vector<std::string> gc_errors;
    std::thread collector([&] {
      store::GcOptions o;
      o.grace = std::chrono::seconds(1);
      while (!done.load()) {
        auto rep = store_->CollectGarbage(o);
        if (!rep.ok()) gc_errors.push_back(rep.status().message());
      }
    });
    auto snap = Snap(src, "a");
    done = true;
    collector.join();
    ASSERT_TRUE(snap.ok()) << snap.status().message();
    EXPECT_TRUE(gc_errors.empty()) << gc_errors.front();
    // Once committed, the snapshot holds everything it names: not even a collection with
    // no grace at all may take any of it.
    ASSERT_TRUE(store_->CollectGarbage(now).ok());
    check(snap->snapshot, src, tmp_ / ("out" + std::to_string(round)));
    check(kept->snapshot, other, tmp_ / ("kept" + std::to_string(round)));
  }
}

TEST_F(SnapshotTest, ExcludesIgnoreFilesAndHidden) {
  std::string src = tmp_ / "src";
  std::filesystem::create_directories(src + "/keep/cache");
  std::filesystem::create_directories(src + "/build");
  WriteFile(src + "/a.txt", "a");
  WriteFile(src + "/a.tmp", "t");
  WriteFile(src + "/.dot", "h");
  WriteFile(src + "/keep/cache/x", "x");
  WriteFile(src + "/keep/y.log", "y");
  WriteFile(src + "/build/out", "o");
  WriteFile(src + "/keep/.siloignore", "# comment\n*.log\n");
  transfer::SnapshotRequest req;
  req.name = "ex";
  req.sources.push_back({"src", src, true, false});
  req.excludes = {"*.tmp", "/build", "keep/cache"};
  auto snap = transfer::TakeSnapshot(*store_, req);
  ASSERT_TRUE(snap.ok()) << snap.status().message();
  auto r = Restore(snap->snapshot, tmp_ / "out");
  ASSERT_TRUE(r.ok());
  std::vector<std::string> got;
  for (auto& e : std::filesystem::recursive_directory_iterator(tmp_ / "out")) {
    got.push_back(e.path().string().substr((tmp_ / "out").size() + 1));
  }
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"a.txt", "keep"}));
}

}  // namespace
}  // namespace silo::testing
