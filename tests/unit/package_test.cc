// Packages against a real store and filesystem: snapshot -> package -> import round trips
// for every format (tar formats reproduce the snapshot's root digest exactly), byte-equal
// output for equal trees, fingerprints, and hostile packages refused with nothing committed.
#include "transfer/package.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>

#include "index/snapshot.h"
#include "tests/support/process.h"
#include "tests/support/store_test.h"
#include "transfer/restore.h"
#include "transfer/snapshot.h"

namespace silo::testing {
namespace {

using index::EntryType;
using transfer::PackageFormat;

void SetMtime(const std::string& path, int64_t sec, long nsec) {
  struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << path;
}

// A tree with the edge cases a package must carry: odd names (newline, non-UTF-8, long),
// modes, nanosecond mtimes, an empty directory, symlinks (one pointing outside), a
// hardlink pair, a fifo, an xattr, a file larger than the 1 MiB copy buffer.
void MakeTree(const std::string& root) {
  std::filesystem::create_directories(root + "/d/sub/empty");
  WriteFile(root + "/plain.txt", "plain");
  WriteFile(root + "/with space", "");
  WriteFile(root + "/new\nline", "nl");
  WriteFile(root + "/\xff\xfe latin1 \xe9", "latin1");
  WriteFile(root + "/d/" + std::string(150, 'L'), "long name");
  WriteFile(root + "/d/sub/big.bin", RandomBytes(3 << 20, 7));
  WriteFile(root + "/d/x.sh", "#!/bin/sh\n");
  ::chmod((root + "/d/x.sh").c_str(), 0750);
  ::chmod((root + "/plain.txt").c_str(), 0600);
  ::symlink("plain.txt", (root + "/rel-link").c_str());
  ::symlink("../../../outside", (root + "/d/sub/up-link").c_str());
  ::link((root + "/d/x.sh").c_str(), (root + "/hard-b").c_str());
  ::mkfifo((root + "/fifo").c_str(), 0640);
  WriteFile(root + "/.probe", "");
  if (::setxattr((root + "/.probe").c_str(), "user.probe", "1", 1, 0) == 0) {
    ::setxattr((root + "/plain.txt").c_str(), "user.comment", "hi\0there", 8, 0);
  }
  ::unlink((root + "/.probe").c_str());
  int i = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(root);
       it != std::filesystem::recursive_directory_iterator(); ++it) {
    SetMtime(it->path().string(), 1600000000 + i, 1000 * i + 7);
    ++i;
  }
  SetMtime(root + "/d", 1500000000, 123456789);
}

class PackageTest : public StoreTest {
 protected:
  index::SnapshotInfo Snap(const std::string& dir) {
    transfer::SnapshotRequest req;
    req.name = "src";
    req.sources.push_back({"src", dir, false, false});
    auto r = transfer::TakeSnapshot(*store_, req);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? r->snapshot : index::SnapshotInfo{};
  }
  static index::TreeEntry RootOf(const index::SnapshotInfo& s) {
    index::TreeEntry root;
    root.type = EntryType::kDir;
    root.digest = s.record.root;
    return root;
  }
  Result<transfer::PackageStats> Write(const index::SnapshotInfo& s, const std::string& out, PackageFormat f) {
    transfer::PackageOptions o;
    o.format = f;
    o.on_warning = [this](const std::string& m) { warnings_.push_back(m); };
    return transfer::WritePackage(*store_, RootOf(s), out, o);
  }
  Result<transfer::ImportResult> Import(const std::string& path, const std::string& name = "imp") {
    transfer::ImportRequest req;
    req.name = name;
    req.path = path;
    req.on_warning = [this](const std::string& m) { warnings_.push_back(m); };
    return transfer::ImportPackage(*store_, req);
  }
  std::vector<std::string> warnings_;
};

TEST_F(PackageTest, TarFormatsRoundTripToTheSameRootDigest) {
  std::string src = tmp_ / "src";
  MakeTree(src);
  auto snap = Snap(src);
  for (PackageFormat f : {PackageFormat::kTar, PackageFormat::kTarGz, PackageFormat::kTarZst}) {
    std::string ext(transfer::PackageExtension(f));
    std::string a = tmp_ / ("a." + ext), b = tmp_ / ("b." + ext);
    auto wa = Write(snap, a, f);
    ASSERT_TRUE(wa.ok()) << ext << ": " << wa.status().message();
    EXPECT_EQ(wa->hardlinks, 1u) << ext;
    EXPECT_EQ(wa->specials, 1u) << ext;
    EXPECT_EQ(wa->skipped, 0u) << ext;
    // Deterministic: the same tree gives the same bytes.
    ASSERT_TRUE(Write(snap, b, f).ok());
    EXPECT_EQ(ReadFileToString(a), ReadFileToString(b)) << ext << " output differs between two runs";
    // Everything a tree keeps survives: the imported snapshot has the very same root.
    auto imp = Import(a, "imp-" + std::string(ext == "tar" ? "tar" : ext == "tar.gz" ? "tgz" : "tzst"));
    ASSERT_TRUE(imp.ok()) << ext << ": " << imp.status().message();
    EXPECT_EQ(imp->snapshot.record.root, snap.record.root) << ext;
    EXPECT_EQ(imp->stats.hardlinks, 1u) << ext;
    EXPECT_EQ(imp->snapshot.record.files, snap.record.files) << ext;
    EXPECT_EQ(imp->snapshot.record.bytes, snap.record.bytes) << ext;
  }
  EXPECT_TRUE(warnings_.empty()) << warnings_.front();
  auto fsck = store_->Check({});
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE(fsck->clean());
}

TEST_F(PackageTest, ZipKeepsContentModesAndLinks) {
  std::string src = tmp_ / "src";
  MakeTree(src);
  auto snap = Snap(src);
  std::string a = tmp_ / "a.zip", b = tmp_ / "b.zip";
  auto w = Write(snap, a, PackageFormat::kZip);
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(w->skipped, 1u);  // the fifo
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_NE(warnings_[0].find("fifo"), std::string::npos) << warnings_[0];
  ASSERT_TRUE(Write(snap, b, PackageFormat::kZip).ok());
  EXPECT_EQ(ReadFileToString(a), ReadFileToString(b)) << "zip output differs between two runs";
  // unzip (another reader) agrees on the listing.
  std::string listing;
  ASSERT_EQ(RunCommand({"unzip", "-Z1", a}, &listing), 0) << listing;
  EXPECT_NE(listing.find("d/sub/empty/\n"), std::string::npos) << listing;
  EXPECT_NE(listing.find("d/sub/big.bin\n"), std::string::npos) << listing;

  auto imp = Import(a);
  ASSERT_TRUE(imp.ok()) << imp.status().message();
  std::string out = tmp_ / "out";
  transfer::RestoreOptions ro;
  auto r = transfer::RestoreTree(*store_, RootOf(imp->snapshot), out, ro);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->errors, 0u);
  std::string diff;
  EXPECT_EQ(RunCommand({"diff", "-r", "--no-dereference", "--exclude=fifo", src, out}, &diff), 0) << diff;
  struct stat st {};
  ASSERT_EQ(::stat((out + "/d/x.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  struct stat orig {};
  ASSERT_EQ(::stat((src + "/d/x.sh").c_str(), &orig), 0);
  EXPECT_EQ(st.st_mtime, orig.st_mtime);  // seconds kept (zip has no nanoseconds)
  ASSERT_EQ(::lstat((out + "/d/sub/up-link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(std::filesystem::read_symlink(out + "/d/sub/up-link"), "../../../outside");
}

TEST_F(PackageTest, SubtreeAndSingleFile) {
  std::string src = tmp_ / "src";
  MakeTree(src);
  auto snap = Snap(src);
  auto sub = index::WalkPath(*store_, snap.record.root, "d/sub");
  ASSERT_TRUE(sub.ok());
  std::string p = tmp_ / "sub.tar";
  transfer::PackageOptions o;
  o.format = PackageFormat::kTar;
  ASSERT_TRUE(transfer::WritePackage(*store_, *sub, p, o).ok());
  auto imp = Import(p);
  ASSERT_TRUE(imp.ok()) << imp.status().message();
  EXPECT_EQ(imp->snapshot.record.root, sub->digest);  // the subtree's contents at the root

  auto file = index::WalkPath(*store_, snap.record.root, "d/sub/big.bin");
  ASSERT_TRUE(file.ok());
  file->name = "big.bin";
  std::string q = tmp_ / "file.tar.zst";
  o.format = PackageFormat::kTarZst;
  ASSERT_TRUE(transfer::WritePackage(*store_, *file, q, o).ok());
  auto one = Import(q);
  ASSERT_TRUE(one.ok()) << one.status().message();
  auto got = index::WalkPath(*store_, one->snapshot.record.root, "big.bin");
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->digest, file->digest);
  EXPECT_EQ(got->size, 3u << 20);
}

TEST_F(PackageTest, FailedWriteLeavesNoFile) {
  std::string src = tmp_ / "src";
  std::filesystem::create_directories(src);
  WriteFile(src + "/f", "x");
  auto snap = Snap(src);
  // A tree naming content the store lacks: the write fails and nothing is left behind.
  index::Tree t;
  index::TreeEntry e;
  e.name = "ghost";
  e.type = EntryType::kFile;
  e.size = 5;
  e.digest = store::Digest::Sha256(Sha256::Of(AsBytes("not stored")));
  t.entries.push_back(e);
  auto root = index::StoreTree(*store_, t);
  ASSERT_TRUE(root.ok());
  index::TreeEntry r;
  r.type = EntryType::kDir;
  r.digest = *root;
  std::string out = tmp_ / "out";
  std::filesystem::create_directories(out);
  transfer::PackageOptions o;
  o.format = PackageFormat::kTar;
  auto w = transfer::WritePackage(*store_, r, out + "/x.tar", o);
  EXPECT_FALSE(w.ok());
  EXPECT_TRUE(std::filesystem::is_empty(out)) << "a failed write left a file";
}

TEST(PackageNames, FormatsAndFingerprints) {
  EXPECT_EQ(*transfer::PackageFormatOfPath("x/site.tar.gz"), PackageFormat::kTarGz);
  EXPECT_EQ(*transfer::PackageFormatOfPath("site.tgz"), PackageFormat::kTarGz);
  EXPECT_EQ(*transfer::PackageFormatOfPath("site.tar.zst"), PackageFormat::kTarZst);
  EXPECT_EQ(*transfer::PackageFormatOfPath("site.tar"), PackageFormat::kTar);
  EXPECT_EQ(*transfer::PackageFormatOfPath("site.zip"), PackageFormat::kZip);
  EXPECT_FALSE(transfer::PackageFormatOfPath("site.rar").ok());
  EXPECT_FALSE(transfer::PackageFormatOfPath(".zip").ok());
  EXPECT_FALSE(transfer::ParsePackageFormat("7z").ok());
  store::Digest a = store::Digest::Sha256(Sha256::Of(AsBytes("a")));
  store::Digest b = store::Digest::Sha256(Sha256::Of(AsBytes("b")));
  std::vector<store::Digest> ab{a, b}, ba{b, a}, ab2{a, b};
  std::string f = transfer::PackageFingerprint(ab);
  EXPECT_EQ(f.size(), 40u);
  EXPECT_EQ(f, transfer::PackageFingerprint(ab2));
  EXPECT_NE(f, transfer::PackageFingerprint(ba));
  // sha1("sha256:<hex of sha256("a")>\n"), computed independently with sha1sum.
  std::vector<store::Digest> only_a{a};
  std::string out;
  ASSERT_EQ(RunCommand({"sh", "-c", "printf '%s\\n' '" + a.ToString() + "' | sha1sum | cut -c1-40"}, &out), 0);
  EXPECT_EQ(transfer::PackageFingerprint(only_a) + "\n", out);
}

// ------------------------------------------------------------- hostile packages

struct WriteFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

struct RawEntry {
  std::string path;
  mode_t type = AE_IFREG;
  std::string data;      // file content
  std::string link;      // symlink target
  std::string hardlink;  // hardlink target
};
RawEntry File(std::string path, std::string data) {
  return {std::move(path), AE_IFREG, std::move(data), "", ""};
}
RawEntry Dir(std::string path) {
  return {std::move(path), AE_IFDIR, "", "", ""};
}
RawEntry Symlink(std::string path, std::string target) {
  return {std::move(path), AE_IFLNK, "", std::move(target), ""};
}
RawEntry Hardlink(std::string path, std::string target) {
  return {std::move(path), AE_IFREG, "", "", std::move(target)};
}

void WriteRawTar(const std::string& path, const std::vector<RawEntry>& entries) {
  std::unique_ptr<archive, WriteFree> a(archive_write_new());
  archive_write_set_format_pax(a.get());
  ASSERT_EQ(archive_write_open_filename(a.get(), path.c_str()), ARCHIVE_OK);
  for (const auto& r : entries) {
    std::unique_ptr<archive_entry, EntryFree> e(archive_entry_new());
    archive_entry_copy_pathname(e.get(), r.path.c_str());
    archive_entry_set_filetype(e.get(), r.type);
    archive_entry_set_perm(e.get(), 0644);
    if (!r.link.empty()) archive_entry_copy_symlink(e.get(), r.link.c_str());
    if (!r.hardlink.empty()) archive_entry_copy_hardlink(e.get(), r.hardlink.c_str());
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(r.data.size()));
    ASSERT_GE(archive_write_header(a.get(), e.get()), ARCHIVE_WARN) << archive_error_string(a.get());
    if (!r.data.empty()) archive_write_data(a.get(), r.data.data(), r.data.size());
  }
  ASSERT_EQ(archive_write_close(a.get()), ARCHIVE_OK);
}

TEST_F(PackageTest, HostilePackagesAreRefusedAndNothingIsCommitted) {
  const std::vector<std::vector<RawEntry>> hostile = {
      {File("ok.txt", "fine"), File("../evil", "x")},
      {File("/etc/passwd", "x")},
      {File("a/../../evil", "x")},
      {File("a/b/../../../evil", "x")},
      // A path through a symlink entry (extracting would write outside).
      {Symlink("link", "/tmp"), File("link/evil", "x")},
      // A path through a file.
      {File("file", "x"), File("file/evil", "x")},
      // Hardlinks to nothing, to outside, and to a directory.
      {Hardlink("h", "missing")},
      {Hardlink("h", "../outside")},
      {Dir("dir"), Hardlink("h", "dir")},
  };
  for (size_t i = 0; i < hostile.size(); ++i) {
    std::string p = tmp_ / ("hostile" + std::to_string(i) + ".tar");
    WriteRawTar(p, hostile[i]);
    auto r = Import(p, "hostile");
    EXPECT_FALSE(r.ok()) << "package " << i << " (" << hostile[i].back().path << ") was accepted";
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Code::kCorruption) << r.status().message();
    }
  }
  auto list = index::ListSnapshots(*store_, "hostile");
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty()) << "a refused package left a snapshot";

  // Odd but harmless paths are accepted and normalised; an escaping symlink target is data.
  std::string p = tmp_ / "odd.tar";
  WriteRawTar(p, {Dir("./"), File("./a//b/./c.txt", "c"), Symlink("up", "../../../../etc/passwd"), Dir("a"),
                  Hardlink("hl", "./a/b/c.txt"), File("dup", "first"), File("dup", "second")});
  auto ok = Import(p, "odd");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  auto c = index::WalkPath(*store_, ok->snapshot.record.root, "a/b/c.txt");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->hardlink_group, 1u);
  auto hl = index::WalkPath(*store_, ok->snapshot.record.root, "hl");
  ASSERT_TRUE(hl.ok());
  EXPECT_EQ(hl->digest, c->digest);
  EXPECT_EQ(hl->hardlink_group, 1u);
  auto up = index::WalkPath(*store_, ok->snapshot.record.root, "up");
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->target, "../../../../etc/passwd");
  auto dup = index::WalkPath(*store_, ok->snapshot.record.root, "dup");
  ASSERT_TRUE(dup.ok());
  auto content = store_->ReadAll(dup->digest, 100);
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(*content, "second");
  EXPECT_EQ(ok->stats.replaced, 1u);
}

TEST_F(PackageTest, NotAnArchiveIsAnError) {
  std::string p = tmp_ / "junk.tar";
  WriteFile(p, RandomBytes(5000, 3));
  auto r = Import(p);
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(Import(tmp_ / "missing.tar").ok());
  auto list = index::ListSnapshots(*store_, "imp");
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

}  // namespace
}  // namespace silo::testing
