// BlobPipe between a real writer thread and a reader: every byte arrives once and in order,
// reads come in batches of a quarter of the ring (not one small write at a time), and a
// writer's error or a reader that stops ends the other side cleanly.
#include "transfer/blob_pipe.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace silo::testing {
namespace {

using transfer::BlobPipe;

std::vector<uint8_t> Pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 131 + i / 977) & 0xff);
  return v;
}

TEST(BlobPipeTest, SmallWritesArriveInOrderAndInBatches) {
  constexpr size_t kCapacity = 64 << 10;
  const std::vector<uint8_t> data = Pattern((3 << 20) + 123);
  BlobPipe pipe(kCapacity);
  std::thread writer([&] {
    for (size_t off = 0; off < data.size(); off += 1000) {
      size_t n = std::min<size_t>(1000, data.size() - off);
      ASSERT_TRUE(pipe.Write(ByteSpan(data.data() + off, n)));
    }
    pipe.CloseWrite(Status::Ok());
  });
  std::vector<uint8_t> got;
  std::vector<uint8_t> buf(512 << 10);
  size_t reads = 0, short_reads = 0;
  for (;;) {
    auto n = pipe.Read(buf);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    if (*n == 0) break;
    ++reads;
    if (*n < kCapacity / 4) ++short_reads;
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
  }
  writer.join();
  EXPECT_EQ(got, data);
  // Only the last read may be smaller than a batch (the writer wrote 1000 bytes at a time).
  EXPECT_LE(short_reads, 1u) << reads << " reads";
}

TEST(BlobPipeTest, WriterErrorReachesTheReaderAfterAPartialBatch) {
  BlobPipe pipe(64 << 10);
  std::thread writer([&] {
    std::vector<uint8_t> some(100, 7);
    ASSERT_TRUE(pipe.Write(some));
    pipe.CloseWrite(Status::Integrity("digest mismatch"));
  });
  std::vector<uint8_t> buf(1 << 20);
  auto n = pipe.Read(buf);
  writer.join();
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().ToString().find("digest mismatch"), std::string::npos);
}

TEST(BlobPipeTest, AReaderThatStopsDropsLaterWrites) {
  BlobPipe pipe(4096);
  pipe.CloseRead();
  std::vector<uint8_t> big(1 << 20, 1);
  EXPECT_FALSE(pipe.Write(big));  // does not block on the full ring
}

}  // namespace
}  // namespace silo::testing
