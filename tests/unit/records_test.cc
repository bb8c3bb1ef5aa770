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

// The value the store writes for a chunk: the header, then the frame or the raw bytes.
std::string StoredValue(const EncodedChunk& enc, const std::string& raw) {
  return enc.header + (enc.is_compressed ? std::string(enc.compressed()) : raw);
}

TEST(ChunkCodec, CompressesWhenWorthItAndDetectsDamage) {
  std::string text;
  while (text.size() < 200000) text += "the quick brown fox jumps over the lazy dog\n";
  std::string random = testing::RandomBytes(200000, 9);
  for (const std::string* raw : {&text, &random}) {
    EncodedChunk enc = EncodeChunk(AsBytes(*raw), 1);
    EXPECT_EQ(enc.is_compressed, raw == &text);
    std::string value = StoredValue(enc, *raw);
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

// The probe (the first 64 KiB, flushed) and the rest form one zstd frame: every size
// around the probe's edge round-trips; a compressible tail behind an incompressible head
// is stored raw (the probe decides), and a compressible head with a random tail is
// compressed only when the whole still saves an eighth.
TEST(ChunkCodec, TheProbeAndTheRestMakeOneFrameAtEverySize) {
  std::string text;
  while (text.size() < 300000) text += "pack my box with five dozen liquor jugs " + std::to_string(text.size()) + "\n";
  for (size_t n :
       {size_t{4095}, size_t{4096}, size_t{65535}, size_t{65536}, size_t{65537}, size_t{131072}, size_t{300000}}) {
    for (int level : {1, 3, 9}) {
      std::string raw = text.substr(0, n);
      EncodedChunk enc = EncodeChunk(AsBytes(raw), level);
      EXPECT_EQ(enc.is_compressed, n >= 4096) << n << " at level " << level;
      if (enc.is_compressed) {
        EXPECT_LT(enc.compressed().size(), raw.size() / 2) << n;
      }
      std::string out;
      ASSERT_TRUE(DecodeChunk(StoredValue(enc, raw), &out).ok()) << n;
      EXPECT_EQ(out, raw) << n << " at level " << level;
    }
  }
  std::string random_head = testing::RandomBytes(65536, 3) + text.substr(0, 200000);
  EXPECT_FALSE(EncodeChunk(AsBytes(random_head), 3).is_compressed);
  std::string random_tail = text.substr(0, 65536) + testing::RandomBytes(600000, 4);
  EXPECT_FALSE(EncodeChunk(AsBytes(random_tail), 3).is_compressed);
  std::string mostly_text = text.substr(0, 200000) + testing::RandomBytes(20000, 5);
  EncodedChunk enc = EncodeChunk(AsBytes(mostly_text), 3);
  ASSERT_TRUE(enc.is_compressed);
  std::string out;
  ASSERT_TRUE(DecodeChunk(StoredValue(enc, mostly_text), &out).ok());
  EXPECT_EQ(out, mostly_text);
}

}  // namespace
}  // namespace silo::store
