// The store's chunk cache (OpenOptions::chunk_cache_bytes) against a real RocksDB: hits
// skip the store, only verified bytes go in, the charge stays under the bound, and pieces
// outlive both eviction and the store.
#include <string>
#include <thread>
#include <vector>

#include "tests/support/store_test.h"

namespace silo::store {
namespace {

using testing::RandomBytes;

class ChunkCache : public testing::StoreTest {
 protected:
  void SetUp() override {
    options_.chunking = {4096, 16384, 65536};
    options_.inline_max = 1024;
    options_.chunk_cache_bytes = 8 << 20;
    StoreTest::SetUp();
  }

  // The whole object through ReadPiece, as the server reads it.
  static Result<std::string> ReadPieces(store::Store& s, const Digest& d) {
    SILO_ASSIGN_OR_RETURN(auto reader, s.NewReader(d));
    std::string out;
    for (;;) {
      SILO_ASSIGN_OR_RETURN(ObjectPiece p, reader->ReadPiece(1 << 20));
      if (p.bytes.empty()) return out;
      out.append(p.bytes);
    }
  }
};

TEST_F(ChunkCache, AStoreWithoutOneReportsNoCache) {
  options_.chunk_cache_bytes = 0;
  Reopen();
  std::string data = RandomBytes(300000, 1);
  ObjectInfo info = MustPut(data);
  auto got = ReadPieces(*store_, info.digest);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_TRUE(*got == data);
  auto st = store_->chunk_cache_stats();
  EXPECT_EQ(st.capacity, 0u);
  EXPECT_EQ(st.hits + st.misses, 0u);
}

TEST_F(ChunkCache, AHitServesWithoutReadingTheStoreAgain) {
  std::string data = RandomBytes(1 << 20, 2);
  ObjectInfo info = MustPut(data);
  ASSERT_GT(info.chunk_count, 10u);
  Reopen();  // the chunks now live in blob files on disk
  auto first = ReadPieces(*store_, info.digest);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_TRUE(*first == data);
  auto st = store_->chunk_cache_stats();
  EXPECT_EQ(st.misses, info.chunk_count);
  EXPECT_EQ(st.hits, 0u);
  EXPECT_GT(st.usage, data.size());
  EXPECT_LE(st.usage, st.capacity);

  // Damage a chunk on disk under the open store: a fresh open sees it, the cache does not.
  ASSERT_TRUE(testing::CorruptStoredBytes(store_path(), data.substr(600000, 64)));
  OpenOptions ro;
  ro.read_only = true;
  auto fresh = store::Store::Open(store_path(), ro);
  ASSERT_TRUE(fresh.ok()) << fresh.status().message();
  auto damaged = ReadPieces(**fresh, info.digest);
  ASSERT_FALSE(damaged.ok());
  EXPECT_EQ(damaged.status().code(), Code::kIntegrity) << damaged.status().message();

  auto again = ReadPieces(*store_, info.digest);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_TRUE(*again == data);
  st = store_->chunk_cache_stats();
  EXPECT_EQ(st.misses, info.chunk_count);
  EXPECT_EQ(st.hits, info.chunk_count);

  // A fresh open of the writable store starts with an empty cache and finds the damage.
  Reopen();
  auto reopened = ReadPieces(*store_, info.digest);
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), Code::kIntegrity);
}

TEST_F(ChunkCache, CompressedChunksAreCachedDecoded) {
  std::string data;
  for (int i = 0; data.size() < (1 << 20); ++i) data += "line " + std::to_string(i) + " of a compressible text\n";
  ObjectInfo info = MustPut(data);
  auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok());
  ASSERT_LT(stats->stored_bytes, data.size() / 2) << "the chunks should be stored compressed";
  Reopen();
  for (int round = 0; round < 2; ++round) {
    auto got = ReadPieces(*store_, info.digest);
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_TRUE(*got == data) << "round " << round;
  }
  auto st = store_->chunk_cache_stats();
  EXPECT_EQ(st.misses, info.chunk_count);
  EXPECT_EQ(st.hits, info.chunk_count);
  // The decoded bytes are held (and charged), not the stored ones.
  EXPECT_GE(st.usage, data.size());
}

TEST_F(ChunkCache, ADamagedChunkFailsEveryReadAndIsNeverCached) {
  std::string data = RandomBytes(400000, 3);
  ObjectInfo info = MustPut(data);
  Close();
  ASSERT_TRUE(testing::CorruptStoredBytes(store_path(), data.substr(200000, 64)));
  Reopen();
  for (int round = 0; round < 2; ++round) {
    auto got = ReadPieces(*store_, info.digest);
    ASSERT_FALSE(got.ok()) << "round " << round;
    EXPECT_EQ(got.status().code(), Code::kIntegrity);
    EXPECT_NE(got.status().message().find(info.digest.ToString()), std::string::npos) << got.status().message();
  }
  auto st = store_->chunk_cache_stats();
  // The second round found the good chunks before the damaged one cached, and missed on
  // the damaged one again.
  EXPECT_GT(st.hits, 0u);
  EXPECT_EQ(st.misses, st.hits + 2);
}

TEST_F(ChunkCache, EvictionKeepsTheChargeUnderTheBound) {
  options_.chunk_cache_bytes = 1 << 20;
  Reopen();
  std::vector<std::pair<ObjectInfo, std::string>> objects;
  for (uint64_t i = 0; i < 4; ++i) {
    std::string data = RandomBytes(1 << 20, 10 + i);
    ObjectInfo info = MustPut(data);
    objects.emplace_back(info, std::move(data));
  }
  uint64_t chunks = 0;
  for (const auto& [info, data] : objects) {
    auto got = ReadPieces(*store_, info.digest);
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_TRUE(*got == data);
    chunks += info.chunk_count;
    auto st = store_->chunk_cache_stats();
    EXPECT_LE(st.usage, st.capacity);
    EXPECT_GT(st.usage, st.capacity / 2);
    EXPECT_EQ(st.pinned, 0u);
  }
  // 4 MiB went through a 1 MiB cache: the first object was evicted and is read again.
  auto before = store_->chunk_cache_stats();
  EXPECT_EQ(before.misses, chunks);
  auto got = ReadPieces(*store_, objects[0].first.digest);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(*got == objects[0].second);
  auto after = store_->chunk_cache_stats();
  EXPECT_GT(after.misses, before.misses + objects[0].first.chunk_count / 2);
  EXPECT_LE(after.usage, after.capacity);
}

TEST_F(ChunkCache, PiecesOutliveEvictionAndTheStore) {
  options_.chunk_cache_bytes = 256 << 10;
  Reopen();
  std::string a = RandomBytes(300000, 20);
  std::string b = RandomBytes(2 << 20, 21);
  ObjectInfo ia = MustPut(a);
  ObjectInfo ib = MustPut(b);
  auto reader = store_->NewReader(ia.digest);
  ASSERT_TRUE(reader.ok());
  auto piece = (*reader)->ReadPiece(1 << 20);
  ASSERT_TRUE(piece.ok());
  ASSERT_FALSE(piece->bytes.empty());
  EXPECT_GT(store_->chunk_cache_stats().pinned, 0u);
  reader->reset();
  // 2 MiB through a 256 KiB cache evicts every entry no piece holds, many times over.
  auto got = ReadPieces(*store_, ib.digest);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(*got == b);
  EXPECT_EQ(piece->bytes, std::string_view(a).substr(0, piece->bytes.size()));
  Close();
  EXPECT_EQ(piece->bytes, std::string_view(a).substr(0, piece->bytes.size()));
}

TEST_F(ChunkCache, ManyReadersOfOneObjectShareItWhileOthersEvict) {
  options_.chunk_cache_bytes = 512 << 10;
  Reopen();
  std::string hot = RandomBytes(1 << 20, 30);
  std::string cold = RandomBytes(1 << 20, 31);
  ObjectInfo ih = MustPut(hot);
  ObjectInfo ic = MustPut(cold);
  std::vector<std::thread> threads;
  std::vector<int> good(8, 0);
  for (size_t t = 0; t < good.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 4; ++round) {
        const bool use_hot = (t + round) % 2 == 0;
        auto got = ReadPieces(*store_, use_hot ? ih.digest : ic.digest);
        if (got.ok() && *got == (use_hot ? hot : cold)) ++good[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (size_t t = 0; t < good.size(); ++t) EXPECT_EQ(good[t], 4) << "thread " << t;
  auto st = store_->chunk_cache_stats();
  EXPECT_EQ(st.pinned, 0u);
  EXPECT_LE(st.usage, st.capacity);
  EXPECT_EQ(st.hits + st.misses, 16 * (ih.chunk_count + ic.chunk_count));
}

}  // namespace
}  // namespace silo::store
