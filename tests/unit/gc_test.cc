// Garbage collection: marking over refs and links, sweeping, grace, and concurrency.
#include <atomic>
#include <set>
#include <thread>

#include "tests/support/store_test.h"

namespace silo::store {
namespace {

using testing::RandomBytes;

class Gc : public testing::StoreTest {
 protected:
  void SetUp() override {
    options_.chunking = {4096, 16384, 65536};
    options_.inline_max = 512;
    StoreTest::SetUp();
  }
  ObjectInfo Put(std::string_view data, std::vector<Digest> links = {}, std::string ref = {}) {
    PutOptions o;
    o.links = std::move(links);
    o.ref = std::move(ref);
    return MustPut(data, o);
  }
  GcReport Collect(std::chrono::seconds grace = std::chrono::seconds(0), bool dry = false) {
    GcOptions o;
    o.grace = grace;
    o.dry_run = dry;
    auto r = store_->CollectGarbage(o);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : GcReport{};
  }
  bool Has(const Digest& d) { return store_->Stat(d).ok(); }
};

TEST_F(Gc, RefRmThenGcReclaimsTheBytesAndKeepsWhatIsReferenced) {
  std::string keep = RandomBytes(8 << 20, 1), drop = RandomBytes(8 << 20, 2);
  ObjectInfo a = Put(keep, {}, "image/r/keep:1");
  ObjectInfo b = Put(drop, {}, "image/r/drop:1");
  auto before = store_->Stats();
  ASSERT_TRUE(store_->DeleteRef("image/r/drop:1").ok());
  GcReport r = Collect();
  EXPECT_EQ(r.objects_removed, 1u);
  EXPECT_GE(r.stored_bytes_removed, 8u << 20);
  EXPECT_FALSE(Has(b.digest));
  ASSERT_TRUE(Has(a.digest));
  EXPECT_TRUE(*store_->ReadAll(a.digest, 1 << 30) == keep);
  auto after = store_->Stats();
  EXPECT_LE(after->stored_bytes + (8u << 20), before->stored_bytes + 1024);
  EXPECT_LT(r.disk_bytes_after, r.disk_bytes_before);
  FsckOptions fo;
  EXPECT_TRUE(store_->Check(fo)->clean());
}

TEST_F(Gc, LinksKeepTheirTargetsAlive) {
  ObjectInfo layer1 = Put(RandomBytes(100000, 3));
  ObjectInfo layer2 = Put(RandomBytes(100000, 4));
  ObjectInfo config = Put("{\"config\":1}");
  ObjectInfo manifest = Put("manifest", {config.digest, layer1.digest, layer2.digest});
  ObjectInfo index = Put("index", {manifest.digest}, "image/r/app:1");
  ObjectInfo stray = Put(RandomBytes(100000, 5));
  GcReport r = Collect();
  EXPECT_EQ(r.objects_removed, 1u);
  for (const auto& d : {layer1.digest, layer2.digest, config.digest, manifest.digest, index.digest}) {
    EXPECT_TRUE(Has(d)) << d.ToString();
  }
  EXPECT_FALSE(Has(stray.digest));
}

TEST_F(Gc, ChunksSharedWithALiveObjectSurvive) {
  std::string base = RandomBytes(400000, 6);
  ObjectInfo old_obj = Put(base);
  ObjectInfo kept = Put(base + RandomBytes(50000, 7), {}, "snapshot/s/1");
  Collect();
  EXPECT_FALSE(Has(old_obj.digest));
  ASSERT_TRUE(Has(kept.digest));
  FsckOptions fo;
  auto report = store_->Check(fo);
  EXPECT_TRUE(report->clean());
  EXPECT_EQ(report->objects_checked, 1u);
}

TEST_F(Gc, DataOfUnfinishedWritesIsKeptForTheGracePeriod) {
  {
    auto w = store_->NewWriter();
    ASSERT_TRUE(w.ok());
    std::string data = RandomBytes(1 << 20, 8);
    ASSERT_TRUE((*w)->Write(AsBytes(data)).ok());
    // destroyed without Commit: its chunks are orphans
  }
  uint64_t orphan_chunks = store_->Stats()->chunks;
  ASSERT_GT(orphan_chunks, 0u);
  EXPECT_EQ(Collect(std::chrono::hours(1)).chunks_removed, 0u);
  EXPECT_EQ(store_->Stats()->chunks, orphan_chunks);
  EXPECT_EQ(Collect(std::chrono::seconds(0)).chunks_removed, orphan_chunks);
  EXPECT_EQ(store_->Stats()->chunks, 0u);
}

TEST_F(Gc, DryRunRemovesNothing) {
  ObjectInfo a = Put(RandomBytes(100000, 9));
  GcReport r = Collect(std::chrono::seconds(0), true);
  EXPECT_EQ(r.objects_removed, 1u);
  EXPECT_TRUE(Has(a.digest));
}

TEST_F(Gc, APutRacingACollectionIsNeverLost) {
  // A writer keeps storing objects (often content that a collection is removing at that
  // very moment) and pointing refs at them; collections run back to back meanwhile.
  std::atomic<bool> done{false};
  std::atomic<int> collections{0};
  std::thread collector([&] {
    while (!done) {
      GcOptions o;
      o.grace = std::chrono::seconds(0);
      auto r = store_->CollectGarbage(o);
      ASSERT_TRUE(r.ok()) << r.status().message();
      ++collections;
    }
  });
  std::vector<std::pair<std::string, Digest>> live;
  for (int i = 0; i < 300; ++i) {
    std::string content = RandomBytes(20000 + (i % 7) * 30000, static_cast<uint64_t>(i % 25));
    std::string ref = "image/race/obj:" + std::to_string(i);
    PutOptions o;
    o.ref = ref;
    auto info = store_->Put(AsBytes(content), o);
    ASSERT_TRUE(info.ok()) << info.status().message();
    live.emplace_back(ref, info->digest);
    if (i % 3 == 0 && live.size() > 2) {
      // Drop an older one: its content becomes garbage and will be put again later.
      ASSERT_TRUE(store_->DeleteRef(live.front().first).ok());
      live.erase(live.begin());
    }
  }
  while (collections < 3) std::this_thread::yield();
  done = true;
  collector.join();
  Collect();
  for (const auto& [ref, digest] : live) {
    auto target = store_->GetRef(ref);
    ASSERT_TRUE(target.ok() && target->has_value()) << ref;
    auto data = store_->ReadAll(digest, 1 << 30);
    ASSERT_TRUE(data.ok()) << ref << ": " << data.status().message();
    EXPECT_EQ(Digest::Sha256(Sha256::Of(AsBytes(*data))), digest);
  }
  FsckOptions fo;
  auto report = store_->Check(fo);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->clean());
  std::set<Digest> unique;
  for (const auto& entry : live) unique.insert(entry.second);
  EXPECT_EQ(report->objects_checked, unique.size());
}

}  // namespace
}  // namespace silo::store
