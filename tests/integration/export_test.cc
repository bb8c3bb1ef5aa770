// `silo export`, `silo import` (images) and `silo batch-export` against the real CNCF
// registry, skopeo and umoci on 127.0.0.1. Images come from tests/support/imagegen.py:
// set one and set two (its "next day") pushed into one registry and pulled into a store.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "tests/integration/silo_cli.h"
#include "tests/support/imagegen.h"
#include "tests/support/process.h"
#include "tests/support/registry.h"
#include "tests/support/store_test.h"
#include "util/hash.h"

namespace silo::testing {
namespace {

namespace fs = std::filesystem;

std::string FileSha256(const std::string& path) {
  return ToHex(Sha256::Of(AsBytes(ReadFileToString(path))));
}

// The blob digests a tar archive holds ("sha256:<hex>" for each blobs/sha256/<hex>).
std::set<std::string> ArchiveBlobs(const std::string& path) {
  std::string out;
  EXPECT_EQ(RunCommand({"tar", "-tf", path}, &out), 0) << out;
  std::set<std::string> blobs;
  for (const auto& line : Lines(out)) {
    if (line.starts_with("blobs/sha256/") && line.size() == 13 + 64) blobs.insert("sha256:" + line.substr(13));
  }
  return blobs;
}

// Every blob digest (manifests included) of an imagegen --summary file.
std::set<std::string> SummaryBlobs(const std::string& path) {
  std::string text = ReadFileToString(path);
  std::set<std::string> out;
  std::regex re("\"(sha256:[0-9a-f]{64})\": ");
  for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) out.insert((*it)[1]);
  return out;
}

class ExportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_tmp_ = new TempDir();
    registry_ = new Registry(*suite_tmp_ / "registry");
    registry_->Start();
    set1_ = new std::vector<std::string>(
        PushImageSet(registry_->host_port(), *suite_tmp_ / "gen", {"--summary", *suite_tmp_ / "set1.json"}));
    set2_ = new std::vector<std::string>(PushImageSet(registry_->host_port(), *suite_tmp_ / "gen",
                                                      {"--set", "2", "--summary", *suite_tmp_ / "set2.json"}));
    // One store holding both sets, pulled once for every test.
    std::string list;
    for (const auto& r : *set1_) list += r + "\n";
    for (const auto& r : *set2_) list += r + "\n";
    WriteFile(*suite_tmp_ / "all.txt", list);
    CliResult r = RunSilo(*suite_tmp_ / "store", {"pull", "--plain-http", registry_->host_port(), "--failed-file",
                                                  *suite_tmp_ / "failed.txt", "-f", *suite_tmp_ / "all.txt"});
    if (r.code != 0) throw std::runtime_error("pull failed: " + r.err);
  }
  static void TearDownTestSuite() {
    delete registry_;
    delete set1_;
    delete set2_;
    delete suite_tmp_;
  }

  static std::string Store() { return *suite_tmp_ / "store"; }
  CliResult Silo(const std::vector<std::string>& args) { return RunSilo(Store(), args); }
  CliResult Other(const std::vector<std::string>& args, const std::string& name = "other") {
    return RunSilo(tmp_ / name, args);
  }
  // `silo images --json` lines for the given references, as "reference digest".
  static std::set<std::string> ImageDigests(const std::string& store, const std::vector<std::string>& refs) {
    std::set<std::string> out;
    for (const auto& ref : refs) {
      CliResult r = RunSilo(store, {"ref", "get", "image/" + ref});
      out.insert(ref + " " + (r.code == 0 ? Trim(r.out) : "absent"));
    }
    return out;
  }
  std::string ListFile(const std::vector<std::string>& refs, const std::string& name) {
    std::string text;
    for (const auto& r : refs) text += r + "\n";
    WriteFile(tmp_ / name, text);
    return tmp_ / name;
  }

  static TempDir* suite_tmp_;
  static Registry* registry_;
  static std::vector<std::string>* set1_;
  static std::vector<std::string>* set2_;
  TempDir tmp_;
};
TempDir* ExportTest::suite_tmp_ = nullptr;
Registry* ExportTest::registry_ = nullptr;
std::vector<std::string>* ExportTest::set1_ = nullptr;
std::vector<std::string>* ExportTest::set2_ = nullptr;

TEST_F(ExportTest, ArchiveRoundTripIntoASecondStoreKeepsEveryDigest) {
  for (std::string ext : {".tar", ".tar.gz", ".tar.zst"}) {
    std::string out = tmp_ / ("set1" + ext);
    CliResult e = Silo({"export", "-f", ListFile(*set1_, "set1.txt"), "-o", out});
    ASSERT_EQ(e.code, 0) << e.err;
    std::string store = "store" + ext;
    CliResult i = Other({"import", out}, store);
    ASSERT_EQ(i.code, 0) << i.err;
    EXPECT_EQ(ImageDigests(tmp_ / store, *set1_), ImageDigests(Store(), *set1_)) << ext;
    EXPECT_EQ(Other({"fsck"}, store).code, 0);
    // Importing again is harmless and stores nothing.
    CliResult again = Other({"import", out}, store);
    ASSERT_EQ(again.code, 0) << again.err;
    EXPECT_NE(again.err.find(" 0 blobs stored"), std::string::npos) << again.err;
  }
  // `silo images` agrees on both sides (digests, sizes, platforms).
  CliResult a = Silo({"images", "--json", registry_->host_port() + "/library/"});
  CliResult b = Other({"images", "--json", registry_->host_port() + "/library/"}, "store.tar.zst");
  EXPECT_EQ(a.out, b.out);
}

TEST_F(ExportTest, SkopeoAndUmociReadOurArchivesAndLayouts) {
  const std::string ref = (*set1_)[0];  // a multi-arch index
  std::string tar = tmp_ / "one.tar";
  ASSERT_EQ(Silo({"export", ref, "-o", tar}).code, 0);
  std::string raw;
  ASSERT_EQ(RunCommand({"skopeo", "inspect", "--raw", "oci-archive:" + tar + ":" + ref}, &raw), 0) << raw;
  EXPECT_EQ("sha256:" + ToHex(Sha256::Of(AsBytes(raw))), Trim(Silo({"ref", "get", "image/" + ref}).out));
  std::string zst = tmp_ / "one.tar.zst";
  ASSERT_EQ(Silo({"export", ref, "-o", zst}).code, 0);
  std::string out;
  EXPECT_EQ(RunCommand({"skopeo", "inspect", "--raw", "oci-archive:" + zst + ":" + ref}, &out), 0) << out;

  // A layout directory: skopeo copies out of it, umoci lists and unpacks it.
  std::string layout = tmp_ / "layout";
  CliResult e = Silo({"export", "-f", ListFile(*set1_, "l.txt"), "-o", layout});
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_TRUE(fs::exists(fs::path(layout) / "oci-layout"));
  std::string app = (*set1_)[7];  // single-arch (umoci unpacks one manifest)
  EXPECT_EQ(RunCommand({"skopeo", "copy", "oci:" + layout + ":" + app, "dir:" + std::string(tmp_ / "dir")}, &out), 0)
      << out;
  EXPECT_TRUE(fs::exists(tmp_ / "dir/manifest.json"));
  EXPECT_EQ(RunCommand({"umoci", "ls", "--layout", layout}, &out), 0) << out;
  for (const auto& r : *set1_) EXPECT_NE(out.find(r), std::string::npos) << r << "\n" << out;
  EXPECT_EQ(RunCommand({"umoci", "unpack", "--rootless", "--image", layout + ":" + app, tmp_ / "bundle"}, &out), 0)
      << out;
  EXPECT_TRUE(fs::exists(tmp_ / "bundle/rootfs"));

  // Re-exporting writes only what is missing and keeps index.json whole (merged).
  CliResult again = Silo({"export", "-f", ListFile(*set2_, "l2.txt"), "-o", layout});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("already there"), std::string::npos);
  EXPECT_EQ(RunCommand({"umoci", "ls", "--layout", layout}, &out), 0) << out;
  for (const auto& r : *set1_) EXPECT_NE(out.find(r), std::string::npos) << r;
  for (const auto& r : *set2_) EXPECT_NE(out.find(r), std::string::npos) << r;
  // The layout imports back.
  CliResult imp = Other({"import", layout});
  ASSERT_EQ(imp.code, 0) << imp.err;
  EXPECT_EQ(ImageDigests(tmp_ / "other", *set2_), ImageDigests(Store(), *set2_));
}

TEST_F(ExportTest, ConcurrentExportsIntoOneLayoutKeepEveryImage) {
  std::string layout = tmp_ / "shared";
  // Two stores (one process owns a store), exporting into one layout at once.
  ASSERT_EQ(Silo({"export", (*set1_)[0], "-o", tmp_ / "a.tar"}).code, 0);
  ASSERT_EQ(Other({"import", tmp_ / "a.tar"}, "s1").code, 0);
  Process::Options o1, o2;
  o1.argv = {SILO_BINARY, "--store", Store(), "-q", "export", "-f", ListFile(*set2_, "x.txt"), "-o", layout};
  o2.argv = {SILO_BINARY, "--store", tmp_ / "s1", "-q", "export", (*set1_)[0], "-o", layout};
  Process p1(o1), p2(o2);
  EXPECT_EQ(p1.Wait(std::chrono::minutes(3)), 0);
  EXPECT_EQ(p2.Wait(std::chrono::minutes(3)), 0);
  std::string out;
  ASSERT_EQ(RunCommand({"umoci", "ls", "--layout", layout}, &out), 0) << out;
  for (const auto& r : *set2_) EXPECT_NE(out.find(r), std::string::npos) << r;
}

TEST_F(ExportTest, ArchivesAreDeterministic) {
  for (std::string ext : {".tar", ".tar.gz", ".tar.zst"}) {
    std::string a = tmp_ / ("a" + ext), b = tmp_ / ("b" + ext);
    ASSERT_EQ(Silo({"export", "-f", ListFile(*set1_, "d.txt"), "-o", a}).code, 0);
    // A different order and duplicates name the same content.
    std::vector<std::string> rev(set1_->rbegin(), set1_->rend());
    rev.push_back((*set1_)[0]);
    ASSERT_EQ(Silo({"export", "-f", ListFile(rev, "r.txt"), "-o", b}).code, 0);
    EXPECT_EQ(FileSha256(a), FileSha256(b)) << ext;
  }
  std::string out;
  ASSERT_EQ(RunCommand({"tar", "-tvf", tmp_ / "a.tar"}, &out), 0);
  auto lines = Lines(out);
  ASSERT_GE(lines.size(), 5u);
  EXPECT_NE(lines[0].find("oci-layout"), std::string::npos) << out;
  EXPECT_NE(lines[1].find("silo-export.json"), std::string::npos) << out;
  EXPECT_NE(lines[2].find("index.json"), std::string::npos) << out;
  EXPECT_NE(lines[0].find("0/0"), std::string::npos) << out;
  EXPECT_NE(lines[0].find("1970-01-01"), std::string::npos) << out;
}

TEST_F(ExportTest, IncrementalUnderATrackerCarriesOnlyNewBlobs) {
  std::string s1 = tmp_ / "set1.tar", s2 = tmp_ / "set2.tar";
  ASSERT_EQ(Silo({"export", "-f", ListFile(*set1_, "1.txt"), "-o", s1, "--tracker", "airgap-t1"}).code, 0);
  CliResult e2 = Silo({"export", "-f", ListFile(*set2_, "2.txt"), "-o", s2, "--tracker", "airgap-t1"});
  ASSERT_EQ(e2.code, 0) << e2.err;
  auto b1 = SummaryBlobs(*suite_tmp_ / "set1.json"), b2 = SummaryBlobs(*suite_tmp_ / "set2.json");
  auto in2 = ArchiveBlobs(s2);
  // Every blob set two adds is in the archive...
  for (const auto& d : b2) {
    if (!b1.count(d)) {
      EXPECT_TRUE(in2.count(d)) << d << " (new in set two) is missing";
    }
  }
  // ...and what it repeats from set one are manifests only (the chain names every blob).
  size_t repeated = 0;
  for (const auto& d : in2) {
    ASSERT_TRUE(b2.count(d)) << d;
    if (!b1.count(d)) continue;
    ++repeated;
    CliResult cat = Silo({"cat", d});
    EXPECT_NE(cat.out.find("\"schemaVersion\""), std::string::npos) << d << " repeated but not a manifest";
  }
  EXPECT_GT(repeated, 0u);
  EXPECT_LT(in2.size(), b2.size());
  std::string record;
  ASSERT_EQ(RunCommand({"tar", "-xOf", s2, "silo-export.json"}, &record), 0);
  EXPECT_NE(record.find("\"name\":\"set1.tar\""), std::string::npos) << record;
  EXPECT_NE(record.find("\"archive\":\"set1.tar\""), std::string::npos);

  // Into an empty store: refused, naming the missing blobs and the archive carrying them;
  // nothing visible.
  CliResult refused = Other({"import", s2});
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("not in the store"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("(in set1.tar)"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("import first: set1.tar"), std::string::npos) << refused.err;
  EXPECT_EQ(Trim(Other({"ref", "ls", "image/"}).out), "");
  // In order: both sets whole, same digests.
  CliResult ok = Other({"import", s1, s2});
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(ImageDigests(tmp_ / "other", *set2_), ImageDigests(Store(), *set2_));
  EXPECT_EQ(ImageDigests(tmp_ / "other", *set1_), ImageDigests(Store(), *set1_));
  EXPECT_EQ(Other({"fsck"}).code, 0);

  // --since ARCHIVE gives the same archive as the tracker did.
  std::string s2b = tmp_ / "set2b.tar";
  ASSERT_EQ(Silo({"export", "-f", tmp_ / "2.txt", "-o", s2b, "--since", s1}).code, 0);
  EXPECT_EQ(ArchiveBlobs(s2b), in2);
  // The tracker survives gc.
  ASSERT_EQ(Silo({"gc", "--grace", "0s"}).code, 0);
  std::string s2c = tmp_ / "set2c.tar";
  ASSERT_EQ(Silo({"export", "-f", tmp_ / "2.txt", "-o", s2c, "--since", "airgap-t1"}).code, 0);
  EXPECT_LE(ArchiveBlobs(s2c).size(), in2.size());
}

// The blobs a tar archive holds with their sizes (from `tar -tvf`).
std::map<std::string, uint64_t> ArchiveBlobSizes(const std::string& path) {
  std::string out;
  EXPECT_EQ(RunCommand({"tar", "-tvf", path}, &out), 0) << out;
  std::map<std::string, uint64_t> blobs;
  std::regex re(R"(^\S+\s+\S+\s+(\d+)\s+.*\sblobs/sha256/([0-9a-f]{64})$)");
  for (const auto& line : Lines(out)) {
    std::smatch m;
    if (std::regex_match(line, m, re)) blobs["sha256:" + m[2].str()] = std::stoull(m[1]);
  }
  return blobs;
}

TEST_F(ExportTest, TrackersAreListedAndRemoved) {
  std::string a = tmp_ / "a.tar", b = tmp_ / "b.tar";
  ASSERT_EQ(Silo({"export", "-f", ListFile(*set1_, "1.txt"), "-o", a, "--tracker", "tl-1"}).code, 0);
  CliResult one = Silo({"tracker", "ls", "tl-1", "--json"});
  ASSERT_EQ(one.code, 0) << one.err;
  auto in_a = ArchiveBlobs(a);
  auto sizes = ArchiveBlobSizes(a);
  ASSERT_EQ(sizes.size(), in_a.size());
  uint64_t bytes_a = 0;
  for (const auto& [d, n] : sizes) bytes_a += n;
  EXPECT_NE(one.out.find("\"name\":\"tl-1\",\"exports\":1,\"blobs\":" + std::to_string(in_a.size()) +
                         ",\"bytes\":" + std::to_string(bytes_a) + ",\"last\":{\"archive\":\"a.tar\""),
            std::string::npos)
      << one.out;
  ASSERT_EQ(Silo({"export", "-f", ListFile(*set2_, "2.txt"), "-o", b, "--tracker", "tl-1"}).code, 0);
  auto in_b = ArchiveBlobs(b);
  std::set<std::string> both = in_a;
  both.insert(in_b.begin(), in_b.end());
  // Blobs b repeats (its manifests) were first carried by a: counted once, under a.
  uint64_t bytes_both = bytes_a;
  for (const auto& [d, n] : ArchiveBlobSizes(b)) {
    if (!in_a.count(d)) bytes_both += n;
  }
  CliResult two = Silo({"tracker", "ls", "tl-1", "--json"});
  ASSERT_EQ(two.code, 0) << two.err;
  EXPECT_NE(two.out.find("\"exports\":2,\"blobs\":" + std::to_string(both.size()) +
                         ",\"bytes\":" + std::to_string(bytes_both) + ","),
            std::string::npos)
      << two.out;
  EXPECT_NE(two.out.find("\"last\":{\"archive\":\"b.tar\""), std::string::npos) << two.out;
  // The plain listing names every tracker with its counts and last archive.
  CliResult all = Silo({"tracker", "ls"});
  ASSERT_EQ(all.code, 0) << all.err;
  std::regex line("(^|\n)tl-1  2 exports  " + std::to_string(both.size()) + " blobs  .*  last .* UTC  b\\.tar\n");
  EXPECT_TRUE(std::regex_search(all.out, line)) << all.out;
  CliResult detail = Silo({"tracker", "ls", "tl-1"});
  EXPECT_NE(detail.out.find("  a.tar  " + std::to_string(in_a.size()) + " new blobs"), std::string::npos) << detail.out;

  // rm forgets it: the next export under the name carries every blob again.
  CliResult rm = Silo({"tracker", "rm", "tl-1"});
  ASSERT_EQ(rm.code, 0) << rm.err;
  CliResult gone = Silo({"tracker", "ls", "tl-1"});
  EXPECT_EQ(gone.code, 1);
  EXPECT_NE(gone.err.find("no tracker named 'tl-1'"), std::string::npos) << gone.err;
  EXPECT_EQ(Silo({"tracker", "ls"}).out.find("tl-1 "), std::string::npos);
  CliResult again = Silo({"tracker", "rm", "tl-1"});
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.err.find("no tracker named 'tl-1'"), std::string::npos) << again.err;
  std::string c = tmp_ / "c.tar";
  ASSERT_EQ(Silo({"export", "-f", tmp_ / "2.txt", "-o", c, "--tracker", "tl-1"}).code, 0);
  auto in_c = ArchiveBlobs(c);
  for (const auto& d : SummaryBlobs(*suite_tmp_ / "set2.json")) EXPECT_TRUE(in_c.count(d)) << d;
  CliResult fresh = Silo({"tracker", "ls", "tl-1", "--json"});
  EXPECT_NE(fresh.out.find("\"exports\":1,"), std::string::npos) << fresh.out;
  // Bad names are usage errors.
  EXPECT_EQ(Silo({"tracker", "rm", "bad/name"}).code, 2);
  EXPECT_EQ(Silo({"tracker", "ls", ".."}).code, 2);
}

// The blob digests of an OCI layout directory.
std::set<std::string> LayoutBlobs(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& f : fs::directory_iterator(fs::path(dir) / "blobs" / "sha256")) {
    out.insert("sha256:" + f.path().filename().string());
  }
  return out;
}

TEST_F(ExportTest, IncrementalLayoutsCarryOnlyNewBlobsAndNameWhatTheyNeed) {
  std::string l1 = tmp_ / "l1", l2 = tmp_ / "l2";
  ASSERT_EQ(Silo({"export", "-f", ListFile(*set1_, "1.txt"), "-o", l1, "--tracker", "lt"}).code, 0);
  CliResult e2 = Silo({"export", "-f", ListFile(*set2_, "2.txt"), "-o", l2, "--tracker", "lt"});
  ASSERT_EQ(e2.code, 0) << e2.err;
  EXPECT_NE(e2.err.find("left out, carried by 1 earlier archive"), std::string::npos) << e2.err;
  auto b1 = SummaryBlobs(*suite_tmp_ / "set1.json"), b2 = SummaryBlobs(*suite_tmp_ / "set2.json");
  auto in2 = LayoutBlobs(l2);
  for (const auto& d : b2) {
    if (!b1.count(d)) {
      EXPECT_TRUE(in2.count(d)) << d << " (new in set two) is missing";
    }
  }
  for (const auto& d : in2) {
    ASSERT_TRUE(b2.count(d)) << d;
    if (!b1.count(d)) continue;
    CliResult cat = Silo({"cat", d});
    EXPECT_NE(cat.out.find("\"schemaVersion\""), std::string::npos) << d << " repeated but not a manifest";
  }
  EXPECT_LT(in2.size(), b2.size());
  // The layout records what it needs, like an archive's silo-export.json.
  std::string record = ReadFileToString(fs::path(l2) / "silo-export.json");
  EXPECT_NE(record.find("\"tracker\": \"lt\""), std::string::npos) << record;
  EXPECT_NE(record.find("{\"name\":\"l1\",\"sha256\":\"" + FileSha256(fs::path(l1) / "silo-export.json") + "\"}"),
            std::string::npos)
      << record;
  EXPECT_NE(record.find("\"archive\":\"l1\""), std::string::npos);
  // --since LAYOUT gives the same layout as the tracker did.
  std::string l3 = tmp_ / "l3";
  ASSERT_EQ(Silo({"export", "-f", tmp_ / "2.txt", "-o", l3, "--since", l1}).code, 0);
  EXPECT_EQ(LayoutBlobs(l3), in2);
  CliResult listed = Silo({"tracker", "ls", "lt", "--json"});
  EXPECT_NE(listed.out.find("\"exports\":2,"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("\"last\":{\"archive\":\"l2\""), std::string::npos) << listed.out;

  // An incremental export into a directory that already holds a layout, and --split for a
  // layout, are refused clearly.
  CliResult into = Silo({"export", "-f", tmp_ / "2.txt", "-o", l2, "--tracker", "lt"});
  EXPECT_EQ(into.code, 2);
  EXPECT_NE(into.err.find("needs a new directory"), std::string::npos) << into.err;
  CliResult split = Silo({"export", "-f", tmp_ / "2.txt", "-o", tmp_ / "l4", "--split", "1M"});
  EXPECT_EQ(split.code, 2);
  EXPECT_NE(split.err.find("--split needs an archive"), std::string::npos) << split.err;
  EXPECT_FALSE(fs::exists(tmp_ / "l4"));

  // Into an empty store: refused with the missing blobs and the layout carrying them.
  CliResult refused = Other({"import", l2});
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("not in the store"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("(in l1)"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("import first: l1"), std::string::npos) << refused.err;
  EXPECT_EQ(Trim(Other({"ref", "ls", "image/"}).out), "");
  // In order: both sets whole, same digests.
  CliResult ok = Other({"import", l1, l2});
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(ImageDigests(tmp_ / "other", *set2_), ImageDigests(Store(), *set2_));
  EXPECT_EQ(ImageDigests(tmp_ / "other", *set1_), ImageDigests(Store(), *set1_));
  EXPECT_EQ(Other({"fsck"}).code, 0);
  // An archive export can follow a layout under the same tracker.
  std::string a3 = tmp_ / "again.tar";
  ASSERT_EQ(Silo({"export", "-f", tmp_ / "2.txt", "-o", a3, "--tracker", "lt"}).code, 0);
  std::string rec3;
  ASSERT_EQ(RunCommand({"tar", "-xOf", a3, "silo-export.json"}, &rec3), 0);
  EXPECT_NE(rec3.find("\"archive\":\"l2\""), std::string::npos) << rec3;
}

TEST_F(ExportTest, SplitPartsRejoinAndBadPartsAreRefusedByName) {
  std::string out = tmp_ / "split.tar.zst";
  CliResult e = Silo({"export", "-f", ListFile(*set1_, "s.txt"), "-o", out, "--split", "256K"});
  ASSERT_EQ(e.code, 0) << e.err;
  ASSERT_TRUE(fs::exists(out + ".000"));
  ASSERT_TRUE(fs::exists(out + ".001"));
  ASSERT_TRUE(fs::exists(out + ".sha256"));
  std::string check;
  EXPECT_EQ(RunCommand({"sh", "-c", "cd " + tmp_.path() + " && sha256sum -c split.tar.zst.sha256"}, &check), 0)
      << check;
  CliResult ok = Other({"import", out + ".000"}, "joined");
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(ImageDigests(tmp_ / "joined", *set1_), ImageDigests(Store(), *set1_));

  // Truncated part.
  fs::copy_file(out + ".001", tmp_ / "saved.001");
  fs::resize_file(out + ".001", fs::file_size(out + ".001") - 100);
  CliResult t = Other({"import", out + ".000"}, "truncated");
  EXPECT_EQ(t.code, 1);
  EXPECT_NE(t.err.find("part " + out + ".001"), std::string::npos) << t.err;
  EXPECT_EQ(Trim(Other({"ref", "ls", "image/"}, "truncated").out), "");
  fs::copy_file(tmp_ / "saved.001", out + ".001", fs::copy_options::overwrite_existing);
  // Corrupted part (a flipped byte).
  {
    std::fstream f(out + ".002", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1000);
    f.put('\x5a');
  }
  CliResult c = Other({"import", out + ".000"}, "corrupt");
  EXPECT_EQ(c.code, 1);
  EXPECT_NE(c.err.find("part " + out + ".002"), std::string::npos) << c.err;
  EXPECT_EQ(Trim(Other({"ref", "ls", "image/"}, "corrupt").out), "");
  // Reordered parts (two of the same size swapped).
  ASSERT_EQ(Silo({"export", "-f", tmp_ / "s.txt", "-o", out, "--split", "256K"}).code, 0);
  fs::rename(out + ".000", tmp_ / "swap");
  fs::rename(out + ".001", out + ".000");
  fs::rename(tmp_ / "swap", out + ".001");
  CliResult r = Other({"import", out + ".000"}, "reordered");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("part " + out + ".000"), std::string::npos) << r.err;
  EXPECT_EQ(Trim(Other({"ref", "ls", "image/"}, "reordered").out), "");
  // A missing part.
  fs::remove(out + ".001");
  CliResult m = Other({"import", out + ".000"}, "missing");
  EXPECT_NE(m.code, 0);
  EXPECT_NE(m.err.find(out + ".001"), std::string::npos) << m.err;
}

TEST_F(ExportTest, BatchExportReproducesTheTwoStepExample) {
  const std::string reg = registry_->host_port();
  std::string sync = tmp_ / "sync", csv = tmp_ / "batch.csv";
  WriteFile(csv, "name, artifact\ntools, " + reg + "/apps/python-app:1.0\n");
  CliResult first = Silo({"batch-export", csv, sync});
  ASSERT_EQ(first.code, 0) << first.err;
  ASSERT_TRUE(fs::exists(fs::path(sync) / "000001-tools.tar"));
  // The next version under the same name: only it is serialized, without the shared blobs.
  std::ofstream(csv, std::ios::app) << "tools," << reg << "/apps/python-app:1.1\n";
  CliResult second = Silo({"batch-export", csv, sync});
  ASSERT_EQ(second.code, 0) << second.err;
  ASSERT_TRUE(fs::exists(fs::path(sync) / "000002-tools.tar"));
  EXPECT_FALSE(fs::exists(fs::path(sync) / "000003-tools.tar"));
  auto size1 = fs::file_size(fs::path(sync) / "000001-tools.tar");
  auto size2 = fs::file_size(fs::path(sync) / "000002-tools.tar");
  EXPECT_LT(size2 * 2, size1) << size1 << " vs " << size2;
  auto d10 = Trim(Silo({"ref", "get", "image/" + reg + "/apps/python-app:1.0"}).out);
  auto d11 = Trim(Silo({"ref", "get", "image/" + reg + "/apps/python-app:1.1"}).out);
  EXPECT_EQ(ReadFileToString(fs::path(sync) / "record-keeping.csv"),
            "sync_name,artifact,digest\n000001-tools.tar," + reg + "/apps/python-app:1.0," + d10 +
                "\n000002-tools.tar," + reg + "/apps/python-app:1.1," + d11 + "\n");
  // Running it again serializes nothing.
  CliResult third = Silo({"batch-export", csv, sync, "--compression", "zstd"});
  ASSERT_EQ(third.code, 0) << third.err;
  EXPECT_FALSE(fs::exists(fs::path(sync) / "000003-tools.tar.zst"));
  // The air-gapped side imports the sync dir in order.
  CliResult imp = Other({"import", sync});
  ASSERT_EQ(imp.code, 0) << imp.err;
  EXPECT_EQ(Trim(Other({"ref", "get", "image/" + reg + "/apps/python-app:1.1"}).out), d11);
  EXPECT_EQ(Other({"fsck"}).code, 0);
  // Bad CSV: named with its line.
  WriteFile(csv, "name,artifact\nbad/name,x\n");
  CliResult bad = Silo({"batch-export", csv, sync});
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("line 2"), std::string::npos) << bad.err;
}

TEST_F(ExportTest, DockerArchiveHoldsOnePlatformPerImage) {
  std::string out = tmp_ / "docker.tar";
  CliResult e = Silo({"export", "--format", "docker-archive", (*set1_)[0], (*set1_)[5], "-o", out});
  ASSERT_EQ(e.code, 0) << e.err;
  std::string manifest;
  ASSERT_EQ(RunCommand({"tar", "-xOf", out, "manifest.json"}, &manifest), 0);
  EXPECT_NE(manifest.find("\"RepoTags\":[\"" + (*set1_)[0] + "\"]"), std::string::npos) << manifest;
  // skopeo's docker-archive reader takes it (what podman load uses).
  std::string raw;
  EXPECT_EQ(RunCommand({"skopeo", "inspect", "docker-archive:" + out + ":" + (*set1_)[5]}, &raw), 0) << raw;
  EXPECT_EQ(RunCommand({"skopeo", "copy", "docker-archive:" + out + ":" + (*set1_)[5],
                        "oci:" + std::string(tmp_ / "fromdocker") + ":x"},
                       &raw),
            0)
      << raw;
  // podman load reads it (its own storage under the test's directory).
  std::string loaded;
  EXPECT_EQ(RunCommand({"podman", "--root", tmp_ / "podman-root", "--runroot", tmp_ / "podman-run", "--storage-driver",
                        "vfs", "load", "-i", out},
                       &loaded),
            0)
      << loaded;
  EXPECT_NE(loaded.find("Loaded image: " + (*set1_)[5]), std::string::npos) << loaded;
  // A platform the image lacks is a clear error.
  CliResult bad = Silo({"export", "--format", "docker-archive", "--platform", "linux/s390x", (*set1_)[0], "-o", out});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("linux/s390x"), std::string::npos) << bad.err;
}

// The sha256 digests in `text` after `key` up to the next ']' (a JSON list of digests).
std::vector<std::string> DigestList(const std::string& text, const std::string& key) {
  std::vector<std::string> out;
  size_t at = text.find(key);
  if (at == std::string::npos) return out;
  std::string list = text.substr(at, text.find(']', at) - at);
  std::regex re("sha256:[0-9a-f]{64}");
  for (std::sregex_iterator it(list.begin(), list.end(), re), end; it != end; ++it) out.push_back(it->str());
  return out;
}

// skopeo's view of an image in a registry: its config bytes and its layer digests.
std::pair<std::string, std::vector<std::string>> SkopeoConfigAndLayers(const std::string& ref) {
  std::string config, inspect;
  EXPECT_EQ(RunCommand({"skopeo", "inspect", "--tls-verify=false", "--config", "--raw", "docker://" + ref}, &config), 0)
      << config;
  EXPECT_EQ(RunCommand({"skopeo", "inspect", "--tls-verify=false", "docker://" + ref}, &inspect), 0) << inspect;
  return {config, DigestList(inspect, "\"Layers\"")};
}

TEST_F(ExportTest, DockerSaveArchivesImportWithTheirTags) {
  const std::string ref = (*set1_)[5];
  const std::string path = ref.substr(ref.find('/') + 1);  // repository:tag without the registry
  Registry dest(tmp_ / "dest");
  dest.Start();
  auto [config, layers] = SkopeoConfigAndLayers(ref);
  ASSERT_FALSE(config.empty());
  const auto diff_ids = DigestList(config, "\"diff_ids\"");
  ASSERT_EQ(diff_ids.size(), layers.size());

  // Our docker-archive without its OCI files is what older docker save wrote: manifest.json
  // and blobs; the manifest is rebuilt over the same config and layer blobs.
  std::string ours = tmp_ / "ours.tar";
  ASSERT_EQ(Silo({"export", "--format", "docker-archive", ref, "-o", ours}).code, 0);
  std::string out;
  ASSERT_EQ(RunCommand({"tar", "--delete", "-f", ours, "oci-layout", "index.json", "silo-export.json"}, &out), 0)
      << out;
  CliResult imp = Other({"import", ours}, "from-ours");
  ASSERT_EQ(imp.code, 0) << imp.err;
  EXPECT_NE(imp.out.find(" " + ref + "\n"), std::string::npos) << imp.out;
  const std::string digest = imp.out.substr(0, imp.out.find(' '));
  CliResult raw = Other({"cat", digest}, "from-ours");
  EXPECT_NE(raw.out.find("\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\""), std::string::npos)
      << raw.out;
  // Importing it again gives the same manifest.
  CliResult again = Other({"import", ours}, "from-ours");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out, imp.out);
  CliResult push = Other({"push", "--plain-http", dest.host_port(), ref, dest.host_port() + "/ours"}, "from-ours");
  ASSERT_EQ(push.code, 0) << push.err;
  auto [config1, layers1] = SkopeoConfigAndLayers(dest.host_port() + "/ours/" + path);
  EXPECT_EQ(config1, config);
  EXPECT_EQ(layers1, layers);
  EXPECT_EQ(Other({"fsck"}, "from-ours").code, 0);

  // A manifest.json naming a file the archive lacks is refused, naming it; no ref appears.
  std::string cut = tmp_ / "cut.tar";
  fs::copy_file(ours, cut);
  ASSERT_EQ(RunCommand({"tar", "--delete", "-f", cut, "blobs/sha256/" + layers.back().substr(7)}, &out), 0) << out;
  CliResult bad = Other({"import", cut}, "cut");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("which the archive does not hold"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find(layers.back().substr(7)), std::string::npos) << bad.err;
  EXPECT_EQ(Trim(Other({"ref", "ls", "image/"}, "cut").out), "");

  // podman save --format docker-archive: <hex>.tar layers, uncompressed, so the rebuilt
  // manifest's layer digests are the config's diff_ids.
  if (RunCommand({"podman", "--version"}, &out) != 0) GTEST_SKIP() << "podman cannot run here: " << out;
  std::vector<std::string> podman = {
      "podman", "--root", tmp_ / "podman-root", "--runroot", tmp_ / "podman-run", "--storage-driver", "vfs"};
  auto run_podman = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = podman;
    argv.insert(argv.end(), args.begin(), args.end());
    std::string text;
    int rc = RunCommand(argv, &text);
    EXPECT_EQ(rc, 0) << text;
    return rc;
  };
  ASSERT_EQ(run_podman({"pull", "--tls-verify=false", "docker://" + ref}), 0);
  std::string saved = tmp_ / "podman.tar";
  ASSERT_EQ(run_podman({"save", "--format", "docker-archive", "-o", saved, ref}), 0);
  CliResult pimp = Other({"import", saved}, "from-podman");
  ASSERT_EQ(pimp.code, 0) << pimp.err;
  EXPECT_NE(pimp.out.find(" " + ref + "\n"), std::string::npos) << pimp.out;
  CliResult ppush = Other({"push", "--plain-http", dest.host_port(), ref, dest.host_port() + "/podman"}, "from-podman");
  ASSERT_EQ(ppush.code, 0) << ppush.err;
  auto [config2, layers2] = SkopeoConfigAndLayers(dest.host_port() + "/podman/" + path);
  EXPECT_EQ(config2, config);
  EXPECT_EQ(layers2, diff_ids);
  EXPECT_EQ(Other({"fsck"}, "from-podman").code, 0);
  // And podman loads what silo pushed.
  ASSERT_EQ(run_podman({"pull", "--tls-verify=false", "docker://" + dest.host_port() + "/podman/" + path}), 0);
}

TEST_F(ExportTest, BadInputsAreRefusedClearly) {
  EXPECT_EQ(Silo({"export", "nosuch.example/x:1", "-o", tmp_ / "x.tar"}).code, 1);
  EXPECT_EQ(Silo({"export", (*set1_)[0], "-o", tmp_ / "x.zip"}).code, 2);
  EXPECT_EQ(Silo({"export", (*set1_)[0], "-o", tmp_ / "x.tar", "--tracker", "bad/name"}).code, 2);
  WriteFile(tmp_ / "junk.tar", "this is not an archive");
  CliResult junk = Other({"import", tmp_ / "junk.tar"});
  EXPECT_EQ(junk.code, 2);
  EXPECT_NE(junk.err.find("--snapshot"), std::string::npos) << junk.err;
  // A blob whose bytes do not match its name is refused and no ref appears.
  std::string dir = tmp_ / "layout";
  ASSERT_EQ(Silo({"export", (*set1_)[1], "-o", dir}).code, 0);
  for (const auto& f : fs::directory_iterator(fs::path(dir) / "blobs" / "sha256")) {
    if (fs::file_size(f.path()) > 10000) {
      std::fstream s(f.path(), std::ios::in | std::ios::out | std::ios::binary);
      s.seekp(5000);
      s.put('\x01');
      break;
    }
  }
  CliResult bad = Other({"import", dir});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("blob sha256:"), std::string::npos) << bad.err;
  EXPECT_EQ(Trim(Other({"ref", "ls", "image/"}).out), "");
}

}  // namespace
}  // namespace silo::testing
