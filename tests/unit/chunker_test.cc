#include "store/chunker.h"

#include <gtest/gtest.h>

#include <bit>
#include <set>
#include <vector>

#include "tests/support/store_test.h"

namespace silo::store {
namespace {

// Cut points of `data` fed in pieces of `piece` bytes.
std::vector<size_t> Cuts(const ChunkParams& p, std::string_view data, size_t piece) {
  Chunker c(p);
  std::vector<size_t> cuts;
  size_t chunk_start = 0, pos = 0;
  while (pos < data.size()) {
    size_t n = std::min(piece, data.size() - pos);
    ByteSpan span(reinterpret_cast<const uint8_t*>(data.data()) + pos, n);
    size_t used = 0;
    while (used < n) {
      auto cut = c.FindCut(span.subspan(used));
      if (!cut) break;
      used += *cut;
      cuts.push_back(pos + used);
      chunk_start = pos + used;
    }
    pos += n;
  }
  (void)chunk_start;
  return cuts;
}

ChunkParams Small() {
  return {1024, 4096, 16384};
}

TEST(Chunker, CutsRespectMinAndMax) {
  auto data = testing::RandomBytes(2 << 20, 1);
  auto cuts = Cuts(Small(), data, data.size());
  ASSERT_GT(cuts.size(), 50u);
  size_t prev = 0;
  for (size_t c : cuts) {
    EXPECT_GE(c - prev, 1024u);
    EXPECT_LE(c - prev, 16384u);
    prev = c;
  }
  double avg = static_cast<double>(cuts.back()) / static_cast<double>(cuts.size());
  EXPECT_GT(avg, 2048);
  EXPECT_LT(avg, 8192);
}

TEST(Chunker, StreamingGivesTheSameCutsWhateverTheWriteSizes) {
  auto data = testing::RandomBytes(1 << 20, 2);
  auto whole = Cuts(Small(), data, data.size());
  for (size_t piece : {1ul, 7ul, 1000ul, 4096ul, 65537ul}) {
    EXPECT_EQ(Cuts(Small(), data, piece), whole) << "piece " << piece;
  }
}

TEST(Chunker, LaneScansCutWhereTheByteAtATimeScanDoes) {
  // Regions this long go through the eight-lane scan (AVX-512 CPUs) or the four-lane one
  // when fed whole, the four-lane one when fed in pieces of 16 to 32 KiB, and the
  // byte-at-a-time one when fed a byte (or a few) at a time.
  ChunkParams big{4096, 65536, 1 << 20};
  auto data = testing::RandomBytes(8 << 20, 3);
  auto whole = Cuts(big, data, data.size());
  ASSERT_GT(whole.size(), 40u);
  EXPECT_EQ(Cuts(big, data, 1), whole);
  EXPECT_EQ(Cuts(big, data, 16383), whole);
  EXPECT_EQ(Cuts(big, data, 24 << 10), whole);
  // A cut in every lane position: repeat a 20 KiB random block so cuts recur at offsets
  // that land in every lane, not only lane 0.
  std::string repeated;
  auto block = testing::RandomBytes(20000, 4);
  while (repeated.size() < (4 << 20)) repeated += block;
  EXPECT_EQ(Cuts(big, repeated, repeated.size()), Cuts(big, repeated, 3));
  EXPECT_EQ(Cuts(big, repeated, 24 << 10), Cuts(big, repeated, 3));
}

TEST(Chunker, ConstantInputCutsAtMax) {
  std::string zeros(100000, '\0');
  auto cuts = Cuts(Small(), zeros, zeros.size());
  ASSERT_FALSE(cuts.empty());
  EXPECT_EQ(cuts.front(), 16384u);
}

TEST(Chunker, InsertionShiftsOnlyNearbyBoundaries) {
  auto data = testing::RandomBytes(1 << 20, 3);
  auto before = Cuts(Small(), data, data.size());
  std::string edited = data;
  edited.insert(edited.begin() + 500000, 'x');
  auto after = Cuts(Small(), edited, edited.size());
  std::set<size_t> a(before.begin(), before.end());
  size_t shared = 0;
  for (size_t c : after) {
    size_t original = c > 500000 ? c - 1 : c;
    shared += a.count(original);
  }
  EXPECT_GE(shared + 3, before.size());
}

TEST(Chunker, ParamsRoundTripAndValidate) {
  ChunkParams p;
  auto d = ChunkParams::Decode(p.Encode());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->min_size, p.min_size);
  EXPECT_EQ(d->avg_size, p.avg_size);
  EXPECT_EQ(d->max_size, p.max_size);
  EXPECT_FALSE(ChunkParams::Decode("rabin 1 2 3").ok());
  EXPECT_FALSE((ChunkParams{1024, 3000, 16384}).Validate().ok());
  EXPECT_FALSE((ChunkParams{8192, 4096, 16384}).Validate().ok());
}

}  // namespace
}  // namespace silo::store
