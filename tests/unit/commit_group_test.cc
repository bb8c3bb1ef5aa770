// CommitGroup: objects committed together, against a real RocksDB in a temporary directory.
#include <thread>

#include "tests/support/store_test.h"

namespace silo::store {
namespace {

using testing::RandomBytes;

class CommitGroupTest : public testing::StoreTest {
 protected:
  void SetUp() override {
    options_.chunking = {4096, 16384, 65536};
    options_.inline_max = 1024;
    StoreTest::SetUp();
  }

  std::shared_ptr<CommitGroup> Group(size_t max_bytes = 1 << 30) {
    auto g = store_->NewCommitGroup({max_bytes});
    EXPECT_TRUE(g.ok()) << g.status().message();
    return g.ok() ? *g : nullptr;
  }
  ObjectInfo PutIn(const std::shared_ptr<CommitGroup>& group, std::string_view data, bool sha1 = false) {
    PutOptions o;
    o.commit_group = group;
    o.sha1_alias = sha1;
    return MustPut(data, o);
  }
  bool Has(const Digest& d) { return store_->Stat(d).ok(); }
  GcReport Collect() {
    GcOptions o;
    o.grace = std::chrono::seconds(0);
    auto r = store_->CollectGarbage(o);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : GcReport{};
  }
  void ExpectClean() {
    auto r = store_->Check({});
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_TRUE(r->clean()) << r->other_problems << " other problems, " << r->damaged_chunks << " damaged chunks";
  }
};

// Inline, one-chunk and many-chunk objects.
const size_t kSizes[] = {0, 100, 1024, 1025, 20000, 300000};

TEST_F(CommitGroupTest, ObjectsAreInvisibleUntilTheFlushThenWhole) {
  auto group = Group();
  std::vector<std::string> data;
  std::vector<ObjectInfo> infos;
  for (size_t i = 0; i < std::size(kSizes); ++i) {
    data.push_back(RandomBytes(kSizes[i], 10 + i));
    infos.push_back(PutIn(group, data.back(), /*sha1=*/true));
    EXPECT_FALSE(infos.back().existed);
    EXPECT_EQ(infos.back().size, kSizes[i]);
    ASSERT_TRUE(infos.back().sha1.has_value());
  }
  for (const auto& info : infos) EXPECT_FALSE(Has(info.digest)) << info.digest.ToString();
  EXPECT_FALSE(Has(*infos.back().sha1));
  ASSERT_TRUE(group->Flush().ok());
  for (size_t i = 0; i < infos.size(); ++i) {
    auto back = store_->ReadAll(*infos[i].sha1, 1 << 30);  // through the alias
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(*back, data[i]);
  }
  EXPECT_TRUE(group->Flush().ok());  // nothing left: a no-op
  ExpectClean();
}

TEST_F(CommitGroupTest, ADroppedGroupLeavesNothingVisibleAndTheStoreClean) {
  ObjectInfo small, large;
  {
    auto group = Group();
    small = PutIn(group, "dropped");
    large = PutIn(group, RandomBytes(200000, 2));
  }
  EXPECT_FALSE(Has(small.digest));
  EXPECT_FALSE(Has(large.digest));
  Collect();
  ExpectClean();
  // The content can be stored afresh, and is.
  ObjectInfo again = MustPut(RandomBytes(200000, 2));
  EXPECT_FALSE(again.existed);
  EXPECT_EQ(store_->ReadAll(again.digest, 1 << 30).value(), RandomBytes(200000, 2));
}

TEST_F(CommitGroupTest, ContentIsDeduplicatedWithinTheGroupAndAgainstTheStore) {
  std::string stored = RandomBytes(100000, 3), twice = RandomBytes(100000, 4);
  const std::string small_stored = "small bytes stored before the group";
  ObjectInfo before = MustPut(stored);
  ObjectInfo small_before = MustPut(small_stored);
  auto stats0 = store_->Stats();
  ASSERT_TRUE(stats0.ok());
  auto group = Group();
  ObjectInfo a = PutIn(group, stored);
  EXPECT_EQ(a.new_chunks, 0u);  // its chunks are in the store
  EXPECT_EQ(a.new_stored_bytes, 0u);
  PutIn(group, small_stored);  // whether the store has it is looked up when the batch is written
  ObjectInfo first = PutIn(group, twice);
  EXPECT_FALSE(first.existed);
  EXPECT_GT(first.new_chunks, 0u);
  ObjectInfo second = PutIn(group, twice);
  EXPECT_TRUE(second.existed);  // the group holds it
  EXPECT_EQ(second.new_chunks, 0u);
  EXPECT_EQ(second.new_stored_bytes, 0u);
  ObjectInfo inline1 = PutIn(group, "same small bytes");
  ObjectInfo inline2 = PutIn(group, "same small bytes");
  EXPECT_FALSE(inline1.existed);
  EXPECT_TRUE(inline2.existed);
  EXPECT_EQ(inline2.new_stored_bytes, 0u);
  ASSERT_TRUE(group->Flush().ok());
  EXPECT_EQ(store_->ReadAll(first.digest, 1 << 30).value(), twice);
  auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->objects, 4u);
  // The records of what the store held were not written again.
  EXPECT_EQ(store_->Stat(before.digest)->created_us, before.created_us);
  EXPECT_EQ(store_->Stat(small_before.digest)->created_us, small_before.created_us);
  // What the group added: the new chunks and two records (`twice`'s chunk list, the small
  // object inline), nothing for what the store held.
  const uint64_t grew = stats->stored_bytes - stats0->stored_bytes;
  EXPECT_GE(group->bytes_added(), grew);
  EXPECT_LE(group->bytes_added(), grew + 2 * 256);
  ExpectClean();
}

TEST_F(CommitGroupTest, AFullBatchIsWrittenByTheCommitThatFillsIt) {
  auto group = Group(/*max_bytes=*/1);
  ObjectInfo small = PutIn(group, "written at once");
  ObjectInfo large = PutIn(group, RandomBytes(50000, 5));
  EXPECT_TRUE(Has(small.digest));
  EXPECT_TRUE(Has(large.digest));
  EXPECT_EQ(store_->ReadAll(large.digest, 1 << 30).value(), RandomBytes(50000, 5));
}

TEST_F(CommitGroupTest, ALargeObjectCommitsOnItsOwnWithTheChunksItQueued) {
  // Past 16 MiB chunks skip the WAL, and such an object commits with a write of its own;
  // its first chunks went to the group's batch, which must be written first.
  auto group = Group();
  ObjectInfo small = PutIn(group, "queued before");
  std::string big = RandomBytes(20 << 20, 8);
  ObjectInfo large = PutIn(group, big);
  EXPECT_TRUE(Has(large.digest));
  EXPECT_EQ(store_->ReadAll(large.digest, 1 << 30).value(), big);
  ExpectClean();
  ASSERT_TRUE(group->Flush().ok());
  EXPECT_TRUE(Has(small.digest));
}

TEST_F(CommitGroupTest, ManyThreadsCommitIntoOneGroup) {
  auto group = Group(/*max_bytes=*/64 << 10);
  std::vector<std::thread> threads;
  std::vector<std::vector<ObjectInfo>> infos(4);
  for (size_t t = 0; t < infos.size(); ++t) {
    threads.emplace_back([&, t] {
      // Every thread also puts what the others put (deduplicated, wherever it is).
      for (uint64_t i = 0; i < 40; ++i) infos[t].push_back(PutIn(group, RandomBytes(i * 997, i)));
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(group->Flush().ok());
  for (size_t t = 0; t < infos.size(); ++t) {
    for (uint64_t i = 0; i < 40; ++i) {
      EXPECT_EQ(store_->ReadAll(infos[t][i].digest, 1 << 30).value(), RandomBytes(i * 997, i));
    }
  }
  size_t fresh = 0;
  for (auto& v : infos) {
    for (auto& info : v) fresh += info.existed ? 0 : 1;
  }
  EXPECT_EQ(fresh, 40u);  // each content counted new once
  ExpectClean();
}

TEST_F(CommitGroupTest, GcKeepsWhatTheGroupCommittedWhileTheGroupLives) {
  auto group = Group();
  ObjectInfo old = MustPut(RandomBytes(30000, 6));  // stored before, unreferenced
  ObjectInfo again = PutIn(group, RandomBytes(30000, 6));
  ObjectInfo fresh = PutIn(group, RandomBytes(30000, 7));
  EXPECT_EQ(again.new_stored_bytes, 0u);
  Collect();  // runs while `fresh` is still queued
  ASSERT_TRUE(group->Flush().ok());
  Collect();
  EXPECT_TRUE(Has(old.digest));
  EXPECT_EQ(store_->ReadAll(fresh.digest, 1 << 30).value(), RandomBytes(30000, 7));
  ExpectClean();
  group.reset();
  GcReport r = Collect();
  EXPECT_EQ(r.objects_removed, 2u);
  EXPECT_FALSE(Has(old.digest));
  EXPECT_FALSE(Has(fresh.digest));
  ExpectClean();
}

TEST_F(CommitGroupTest, RefsResumeKeysAndReadOnlyStoresAreRefused) {
  auto group = Group();
  PutOptions o;
  o.commit_group = group;
  o.ref = "test/x";
  auto w = store_->NewWriter(o);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Code::kInvalidArgument);
  o.ref.clear();
  o.resume_key = "k";
  EXPECT_EQ(store_->NewWriter(o).status().code(), Code::kInvalidArgument);
  group.reset();
  Close();
  OpenOptions ro;
  ro.read_only = true;
  auto s = Store::Open(store_path(), ro);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_FALSE((*s)->NewCommitGroup().ok());
}

}  // namespace
}  // namespace silo::store
