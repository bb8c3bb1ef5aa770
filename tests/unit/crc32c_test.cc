// The SSE4.2 CRC32C that RocksDB's checksum calls are bound to: standard values, the same
// results as RocksDB's own implementation at every length and alignment, and proof that the
// binding took place.
#include "store/crc32c.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/support/store_test.h"  // RandomBytes

namespace silo::store {
namespace {

using ExtendFn = uint32_t (*)(uint32_t, const char*, size_t);

TEST(Crc32c, StandardValues) {
  // RFC 3720 (iSCSI) and the common check value.
  EXPECT_EQ(Crc32cExtend(0, "123456789", 9), 0xE3069283u);
  std::string zeros(32, '\0');
  EXPECT_EQ(Crc32cExtend(0, zeros.data(), zeros.size()), 0x8A9136AAu);
  std::string ones(32, '\xff');
  EXPECT_EQ(Crc32cExtend(0, ones.data(), ones.size()), 0x62A8AB43u);
  EXPECT_EQ(Crc32cExtend(0, "", 0), 0u);
}

TEST(Crc32c, MatchesRocksDbImplementation) {
  auto library = reinterpret_cast<ExtendFn>(dlsym(RTLD_NEXT, "_ZN7rocksdb6crc32c6ExtendEjPKcm"));
  ASSERT_NE(library, nullptr) << "librocksdb does not export crc32c::Extend";
  // Lengths around the three-lane groups of 3 x 256 and 3 x 4096 bytes, and several groups.
  std::string data = silo::testing::RandomBytes((1 << 20) + 64, 7);
  for (size_t offset : {0, 1, 3, 7}) {
    for (size_t n : {0, 1, 7, 8, 23, 24, 25, 100, 767, 768, 769, 1543, 4096, 12287, 12288, 12289, 13063,
                     3 * 12288 + 3 * 256 + 11, 1 << 20}) {
      const char* p = data.data() + offset;
      EXPECT_EQ(Crc32cExtend(0, p, n), library(0, p, n)) << "offset " << offset << " n " << n;
      // Extending in two steps equals one pass.
      uint32_t first = Crc32cExtend(0, p, n / 2);
      EXPECT_EQ(Crc32cExtend(first, p + n / 2, n - n / 2), library(0, p, n));
    }
  }
}

TEST(Crc32c, RocksDbCallsAreBoundHere) {
  if (!__builtin_cpu_supports("sse4.2")) GTEST_SKIP() << "no SSE4.2 on this CPU";
  EXPECT_TRUE(Crc32cIsHardware());
}

}  // namespace
}  // namespace silo::store
