// The snapshot commands through the `silo` binary: snapshot, snapshots, ls, cat
// SNAPSHOT:PATH, diff, restore (--delete), tree-index, forget + gc, --config, exit codes,
// a snapshot killed mid-way, progress lines when stderr is not a terminal, and Ctrl-C.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <optional>
#include <sstream>
#include <thread>

#include "tests/integration/silo_cli.h"
#include "tests/support/process.h"
#include "tests/support/store_test.h"

namespace silo::testing {
namespace {

class SnapshotCli : public ::testing::Test {
 protected:
  CliResult Run(const std::vector<std::string>& args) { return RunSilo(store(), args); }
  std::string store() const { return tmp_ / "store"; }
  std::string Src() {
    std::string src = tmp_ / "site";
    std::filesystem::create_directories(src + "/docs/empty");
    WriteFile(src + "/index.html", "<h1>hi</h1>");
    WriteFile(src + "/docs/a b.txt", "alpha");
    WriteFile(src + "/docs/big.bin", RandomBytes(1 << 20, 3));
    std::filesystem::create_symlink("docs/a b.txt", src + "/latest");
    return src;
  }
  // "site@<id>" from a snapshot's stdout.
  static std::string Id(const CliResult& r) {
    std::string s = r.out;
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  }
  TempDir tmp_;
};

TEST_F(SnapshotCli, SnapshotInspectRestoreForget) {
  std::string src = Src();
  CliResult s1 = Run({"snapshot", src});
  ASSERT_EQ(s1.code, 0) << s1.err;
  std::string first = Id(s1);
  EXPECT_EQ(first.rfind("site@", 0), 0u) << first;
  EXPECT_NE(s1.err.find("3 new, 0 changed, 0 unchanged files"), std::string::npos) << s1.err;

  CliResult ls = Run({"ls", "-r", "site"});
  ASSERT_EQ(ls.code, 0) << ls.err;
  EXPECT_EQ(ls.out, "docs/\ndocs/a b.txt\ndocs/big.bin\ndocs/empty/\nindex.html\nlatest\n");
  CliResult ll = Run({"ls", "-l", "site:docs/a b.txt"});
  ASSERT_EQ(ll.code, 0) << ll.err;
  EXPECT_EQ(ll.out.substr(0, 6), "f0644 ") << ll.out;
  CliResult cat = Run({"cat", first + ":docs/a b.txt"});
  ASSERT_EQ(cat.code, 0) << cat.err;
  EXPECT_EQ(cat.out, "alpha");
  EXPECT_EQ(Run({"cat", "site:nope"}).code, 1);
  EXPECT_EQ(Run({"cat", "site:docs"}).code, 2);

  WriteFile(src + "/docs/a b.txt", "alpha, edited");
  std::filesystem::remove(src + "/index.html");
  WriteFile(src + "/new.txt", "new");
  CliResult s2 = Run({"snapshot", src});
  ASSERT_EQ(s2.code, 0) << s2.err;
  std::string second = Id(s2);
  CliResult diff = Run({"diff", first, "site"});
  ASSERT_EQ(diff.code, 0) << diff.err;
  EXPECT_EQ(diff.out, "M docs/a b.txt\n- index.html\n+ new.txt\n");
  EXPECT_NE(diff.err.find("1 added, 1 removed, 1 changed, 0 metadata only"), std::string::npos) << diff.err;
  CliResult list = Run({"snapshots", "site"});
  ASSERT_EQ(list.code, 0);
  EXPECT_NE(list.out.find(first), std::string::npos);
  EXPECT_NE(list.out.find(second), std::string::npos);

  // Restore the first into a dirty directory with --delete.
  std::string out = tmp_ / "out";
  std::filesystem::create_directories(out);
  WriteFile(out + "/junk", "x");
  CliResult r = Run({"restore", first, out, "--delete"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ReadFileToString(out + "/docs/a b.txt"), "alpha");
  EXPECT_FALSE(std::filesystem::exists(out + "/junk"));
  EXPECT_TRUE(std::filesystem::is_directory(out + "/docs/empty"));
  EXPECT_EQ(std::filesystem::read_symlink(out + "/latest"), "docs/a b.txt");
  // --verify: a file garbled in place with its size and mtime kept is found by content.
  {
    std::string p = out + "/docs/a b.txt";
    struct stat st {};
    ASSERT_EQ(::stat(p.c_str(), &st), 0);
    WriteFile(p, "ALPHA");
    struct timespec ts[2] = {st.st_mtim, st.st_mtim};
    ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), ts, 0), 0);
    CliResult trusting = Run({"restore", first, out});
    ASSERT_EQ(trusting.code, 0) << trusting.err;
    EXPECT_EQ(ReadFileToString(p), "ALPHA");  // size and mtime match: kept
    CliResult verified = Run({"restore", first, out, "--verify"});
    ASSERT_EQ(verified.code, 0) << verified.err;
    EXPECT_EQ(ReadFileToString(p), "alpha");
    EXPECT_NE(verified.err.find("1 files written"), std::string::npos) << verified.err;
    EXPECT_NE(verified.err.find("by content"), std::string::npos) << verified.err;
  }
  // A single path restores under its name.
  CliResult one = Run({"restore", "site:docs/a b.txt", tmp_ / "one"});
  ASSERT_EQ(one.code, 0) << one.err;
  EXPECT_EQ(ReadFileToString(tmp_ / "one/a b.txt"), "alpha, edited");

  CliResult ti = Run({"tree-index", first});
  ASSERT_EQ(ti.code, 0) << ti.err;
  EXPECT_NE(ti.out.find("F:~/docs/a b.txt;=SHA1(be76331b95dfc399cd776d2fc68021e0db03cc4f);=LEN(5)\n"),
            std::string::npos)
      << ti.out;
  EXPECT_NE(ti.out.find("D:~/docs/empty\n"), std::string::npos);

  CliResult f = Run({"forget", "site", "--keep-last", "1"});
  ASSERT_EQ(f.code, 0) << f.err;
  EXPECT_NE(f.out.find(first), std::string::npos);
  EXPECT_EQ(Run({"restore", first, tmp_ / "gone"}).code, 1);
  CliResult gc = Run({"gc", "--grace", "0"});
  ASSERT_EQ(gc.code, 0) << gc.err;
  CliResult fsck = Run({"fsck"});
  EXPECT_EQ(fsck.code, 0) << fsck.err;
  CliResult r2 = Run({"restore", "site", tmp_ / "out2"});
  ASSERT_EQ(r2.code, 0) << r2.err;
  EXPECT_EQ(ReadFileToString(tmp_ / "out2/docs/big.bin"), RandomBytes(1 << 20, 3));
}

TEST_F(SnapshotCli, ConfigAndUsageErrors) {
  std::string src = Src();
  std::string other = tmp_ / "other";
  std::filesystem::create_directories(other);
  WriteFile(other + "/o.txt", "o");
  WriteFile(other + "/.hidden", "h");
  std::string cfg = tmp_ / "dsync.json";
  WriteFile(cfg, "{ archiveType: 'tar', // dsync style\n dirs: [ {key: 'p0', path: '" + src +
                     "'}, {key: 'p1', path: '" + other + "', ignoreHidden: true}, ] }");
  CliResult s = Run({"snapshot", "--config", cfg});
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_EQ(Id(s).rfind("dsync@", 0), 0u) << s.out;
  CliResult ls = Run({"ls", "dsync:p1"});
  EXPECT_EQ(ls.out, "o.txt\n") << ls.err;
  std::string idx = tmp_ / "idx";
  std::filesystem::create_directories(idx);
  ASSERT_EQ(Run({"tree-index", "dsync", "-o", idx}).code, 0);
  EXPECT_EQ(ReadFileToString(idx + "/p1.tree"),
            "F:~/o.txt;=SHA1("
            "7a81af3e591ac713f81ea1efe93dcf36157d8376"
            ");=LEN(1)\n");

  EXPECT_EQ(Run({"snapshot"}).code, 2);
  EXPECT_EQ(Run({"snapshot", src, "--name", "bad/name"}).code, 2);
  EXPECT_EQ(Run({"snapshot", tmp_ / "missing"}).code, 1);
  EXPECT_EQ(Run({"restore", "nosuch", tmp_ / "x"}).code, 1);
  EXPECT_EQ(Run({"ls", "site@zz"}).code, 2);
  EXPECT_EQ(Run({"forget", "dsync"}).code, 2);
  for (const char* cmd :
       {"snapshot", "restore", "snapshots", "ls", "diff", "forget", "tree-index", "archive", "import"}) {
    EXPECT_EQ(Run({cmd, "--help"}).code, 0) << cmd;
  }
}

TEST_F(SnapshotCli, KilledSnapshotLeavesEarlierOnesAndACleanStore) {
  std::string src = Src();
  ASSERT_EQ(Run({"snapshot", src}).code, 0);
  for (int i = 0; i < 40; ++i) WriteFile(src + "/bulk" + std::to_string(i), RandomBytes(1 << 20, 100 + i));
  ProcessOptions o;
  o.argv = {SILO_BINARY, "--store", store(), "-q", "snapshot", src, "--threads", "1"};
  Process p(o);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ::kill(p.pid(), SIGKILL);
  p.Wait(std::chrono::seconds(30));
  // Whether the kill landed mid-way or after the commit, the first snapshot is intact and
  // the store is consistent.
  CliResult list = Run({"snapshots", "site"});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_GE(std::count(list.out.begin(), list.out.end(), '\n'), 1);
  CliResult fsck = Run({"fsck"});
  EXPECT_EQ(fsck.code, 0) << fsck.out << fsck.err;
  CliResult r = Run({"restore", "site", tmp_ / "out"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ReadFileToString(tmp_ / "out/docs/a b.txt"), "alpha");
}

// Lines of `text` that start with `prefix`.
std::vector<std::string> LinesStartingWith(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
  }
  return out;
}

TEST_F(SnapshotCli, ProgressLinesWhenStderrIsNotATerminal) {
  std::string src = Src();
  for (int i = 0; i < 4; ++i) WriteFile(src + "/bulk" + std::to_string(i), RandomBytes(3 << 20, 10 + i));
  ProcessOptions o;
  o.env = {{"SILO_PROGRESS_INTERVAL_MS", "0"}};
  o.stdout_path = tmp_ / "snap.out";
  o.stderr_path = tmp_ / "snap.err";
  o.argv = {SILO_BINARY, "--store", store(), "snapshot", src};
  Process p(o);
  ASSERT_EQ(p.Wait(std::chrono::minutes(2)), 0) << ReadFileToString(tmp_ / "snap.err");
  std::string err = ReadFileToString(tmp_ / "snap.err");
  // Plain lines (no carriage returns or escapes), counting files and bytes with a rate.
  EXPECT_EQ(err.find('\r'), std::string::npos) << err;
  EXPECT_EQ(err.find('\033'), std::string::npos) << err;
  auto lines = LinesStartingWith(err, "snapshot site: ");
  ASSERT_GE(lines.size(), 2u) << err;
  for (const auto& l : lines) {
    EXPECT_NE(l.find(" files, "), std::string::npos) << l;
    EXPECT_NE(l.find(" read, "), std::string::npos) << l;
    EXPECT_NE(l.find("/s"), std::string::npos) << l;
  }
  EXPECT_NE(lines.back().find("7 files, 13.0 MiB read"), std::string::npos) << lines.back();
  // Then the one-line summary, last.
  auto summary = LinesStartingWith(err, "snapshot site@");
  ASSERT_EQ(summary.size(), 1u) << err;
  EXPECT_NE(summary[0].find("7 new, 0 changed, 0 unchanged files"), std::string::npos) << summary[0];
  EXPECT_EQ(err.substr(err.size() - summary[0].size() - 1), summary[0] + "\n") << err;

  // restore: files done and bytes written of the snapshot's total.
  o.stderr_path = tmp_ / "restore.err";
  o.argv = {SILO_BINARY, "--store", store(), "restore", "site", tmp_ / "out"};
  Process r(o);
  ASSERT_EQ(r.Wait(std::chrono::minutes(2)), 0) << ReadFileToString(tmp_ / "restore.err");
  err = ReadFileToString(tmp_ / "restore.err");
  lines = LinesStartingWith(err, "restore: ");
  ASSERT_GE(lines.size(), 2u) << err;
  EXPECT_NE(lines.back().find(" files, "), std::string::npos) << lines.back();
  EXPECT_NE(lines.back().find("(100%) written"), std::string::npos) << lines.back();
  EXPECT_EQ(LinesStartingWith(err, "restore site@").size(), 1u) << err;

  // -q: no progress and no summary.
  CliResult quiet = Run({"-q", "snapshot", src});
  ASSERT_EQ(quiet.code, 0) << quiet.err;
  EXPECT_EQ(quiet.err, "");
}

TEST_F(SnapshotCli, InterruptedSnapshotCommitsNothingAndLeavesACleanStore) {
  std::string src = Src();
  ASSERT_EQ(Run({"snapshot", src}).code, 0);
  constexpr int kFiles = 96;
  for (int i = 0; i < kFiles; ++i) WriteFile(src + "/bulk" + std::to_string(i), RandomBytes(1 << 20, 100 + i));
  ProcessOptions o;
  o.env = {{"SILO_PROGRESS_INTERVAL_MS", "0"}};
  o.stdout_path = tmp_ / "snap.out";
  o.stderr_path = tmp_ / "snap.err";
  o.argv = {SILO_BINARY, "--store", store(), "snapshot", src, "--threads", "1"};
  Process p(o);
  // Wait until it is reading, stop it, and interrupt it only if it has not read everything.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  std::string last;
  for (;;) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no progress line";
    auto lines = LinesStartingWith(ReadFileToString(tmp_ / "snap.err"), "snapshot site: ");
    if (!lines.empty() && lines.back().find(" MiB read") != std::string::npos) break;
    ASSERT_TRUE(p.Running()) << ReadFileToString(tmp_ / "snap.err");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(::kill(p.pid(), SIGSTOP), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto lines = LinesStartingWith(ReadFileToString(tmp_ / "snap.err"), "snapshot site: ");
  ASSERT_FALSE(lines.empty());
  // "snapshot site: N files, X MiB read, ...": the bulk is 96 MiB of 97.
  const std::string& l = lines.back();
  size_t mib = l.find(" MiB read");
  ASSERT_NE(mib, std::string::npos) << l;
  double read_mib = std::stod(l.substr(l.rfind(' ', mib - 1) + 1));
  if (read_mib >= 96.0) {
    ::kill(p.pid(), SIGCONT);
    GTEST_SKIP() << "the snapshot read everything before it could be stopped: " << l;
  }
  ASSERT_EQ(::kill(p.pid(), SIGINT), 0);
  ASSERT_EQ(::kill(p.pid(), SIGCONT), 0);
  std::optional<int> code = p.Wait(std::chrono::minutes(1));
  std::string err = ReadFileToString(tmp_ / "snap.err");
  // The last progress line can lag the reading: on a busy machine the snapshot may have
  // read the rest and committed before the stop.
  if (code == 0 && err.find("interrupted") == std::string::npos) {
    GTEST_SKIP() << "the snapshot finished before it could be interrupted: " << l;
  }
  ASSERT_EQ(code, std::optional<int>(130)) << err;
  EXPECT_NE(err.find("interrupted; nothing was committed"), std::string::npos) << err;
  EXPECT_EQ(ReadFileToString(tmp_ / "snap.out"), "");

  // Only the first snapshot exists, the store is consistent, and a new snapshot works.
  CliResult list = Run({"snapshots", "site"});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_EQ(std::count(list.out.begin(), list.out.end(), '\n'), 1) << list.out;
  CliResult fsck = Run({"fsck"});
  EXPECT_EQ(fsck.code, 0) << fsck.out << fsck.err;
  CliResult again = Run({"snapshot", src});
  ASSERT_EQ(again.code, 0) << again.err;
  CliResult r = Run({"restore", "site", tmp_ / "out"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ReadFileToString(tmp_ / "out/bulk95"), RandomBytes(1 << 20, 195));
}

TEST_F(SnapshotCli, ArchiveAndImportPackages) {
  std::string src = Src();
  ASSERT_EQ(Run({"snapshot", src}).code, 0);
  std::string pkg = tmp_ / "pkg";
  std::filesystem::create_directories(pkg);
  // -o DIR: dsync's naming, NAME-FINGERPRINT.EXT, zip by default.
  CliResult z = Run({"archive", "site", "-o", pkg});
  ASSERT_EQ(z.code, 0) << z.err;
  std::string zip = z.out.substr(0, z.out.find('\n'));
  EXPECT_EQ(zip.rfind(pkg + "/site-", 0), 0u) << zip;
  EXPECT_EQ(zip.size(), pkg.size() + 6 + 40 + 4) << zip;
  EXPECT_EQ(zip.substr(zip.size() - 4), ".zip");
  EXPECT_TRUE(std::filesystem::exists(zip));
  CliResult t1 = Run({"archive", "site", "-o", pkg, "--format", "tar.zst"});
  ASSERT_EQ(t1.code, 0) << t1.err;
  std::string tzst = t1.out.substr(0, t1.out.find('\n'));
  EXPECT_EQ(tzst.substr(0, tzst.size() - 8), zip.substr(0, zip.size() - 4)) << "same tree, same fingerprint";
  // Deterministic: a second run writes the same bytes.
  std::string again = tmp_ / "again.tar.zst";
  ASSERT_EQ(Run({"archive", "site", "-o", again}).code, 0);
  EXPECT_EQ(ReadFileToString(again), ReadFileToString(tzst));
  // Back into a snapshot: nothing differs from the original.
  CliResult imp = Run({"import", tzst, "--snapshot", "back"});
  ASSERT_EQ(imp.code, 0) << imp.err;
  EXPECT_EQ(Id(imp).rfind("back@", 0), 0u) << imp.out;
  CliResult d = Run({"diff", "site", "back"});
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_EQ(d.out, "");
  ASSERT_EQ(Run({"import", zip, "--snapshot", "fromzip"}).code, 0);
  ASSERT_EQ(Run({"restore", "fromzip", tmp_ / "out"}).code, 0);
  EXPECT_EQ(ReadFileToString(tmp_ / "out/docs/big.bin"), RandomBytes(1 << 20, 3));
  EXPECT_EQ(std::filesystem::read_symlink(tmp_ / "out/latest"), "docs/a b.txt");
  EXPECT_TRUE(std::filesystem::is_directory(tmp_ / "out/docs/empty"));
  // A subtree, to a named file.
  std::string sub = tmp_ / "docs.tar.gz";
  ASSERT_EQ(Run({"archive", "site:docs", "-o", sub}).code, 0);
  std::string listing;
  ASSERT_EQ(RunCommand({"tar", "tzf", sub}, &listing), 0);
  EXPECT_EQ(listing, "a b.txt\nbig.bin\nempty/\n");

  // A hostile package, written with python's tarfile: refused, nothing committed.
  std::string evil = tmp_ / "evil.tar";
  ASSERT_EQ(RunCommand({"python3", "-c",
                        "import tarfile,io,sys\n"
                        "t=tarfile.open(sys.argv[1],'w')\n"
                        "i=tarfile.TarInfo('../../escape'); i.size=1\n"
                        "t.addfile(i, io.BytesIO(b'x')); t.close()\n",
                        evil}),
            0);
  CliResult bad = Run({"import", evil, "--snapshot", "evil"});
  EXPECT_EQ(bad.code, 1) << bad.err;
  EXPECT_NE(bad.err.find(".."), std::string::npos) << bad.err;
  EXPECT_EQ(Run({"snapshots", "evil"}).out, "");
  // Usage errors.
  EXPECT_EQ(Run({"import", zip}).code, 2);
  EXPECT_EQ(Run({"archive", "site", "-o", tmp_ / "x.rar"}).code, 2);
  EXPECT_EQ(Run({"archive", "nosuch", "-o", pkg}).code, 1);
  CliResult fsck = Run({"fsck"});
  EXPECT_EQ(fsck.code, 0) << fsck.err;
}

}  // namespace
}  // namespace silo::testing
