// Snapshot formats: canonical trees, snapshot records and names, retention, the stat
// cache encoding, dsync's configuration.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "index/dsync.h"
#include "index/snapshot.h"
#include "index/stat_cache.h"
#include "index/tree.h"
#include "util/hash.h"

namespace silo::index {
namespace {

store::Digest D(std::string_view s) {
  return store::Digest::Sha256(Sha256::Of(AsBytes(s)));
}

Tree Sample() {
  Tree t;
  TreeEntry f;
  f.name = "file with space";
  f.mode = 0640;
  f.uid = 1000;
  f.gid = 100;
  f.mtime_ns = -5;  // before the epoch
  f.size = 42;
  f.digest = D("content");
  f.xattrs = {{"user.b", std::string("\0\1", 2)}, {"user.a", "x"}};
  f.hardlink_group = 3;
  t.entries.push_back(f);
  TreeEntry d;
  d.name = "new\nline\xff";
  d.type = EntryType::kDir;
  d.mode = 01777;
  d.mtime_ns = 1700000000123456789;
  d.digest = D("subtree");
  t.entries.push_back(d);
  TreeEntry l;
  l.name = "link";
  l.type = EntryType::kSymlink;
  l.mode = 0777;
  l.target = "../../etc/passwd";  // a target is data, never followed on restore
  t.entries.push_back(l);
  TreeEntry c;
  c.name = "null";
  c.type = EntryType::kCharDevice;
  c.rdev = 0x103;
  t.entries.push_back(c);
  return t;
}

TEST(TreeFormat, RoundTripKeepsEveryField) {
  Tree t = Sample();
  std::string bytes = EncodeTree(t);
  auto back = DecodeTree(bytes);
  ASSERT_TRUE(back.ok()) << back.status().message();
  std::sort(t.entries.begin(), t.entries.end(), [](auto& a, auto& b) { return a.name < b.name; });
  for (auto& e : t.entries) std::sort(e.xattrs.begin(), e.xattrs.end());
  EXPECT_EQ(back->entries, t.entries);
  EXPECT_EQ(TreeLinks(*back),
            (std::vector<store::Digest>{std::min(D("content"), D("subtree")), std::max(D("content"), D("subtree"))}));
}

TEST(TreeFormat, CanonicalWhateverTheInputOrder) {
  Tree t = Sample();
  std::string first = EncodeTree(t);
  std::mt19937 rng(7);
  for (int i = 0; i < 5; ++i) {
    std::shuffle(t.entries.begin(), t.entries.end(), rng);
    for (auto& e : t.entries) std::shuffle(e.xattrs.begin(), e.xattrs.end(), rng);
    EXPECT_EQ(EncodeTree(t), first);
  }
  t.entries[0].mtime_ns += 1;
  EXPECT_NE(EncodeTree(t), first);
}

TEST(TreeFormat, HostileNamesAndDamageAreRefused) {
  for (std::string bad : {std::string(".."), std::string("."), std::string(""), std::string("a/b"), std::string("/etc"),
                          std::string("a\0b", 3)}) {
    Tree t;
    TreeEntry e;
    e.name = bad;
    e.digest = D("x");
    t.entries.push_back(e);
    auto r = DecodeTree(EncodeTree(t));
    EXPECT_FALSE(r.ok()) << "name accepted: " << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Code::kCorruption);
    }
  }
  // Duplicates (the encoder keeps both; the decoder refuses).
  Tree dup;
  TreeEntry e;
  e.name = "same";
  e.digest = D("x");
  dup.entries = {e, e};
  EXPECT_FALSE(DecodeTree(EncodeTree(dup)).ok());
  // Every truncation of a valid tree is refused, never read past the end.
  std::string bytes = EncodeTree(Sample());
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(DecodeTree(bytes.substr(0, n)).ok()) << n;
  EXPECT_FALSE(DecodeTree(bytes + "x").ok());
}

TEST(SnapshotFormat, RecordRoundTripAndLinks) {
  SnapshotRecord r;
  r.name = "site";
  r.time_ns = 1700000000000000001;
  r.host = "box";
  r.parent = D("parent");
  r.root = D("root");
  r.sources = {{"p0", "/home/a b", D("t0")}, {"p1", "/srv/\xff", D("t1")}};
  r.files = 3;
  r.dirs = 2;
  r.bytes = 99;
  auto back = DecodeSnapshot(EncodeSnapshot(r));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(EncodeSnapshot(*back), EncodeSnapshot(r));
  auto links = SnapshotLinks(r);
  EXPECT_EQ(links.size(), 3u);
  EXPECT_EQ(std::count(links.begin(), links.end(), D("parent")), 0) << "a parent must not be kept alive";

  // A version 1 record (no root entry byte) still reads.
  std::string v2 = EncodeSnapshot(r);
  ASSERT_EQ(v2.substr(0, 16), "silo-snapshot-2\n");
  ASSERT_EQ(v2.back(), '\0');
  std::string v1 = "silo-snapshot-1\n" + v2.substr(16, v2.size() - 17);
  auto old = DecodeSnapshot(v1);
  ASSERT_TRUE(old.ok()) << old.status().message();
  EXPECT_EQ(old->sources.size(), 2u);
  EXPECT_FALSE(old->root_entry.has_value());

  // The root directory's own metadata round-trips, and must describe the root.
  TreeEntry root;
  root.name = "p0";
  root.type = EntryType::kDir;
  root.mode = 0710;
  root.uid = 7;
  root.mtime_ns = 1400000000000000042;
  root.digest = D("root");
  root.xattrs = {{"user.a", std::string("x\0y", 3)}};
  r.root_entry = root;
  auto with_root = DecodeSnapshot(EncodeSnapshot(r));
  ASSERT_TRUE(with_root.ok()) << with_root.status().message();
  EXPECT_EQ(with_root->root_entry, root);
  EXPECT_EQ(EncodeSnapshot(*with_root), EncodeSnapshot(r));
  r.root_entry->digest = D("other");
  auto wrong = DecodeSnapshot(EncodeSnapshot(r));
  EXPECT_EQ(wrong.status().code(), Code::kCorruption);
  std::string bytes = EncodeSnapshot(*with_root);
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(DecodeSnapshot(bytes.substr(0, n)).ok()) << n;
}

TEST(SnapshotFormat, Specs) {
  auto s = ParseSnapshotSpec("site@1a2b3c:etc/hosts");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->name, "site");
  EXPECT_EQ(s->id, "1a2b3c");
  EXPECT_EQ(s->path, "etc/hosts");
  EXPECT_TRUE(s->has_path);
  s = ParseSnapshotSpec("site");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->id.empty());
  EXPECT_FALSE(s->has_path);
  for (const char* bad : {"", "a/b", ".hidden", "x@", "x@12", "x@XYZW", "sp ace"}) {
    EXPECT_FALSE(ParseSnapshotSpec(bad).ok()) << bad;
  }
}

TEST(SnapshotFormat, Retention) {
  constexpr int64_t kHour = 3600LL * 1000000000LL;
  constexpr int64_t kDay = 24 * kHour;
  // Two snapshots a day for 20 days, starting on a Monday (1970-01-05).
  std::vector<int64_t> times;
  for (int d = 0; d < 20; ++d) {
    times.push_back((4 + d) * kDay + 1 * kHour);
    times.push_back((4 + d) * kDay + 13 * kHour);
  }
  auto count = [](const std::vector<bool>& v) { return std::count(v.begin(), v.end(), true); };
  EXPECT_EQ(count(ApplyRetention(times, {3, 0, 0})), 3);
  auto daily = ApplyRetention(times, {0, 5, 0});
  EXPECT_EQ(count(daily), 5);
  for (size_t i = 0; i < times.size(); ++i) {
    if (daily[i]) {
      EXPECT_EQ(i % 2, 1u) << "the newest of each day is kept";
    }
  }
  EXPECT_TRUE(daily.back());
  EXPECT_EQ(count(ApplyRetention(times, {0, 0, 2})), 2);
  EXPECT_EQ(count(ApplyRetention(times, {0, 0, 10})), 3) << "20 days from a Monday span 3 ISO weeks";
  EXPECT_EQ(count(ApplyRetention(times, {1, 1, 1})), 1) << "rules overlap on the newest";
  EXPECT_EQ(count(ApplyRetention(times, {})), 0);
}

TEST(StatCacheFormat, RoundTrip) {
  StatCacheValue v{123, 1700000000123456789, -1, D("c")};
  StatCacheValue back;
  ASSERT_TRUE(DecodeStatCacheValue(EncodeStatCacheValue(v), &back));
  EXPECT_EQ(back, v);
  EXPECT_FALSE(DecodeStatCacheValue("", &back));
  EXPECT_FALSE(DecodeStatCacheValue(EncodeStatCacheValue(v) + "x", &back));
  EXPECT_NE(StatCacheKey(1, 2), StatCacheKey(2, 1));
}

TEST(DsyncConfig, JavaScriptFlavouredConfig) {
  auto cfg = ParseDsyncConfig(R"(
    {
      // archive type
      archiveType : "tar",
      name: 'site',
      /* the dirs */
      dirs : [{
        key  : "p0",
        path : "~/site",
        leafOnly : false,
        ignoreTop : true,
        ignoreHidden : true,
      }, {
        path : "/srv/data//x"
      }],
      exclude: ["*.tmp", "cache/"],
    })",
                              "/home/u");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->archive_type, "tar");
  EXPECT_EQ(cfg->name, "site");
  ASSERT_EQ(cfg->dirs.size(), 2u);
  EXPECT_EQ(cfg->dirs[0].path, "/home/u/site");
  EXPECT_TRUE(cfg->dirs[0].ignore_hidden);
  EXPECT_TRUE(cfg->dirs[0].ignore_top);
  EXPECT_EQ(cfg->dirs[1].key, "p1");
  EXPECT_EQ(cfg->dirs[1].path, "/srv/data//x");
  EXPECT_EQ(cfg->excludes, (std::vector<std::string>{"*.tmp", "cache/"}));
  EXPECT_FALSE(ParseDsyncConfig(R"({"dirs": []})", "").ok());
  EXPECT_FALSE(ParseDsyncConfig(R"({"dirs": [{"key": "../x", "path": "/a"}]})", "").ok());
  EXPECT_FALSE(ParseDsyncConfig(R"({"archiveType": "rar", "dirs": [{"path": "/a"}]})", "").ok());
  EXPECT_FALSE(ParseDsyncConfig("not json", "").ok());
}

}  // namespace
}  // namespace silo::index
