// The `silo` command line against real stores in per-test directories.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tests/integration/silo_cli.h"
#include "tests/support/process.h"
#include "tests/support/store_test.h"
#include "util/hash.h"

namespace silo::testing {
namespace {

std::string Sha256Of(std::string_view data) {
  return "sha256:" + ToHex(Sha256::Of(AsBytes(data)));
}

class Cli : public ::testing::Test {
 protected:
  CliResult Run(const std::vector<std::string>& args, const std::string& stdin_path = "") {
    return RunSilo(store(), args, stdin_path);
  }
  std::string store() const { return tmp_ / "store"; }
  std::string File(const std::string& name, std::string_view data) {
    std::string p = tmp_ / name;
    WriteFile(p, data);
    return p;
  }
  // Puts a file and returns its digest (fails the test otherwise).
  std::string Put(const std::string& path, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"put", path};
    args.insert(args.end(), extra.begin(), extra.end());
    CliResult r = Run(args);
    EXPECT_EQ(r.code, 0) << r.err;
    std::string out = r.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }
  TempDir tmp_;
};

TEST_F(Cli, VersionHelpAndUsageErrors) {
  CliResult v = Run({"--version"});
  EXPECT_EQ(v.code, 0);
  EXPECT_NE(v.out.find("silo "), std::string::npos);
  for (const char* cmd : {"put", "cat", "stat", "ref", "gc", "fsck", "du"}) {
    CliResult h = Run({cmd, "--help"});
    EXPECT_EQ(h.code, 0) << cmd;
    EXPECT_NE(h.out.find("--help"), std::string::npos) << cmd;
  }
  EXPECT_EQ(Run({"ref", "set", "--help"}).code, 0);
  EXPECT_EQ(Run({}).code, 2);
  EXPECT_EQ(Run({"frobnicate"}).code, 2);
  EXPECT_EQ(Run({"cat", "not-a-digest"}).code, 2);
  EXPECT_EQ(Run({"put", "--expect-size", "lots", "x"}).code, 2);
}

TEST_F(Cli, PutCatStatRoundTrip) {
  const std::string empty, one = "x", big = RandomBytes(5 << 20, 1);
  for (const std::string* data : {&empty, &one, &big}) {
    std::string path = File("f" + std::to_string(data->size()), *data);
    std::string digest = Put(path);
    EXPECT_EQ(digest, Sha256Of(*data));
    CliResult c = Run({"cat", digest});
    ASSERT_EQ(c.code, 0) << c.err;
    EXPECT_TRUE(c.out == *data) << "size " << data->size();
    CliResult s = Run({"stat", "--json", digest});
    ASSERT_EQ(s.code, 0) << s.err;
    EXPECT_NE(s.out.find("\"size\":" + std::to_string(data->size())), std::string::npos) << s.out;
  }
  // stdin, and a second put of the same content stores nothing new.
  CliResult in = Run({"put", "-"}, tmp_ / "f5242880");
  ASSERT_EQ(in.code, 0) << in.err;
  EXPECT_EQ(in.out, Sha256Of(big) + "\n");
  EXPECT_NE(in.err.find("0 B newly stored, 1 already present"), std::string::npos) << in.err;
}

TEST_F(Cli, RangesAtTheEdges) {
  std::string data = RandomBytes(3 << 20, 2);
  std::string digest = Put(File("f", data));
  auto range = [&](const std::string& r) { return Run({"cat", "--range", r, digest}); };
  EXPECT_EQ(range("0-0").out, data.substr(0, 1));
  EXPECT_EQ(range("0-").out, data);
  EXPECT_EQ(range("-1").out, data.substr(data.size() - 1));
  EXPECT_EQ(range(std::to_string(data.size() - 1) + "-").out, data.substr(data.size() - 1));
  EXPECT_EQ(range("1048575-1048577").out, data.substr(1048575, 3));
  EXPECT_EQ(range("100-" + std::to_string(data.size() + 100)).out, data.substr(100));  // clipped
  CliResult past = range(std::to_string(data.size()) + "-");
  EXPECT_NE(past.code, 0);
  EXPECT_NE(past.err.find("past the end"), std::string::npos) << past.err;
  EXPECT_EQ(range("9-3").code, 2);
}

TEST_F(Cli, WrongExpectationsAreRefusedAndNothingIsVisible) {
  std::string data = RandomBytes(1 << 20, 3);
  std::string path = File("f", data);
  std::string wrong = Sha256Of("other");
  CliResult r = Run({"put", "--expect", wrong, path});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("expected " + wrong), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
  EXPECT_EQ(Run({"stat", Sha256Of(data)}).code, 1);
  CliResult s = Run({"put", "--expect-size", "1000", path});
  EXPECT_EQ(s.code, 1);
  EXPECT_EQ(Run({"stat", Sha256Of(data)}).code, 1);
  EXPECT_EQ(Put(path, {"--expect", Sha256Of(data), "--expect-size", std::to_string(data.size())}), Sha256Of(data));
}

TEST_F(Cli, ManyFilesAndDigestsFromLists) {
  std::string list, expected_cat, digests;
  for (int i = 0; i < 20; ++i) {
    std::string data = RandomBytes(static_cast<size_t>(i) * 997, static_cast<uint64_t>(i) + 10);
    list += File("s" + std::to_string(i), data) + "\n";
    expected_cat += data;
    digests += Sha256Of(data) + "\n";
  }
  std::string list_path = File("list", "# files\n\n" + list);
  CliResult r = Run({"put", "--files-from", list_path});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(Sha256Of(RandomBytes(997, 11)) + "  " + (tmp_ / "s1")), std::string::npos) << r.out;
  CliResult c = Run({"cat", "--digests-from", File("digests", digests)});
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_TRUE(c.out == expected_cat);
  // One missing file fails that item only.
  CliResult partial = Run({"put", tmp_ / "s1", tmp_ / "nope"});
  EXPECT_EQ(partial.code, 1);
  EXPECT_NE(partial.err.find(tmp_ / "nope"), std::string::npos);
}

TEST_F(Cli, RefsSetGetListRemove) {
  std::string a = Put(File("a", "a")), b = Put(File("b", "b"));
  EXPECT_EQ(Run({"ref", "set", "image/r/app:1", a}).code, 0);
  EXPECT_EQ(Run({"ref", "set", "image/r/app:2", b}).code, 0);
  EXPECT_EQ(Run({"ref", "get", "image/r/app:1"}).out, a + "\n");
  EXPECT_EQ(Run({"ref", "ls", "image/r/"}).out, a + " image/r/app:1\n" + b + " image/r/app:2\n");
  EXPECT_NE(Run({"ref", "ls", "--json"}).out.find("\"name\":\"image/r/app:2\""), std::string::npos);
  CliResult conflict = Run({"ref", "set", "--create-only", "image/r/app:1", b});
  EXPECT_EQ(conflict.code, 1);
  EXPECT_NE(conflict.err.find("changed concurrently"), std::string::npos) << conflict.err;
  EXPECT_EQ(Run({"ref", "set", "--expect", a, "image/r/app:1", b}).code, 0);
  EXPECT_EQ(Run({"ref", "rm", "image/r/app:1"}).code, 0);
  EXPECT_EQ(Run({"ref", "get", "image/r/app:1"}).code, 1);
  EXPECT_EQ(Run({"ref", "set", "no-namespace", a}).code, 2);
  EXPECT_EQ(Run({"ref", "set", "image/x", Sha256Of("absent")}).code, 1);
}

TEST_F(Cli, GcAfterRefRmReclaimsAndKeepsReferencedObjects) {
  std::string keep = RandomBytes(6 << 20, 4), drop = RandomBytes(6 << 20, 5);
  std::string a = Put(File("keep", keep), {"--ref", "image/r/keep:1"});
  std::string b = Put(File("drop", drop), {"--ref", "image/r/drop:1"});
  ASSERT_EQ(Run({"ref", "rm", "image/r/drop:1"}).code, 0);
  CliResult dry = Run({"gc", "--dry-run", "--grace", "0"});
  EXPECT_NE(dry.out.find("would remove 1 object(s)"), std::string::npos) << dry.out;
  CliResult gc = Run({"gc", "--grace", "0"});
  ASSERT_EQ(gc.code, 0) << gc.err;
  EXPECT_NE(gc.out.find("removed 1 object(s)"), std::string::npos) << gc.out;
  EXPECT_TRUE(Run({"cat", a}).out == keep);
  EXPECT_EQ(Run({"cat", b}).code, 1);
  CliResult du = Run({"du", "--json"});
  EXPECT_NE(du.out.find("\"objects\":1,"), std::string::npos) << du.out;
  EXPECT_EQ(Run({"fsck"}).code, 0);
}

TEST_F(Cli, CorruptChunkFailsCatAndFsckReportsIt) {
  std::string data = RandomBytes(1 << 20, 6);
  std::string digest = Put(File("f", data));
  ASSERT_TRUE(CorruptStoredBytes(store(), data.substr(500000, 64)));
  CliResult c = Run({"cat", digest});
  EXPECT_EQ(c.code, 1);
  EXPECT_NE(c.err.find(digest), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("checksum"), std::string::npos) << c.err;
  CliResult f = Run({"fsck"});
  EXPECT_EQ(f.code, 1);
  EXPECT_NE(f.out.find("damaged: object " + digest), std::string::npos) << f.out;
  EXPECT_EQ(Run({"fsck", "--repair"}).code, 1);
  EXPECT_EQ(Run({"fsck"}).code, 0);
  EXPECT_EQ(Put(tmp_ / "f"), digest);  // fetched again, whole
  EXPECT_TRUE(Run({"cat", digest}).out == data);
}

TEST_F(Cli, StoreErrorsAreClear) {
  CliResult none = RunSilo(tmp_ / "nothing", {"cat", Sha256Of("x")});
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.err.find("no store here"), std::string::npos) << none.err;
  std::filesystem::create_directories(tmp_ / "other");
  File("other/file.txt", "x");
  CliResult other = RunSilo(tmp_ / "other", {"put", tmp_ / "other/file.txt"});
  EXPECT_EQ(other.code, 2);
  EXPECT_NE(other.err.find("not a silo store"), std::string::npos) << other.err;
  CliResult bad = RunSilo("/proc/silo-no/store", {"put", tmp_ / "other/file.txt"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("/proc/silo-no/store"), std::string::npos) << bad.err;
}

TEST_F(Cli, ASecondWriterGetsAClearErrorAndReadersStillWork) {
  std::string digest = Put(File("a", "already here"));
  std::string fifo = tmp_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int w = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC);  // holds the write end; does not block
  ASSERT_GE(w, 0);
  ProcessOptions o;
  o.argv = {"sh", "-c", "exec \"$0\" --store \"$1\" put - < \"$2\"", SILO_BINARY, store(), fifo};
  o.stdout_path = tmp_ / "holder.out";
  o.stderr_path = tmp_ / "holder.err";
  Process holder(o);
  // Wait until the holder has the store open: its LOCK file shows among its descriptors.
  auto holds_lock = [&] {
    std::error_code ec;
    for (const auto& fd : std::filesystem::directory_iterator("/proc/" + std::to_string(holder.pid()) + "/fd", ec)) {
      std::error_code ec2;
      if (std::filesystem::read_symlink(fd.path(), ec2).string() == store() + "/LOCK") return true;
    }
    return false;
  };
  for (int i = 0; i < 200 && !holds_lock(); ++i) ::usleep(25000);
  ASSERT_TRUE(holds_lock()) << ReadFileToString(tmp_ / "holder.err");
  CliResult second = Run({"put", tmp_ / "a"});
  EXPECT_EQ(second.code, 2);
  EXPECT_NE(second.err.find("in use by another silo process"), std::string::npos) << second.err;
  EXPECT_EQ(second.err.find("Resource temporarily unavailable"), std::string::npos) << second.err;
  CliResult reader = Run({"cat", digest});
  EXPECT_EQ(reader.code, 0) << reader.err;
  EXPECT_EQ(reader.out, "already here");
  ASSERT_EQ(::write(w, "streamed", 8), 8);
  ::close(w);
  EXPECT_EQ(holder.Wait(std::chrono::seconds(30)), 0);
  EXPECT_EQ(ReadFileToString(tmp_ / "holder.out"), Sha256Of("streamed") + "\n");
}

}  // namespace
}  // namespace silo::testing
