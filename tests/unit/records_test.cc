#include "store/records.h"

#include <gtest/gtest.h>

#include "tests/support/store_test.h"

namespace silo::store {
namespace {

TEST(ObjectRecord, RoundTripsChunkedAndInline) {
  ObjectRecord r;
  r.size = 30;
  r.created_us = 123456789;
  r.has_sha1 = true;
  r.sha1.fill(7);
  r.links.push_back(Digest::Sha256(Sha256::Of(AsBytes("a"))));
  r.chunks.push_back({Sha256::Of(AsBytes("x")), 10});
  r.chunks.push_back({Sha256::Of(AsBytes("y")), 20});
  auto d = ObjectRecord::Decode(r.Encode());
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->size, 30u);
  EXPECT_EQ(d->created_us, 123456789);
  EXPECT_EQ(d->sha1, r.sha1);
  EXPECT_EQ(d->links, r.links);
  ASSERT_EQ(d->chunks.size(), 2u);
  EXPECT_EQ(d->chunks[1].id, r.chunks[1].id);

  ObjectRecord in;
  in.inlined = true;
  in.inline_data = "hello";
  in.size = 5;
  auto di = ObjectRecord::Decode(in.Encode());
  ASSERT_TRUE(di.ok());
  EXPECT_EQ(di->inline_data, "hello");
}

TEST(ObjectRecord, TruncatedOrInconsistentRecordsAreCorruption) {
  ObjectRecord r;
  r.size = 10;
  r.chunks.push_back({Sha256::Of(AsBytes("x")), 10});
  std::string enc = r.Encode();
  for (size_t n = 0; n < enc.size(); ++n) {
    EXPECT_FALSE(ObjectRecord::Decode(enc.substr(0, n)).ok()) << n;
  }
  r.size = 11;  // lengths no longer add up
  EXPECT_EQ(ObjectRecord::Decode(r.Encode()).status().code(), Code::kCorruption);
}

TEST(ChunkCodec, CompressesWhenWorthItAndDetectsDamage) {
  std::string text;
  while (text.size() < 200000) text += "the quick brown fox jumps over the lazy dog\n";
  std::string random = testing::RandomBytes(200000, 9);
  for (const std::string* raw : {&text, &random}) {
    EncodedChunk enc = EncodeChunk(AsBytes(*raw), 1);
    EXPECT_EQ(enc.is_compressed, raw == &text);
    std::string value = enc.header + (enc.is_compressed ? enc.compressed : *raw);
    std::string out;
    ASSERT_TRUE(DecodeChunk(value, &out).ok());
    EXPECT_EQ(out, *raw);
    value[value.size() / 2] ^= 0x40;
    Status s = DecodeChunk(value, &out);
    EXPECT_EQ(s.code(), Code::kIntegrity);
  }
  std::string out;
  EXPECT_EQ(DecodeChunk("abc", &out).code(), Code::kIntegrity);
}

}  // namespace
}  // namespace silo::store
