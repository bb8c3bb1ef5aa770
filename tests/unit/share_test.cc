// The share protocol in process, against a real directory and a real store: files with
// ranges, stat with cached digests, listings, deny rules, confinement (.., encoded
// separators, symlinks out of the share), and snapshots served from the store.
#include "transfer/share.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tests/support/store_test.h"
#include "transfer/snapshot.h"
#include "util/hash.h"

namespace silo::testing {
namespace {

using transfer::ShareRequest;
using transfer::ShareResponse;

std::string BodyOf(ShareResponse& r) {
  if (!r.file.valid() && !r.object) return r.body;
  std::string out(r.content_length, '\0');
  if (r.file.valid()) {
    ssize_t n = ::pread(r.file.get(), out.data(), out.size(), static_cast<off_t>(r.file_offset));
    EXPECT_EQ(static_cast<size_t>(n), out.size());
    return out;
  }
  size_t done = 0;
  while (done < out.size()) {
    auto n = r.object->Read({reinterpret_cast<uint8_t*>(out.data()) + done, out.size() - done});
    EXPECT_TRUE(n.ok()) << n.status().message();
    if (!n.ok() || *n == 0) break;
    done += *n;
  }
  EXPECT_EQ(done, out.size());
  return out;
}

std::string Header(const ShareResponse& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

std::string Sha(std::string_view data) {
  return "sha256:" + ToHex(Sha256::Of(AsBytes(data)));
}

class ShareTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    root_ = tmp_ / "share";
    std::filesystem::create_directories(root_ + "/sub/deeper");
    std::filesystem::create_directories(root_ + "/private");
    std::filesystem::create_directories(tmp_ / "outside");
    big_ = RandomBytes(300000, 7);
    WriteFile(root_ + "/big.bin", big_);
    WriteFile(root_ + "/sub/a b.txt", "hello");
    WriteFile(root_ + "/sub/deeper/c.txt", "deep");
    WriteFile(root_ + "/sub/server.key", "secret key");
    WriteFile(root_ + "/private/p.txt", "private");
    WriteFile(tmp_ / "outside/passwd", "root:x:0:0");
    std::filesystem::create_symlink("../outside/passwd", root_ + "/escape");
    std::filesystem::create_symlink(tmp_ / "outside", root_ + "/escape_dir");
    std::filesystem::create_symlink("sub/deeper/c.txt", root_ + "/inside");
    std::filesystem::create_symlink("private/p.txt", root_ + "/to_private");
    transfer::AccessPolicy p;
    p.deny_files = {"*.key"};
    p.deny_dirs = {"private"};
    access_ = std::make_unique<transfer::AccessControl>(p);
    auto svc = transfer::ShareService::Create({{"data", root_}}, access_.get(), store_.get());
    ASSERT_TRUE(svc.ok()) << svc.status().message();
    svc_ = std::move(*svc);
  }

  ShareResponse Get(std::string_view target, std::string_view range = "", std::string_view method = "GET") {
    return svc_->Handle(ShareRequest{method, target, range, ""});
  }

  std::string root_;
  std::string big_;
  std::unique_ptr<transfer::AccessControl> access_;
  std::unique_ptr<transfer::ShareService> svc_;
};

TEST_F(ShareTest, FileWithRanges) {
  auto r = Get("/files/data/big.bin");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Header(r, "Accept-Ranges"), "bytes");
  EXPECT_EQ(Header(r, "X-Silo-Type"), "file");
  ASSERT_TRUE(r.file.valid());
  EXPECT_EQ(BodyOf(r), big_);

  r = Get("/files/data/big.bin", "bytes=1000-1999");
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(Header(r, "Content-Range"), "bytes 1000-1999/300000");
  EXPECT_EQ(BodyOf(r), big_.substr(1000, 1000));

  r = Get("/files/data/big.bin", "bytes=299990-");
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(BodyOf(r), big_.substr(299990));
  r = Get("/files/data/big.bin", "bytes=-5");
  EXPECT_EQ(BodyOf(r), big_.substr(299995));
  r = Get("/files/data/big.bin", "bytes=299000-999999999");
  EXPECT_EQ(Header(r, "Content-Range"), "bytes 299000-299999/300000");

  r = Get("/files/data/big.bin", "bytes=300000-");
  EXPECT_EQ(r.status, 416);
  EXPECT_EQ(Header(r, "Content-Range"), "bytes */300000");
  r = Get("/files/data/big.bin", "bytes=0-1,5-6");  // several ranges: the whole file
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_length, big_.size());

  // If-Range with a stale validator: the whole file.
  auto stale = svc_->Handle(ShareRequest{"GET", "/files/data/big.bin", "bytes=0-9", "\"old\""});
  EXPECT_EQ(stale.status, 200);
  auto fresh = svc_->Handle(ShareRequest{"GET", "/files/data/big.bin", "bytes=0-9", Header(r, "ETag")});
  EXPECT_EQ(fresh.status, 206);

  r = Get("/files/data/big.bin", "", "HEAD");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_length, big_.size());
  EXPECT_FALSE(r.file.valid());
  EXPECT_TRUE(r.body.empty());

  r = Get("/files/data/sub/a%20b.txt");
  EXPECT_EQ(BodyOf(r), "hello");
  EXPECT_EQ(Get("/files/data/big.bin", "", "PUT").status, 405);
}

TEST_F(ShareTest, StatComputesDigestOnceAndNoticesChanges) {
  // Old enough to be cached (files changed within 2 s are hashed but not remembered).
  struct timespec old[2] = {{1700000000, 0}, {1700000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (root_ + "/big.bin").c_str(), old, 0), 0);
  auto r = Get("/files/data/big.bin?stat");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"digest\":\"" + Sha(big_) + "\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"size\":300000"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"type\":\"file\""), std::string::npos);
  EXPECT_NE(r.body.find("\"mtime\":1700000000000000000"), std::string::npos) << r.body;
}

TEST_F(ShareTest, DigestCacheIsUsedAndKeyedByStat) {
  std::string path = root_ + "/sub/deeper/c.txt";
  // The ctime of a fresh file is now: wait until the file is older than the racy window.
  ::sleep(3);
  auto r = Get("/files/data/sub/deeper/c.txt?stat");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(Sha("deep")), std::string::npos);
  int entries = 0;
  ASSERT_TRUE(store_
                  ->ScanIndex("share-digest", "",
                              [&](std::string_view, std::string_view) {
                                ++entries;
                                return true;
                              })
                  .ok());
  EXPECT_EQ(entries, 1);
  // GET now advertises the cached digest.
  EXPECT_EQ(Header(Get("/files/data/sub/deeper/c.txt"), "X-Silo-Digest"), Sha("deep"));
  // Changed content (same size): a new stat key, a new digest.
  WriteFile(path, "DEEP");
  r = Get("/files/data/sub/deeper/c.txt?stat");
  EXPECT_NE(r.body.find(Sha("DEEP")), std::string::npos) << r.body;
}

TEST_F(ShareTest, ListingsSkipDeniedEntries) {
  auto r = Get("/files/data/?list");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"path\":\"big.bin\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"path\":\"sub\",\"type\":\"directory\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"path\":\"inside\",\"type\":\"symlink\""), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("\"path\":\"private"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("a b.txt"), std::string::npos) << "not recursive";

  r = Get("/files/data/?list&recursive=1&digest=1");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"path\":\"sub/a b.txt\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"path\":\"sub/deeper/c.txt\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(Sha("hello")), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("server.key"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("\"path\":\"private/p.txt"), std::string::npos) << r.body;

  r = Get("/files/data/sub?list");
  EXPECT_NE(r.body.find("\"path\":\"a b.txt\""), std::string::npos) << r.body;
  r = Get("/files/");
  EXPECT_NE(r.body.find("\"data\""), std::string::npos) << r.body;
}

TEST_F(ShareTest, ConfinementAndDenyRules) {
  struct Case {
    const char* target;
    int status;
  };
  for (const Case& c : std::vector<Case>{
           {"/files/data/../outside/passwd", 403},
           {"/files/data/sub/../../outside/passwd", 403},
           {"/files/data/%2e%2e/outside/passwd", 403},
           {"/files/data/%2E%2E%2Foutside%2Fpasswd", 403},
           {"/files/data/sub%2f..%2f..%2foutside/passwd", 403},
           {"/files/data/escape", 403},             // relative symlink out
           {"/files/data/escape_dir/passwd", 403},  // absolute symlink out
           {"/files/data/sub/server.key", 403},
           {"/files/data/private/p.txt", 403},
           {"/files/data/private?list", 403},
           {"/files/data/to_private", 403},  // a symlink into a denied directory
           {"/files/data/nothing", 404},
           {"/files/other/x", 404},
           {"/files/data/inside", 200},
           {"/files/data//sub/a%20b.txt", 200},
       }) {
    auto r = Get(c.target);
    EXPECT_EQ(r.status, c.status) << c.target << ": " << r.body;
    if (r.status != 200) {
      EXPECT_EQ(r.body.find("root:x"), std::string::npos);
    }
  }
  auto r = Get("/files/data/inside");
  EXPECT_EQ(BodyOf(r), "deep");
}

TEST_F(ShareTest, RefusesMissingShareDirectory) {
  auto svc = transfer::ShareService::Create({{"x", tmp_ / "nope"}}, nullptr, nullptr);
  ASSERT_FALSE(svc.ok());
  EXPECT_NE(svc.status().message().find("nope"), std::string::npos);
  EXPECT_FALSE(transfer::ShareService::Create({{"x", root_}, {"x", root_}}, nullptr, nullptr).ok());
  EXPECT_FALSE(transfer::ShareConfig::Parse("noequals").ok());
  EXPECT_FALSE(transfer::ShareConfig::Parse("../x=/tmp").ok());
  auto c = transfer::ShareConfig::Parse("logs=/var/log");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->name, "logs");
  EXPECT_EQ(c->dir, "/var/log");
}

TEST_F(ShareTest, SnapshotsFromTheStore) {
  transfer::SnapshotRequest req;
  req.name = "docs";
  req.sources.push_back({"share", root_});
  auto snap = transfer::TakeSnapshot(*store_, req);
  ASSERT_TRUE(snap.ok()) << snap.status().message();

  auto r = Get("/snapshots/docs/big.bin", "bytes=10-19");
  ASSERT_EQ(r.status, 206) << r.body;
  EXPECT_EQ(Header(r, "X-Silo-Digest"), Sha(big_));
  EXPECT_EQ(BodyOf(r), big_.substr(10, 10));
  r = Get("/snapshots/docs@" + snap->snapshot.id + "/sub/a%20b.txt");
  EXPECT_EQ(BodyOf(r), "hello");
  r = Get("/snapshots/docs/sub/a%20b.txt?stat");
  EXPECT_NE(r.body.find(Sha("hello")), std::string::npos) << r.body;
  r = Get("/snapshots/docs/?list&recursive=1");
  EXPECT_NE(r.body.find("\"path\":\"sub/deeper/c.txt\""), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("server.key"), std::string::npos) << "deny rules apply to snapshots too";
  EXPECT_EQ(Get("/snapshots/docs/sub/server.key").status, 403);
  EXPECT_EQ(Get("/snapshots/docs/../x").status, 403);
  EXPECT_EQ(Get("/snapshots/nosuch/x").status, 404);
  EXPECT_EQ(Get("/snapshots/docs/nosuch").status, 404);
  r = Get("/snapshots/");
  EXPECT_NE(r.body.find("\"name\":\"docs\""), std::string::npos) << r.body;
}

}  // namespace
}  // namespace silo::testing
