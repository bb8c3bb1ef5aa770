#include "store/crc32c.h"

#include <dlfcn.h>
#include <nmmintrin.h>

#include <cstring>

namespace rocksdb::crc32c {
// RocksDB's declaration (util/crc32c.h, not installed by Debian).
uint32_t Extend(uint32_t init_crc, const char* data, size_t n);
}  // namespace rocksdb::crc32c

namespace silo::store {
namespace {

using ExtendFn = uint32_t (*)(uint32_t, const char*, size_t);

// The CRC32C register (no pre- or post-inversion) is linear over GF(2): the register after
// bytes A then B, starting from r, is Shift(register after A from r, |B|) xor the register
// after B from 0, where Shift(r, n) is the register after n zero bytes from r. A Shifter
// applies Shift for one fixed n by four table lookups; its tables come from running the
// instruction over n zero bytes from each of the 32 one-bit registers.
class Shifter {
 public:
  __attribute__((target("sse4.2"))) explicit Shifter(size_t n) {
    uint32_t basis[32];
    for (int bit = 0; bit < 32; ++bit) {
      uint64_t r = uint32_t{1} << bit;
      for (size_t i = 0; i < n; i += 8) r = _mm_crc32_u64(r, 0);
      basis[bit] = static_cast<uint32_t>(r);
    }
    for (int k = 0; k < 4; ++k) {
      for (uint32_t b = 0; b < 256; ++b) {
        uint32_t v = 0;
        for (int bit = 0; bit < 8; ++bit) {
          if (b & (1u << bit)) v ^= basis[8 * k + bit];
        }
        table_[k][b] = v;
      }
    }
  }

  uint32_t operator()(uint32_t r) const {
    return table_[0][r & 0xff] ^ table_[1][(r >> 8) & 0xff] ^ table_[2][(r >> 16) & 0xff] ^ table_[3][r >> 24];
  }

 private:
  uint32_t table_[4][256];
};

// Three lanes of `lane` bytes each (a multiple of 8) side by side: the instruction has a
// latency of three cycles and a throughput of one, so three independent registers keep it
// busy where one register would wait on itself. Consumes whole groups of 3 * lane bytes.
__attribute__((target("sse4.2"))) uint64_t ExtendLanes(uint64_t c, const char** data, size_t* n, size_t lane,
                                                       const Shifter& shift) {
  while (*n >= 3 * lane) {
    const char* p = *data;
    uint64_t c0 = c, c1 = 0, c2 = 0;
    for (size_t i = 0; i < lane; i += 8) {
      uint64_t a, b, d;
      std::memcpy(&a, p + i, 8);
      std::memcpy(&b, p + lane + i, 8);
      std::memcpy(&d, p + 2 * lane + i, 8);
      c0 = _mm_crc32_u64(c0, a);
      c1 = _mm_crc32_u64(c1, b);
      c2 = _mm_crc32_u64(c2, d);
    }
    c = shift(shift(static_cast<uint32_t>(c0)) ^ static_cast<uint32_t>(c1)) ^ static_cast<uint32_t>(c2);
    *data += 3 * lane;
    *n -= 3 * lane;
  }
  return c;
}

constexpr size_t kLongLane = 4096;
constexpr size_t kShortLane = 256;

__attribute__((target("sse4.2"))) uint32_t ExtendSse42(uint32_t crc, const char* data, size_t n) {
  static const Shifter long_shift(kLongLane);
  static const Shifter short_shift(kShortLane);
  uint64_t c = ~crc;
  while (n > 0 && (reinterpret_cast<uintptr_t>(data) & 7) != 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), static_cast<uint8_t>(*data++));
    --n;
  }
  c = ExtendLanes(c, &data, &n, kLongLane, long_shift);
  c = ExtendLanes(c, &data, &n, kShortLane, short_shift);
  while (n >= 8) {
    uint64_t a;
    std::memcpy(&a, data, 8);
    c = _mm_crc32_u64(c, a);
    data += 8;
    n -= 8;
  }
  while (n > 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), static_cast<uint8_t>(*data++));
    --n;
  }
  return ~static_cast<uint32_t>(c);
}

// RocksDB's own implementation, for CPUs without SSE4.2.
ExtendFn LibraryExtend() {
  static const ExtendFn fn = reinterpret_cast<ExtendFn>(dlsym(RTLD_NEXT, "_ZN7rocksdb6crc32c6ExtendEjPKcm"));
  return fn;
}

bool HaveSse42() {
  static const bool have = __builtin_cpu_supports("sse4.2");
  return have;
}

}  // namespace

uint32_t Crc32cExtend(uint32_t crc, const char* data, size_t n) {
  if (HaveSse42()) return ExtendSse42(crc, data, n);
  return LibraryExtend()(crc, data, n);
}

bool Crc32cIsHardware() {
  if (!HaveSse42()) return false;
  // Where the program's global lookup of RocksDB's symbol lands: here when interposed.
  void* bound = dlsym(RTLD_DEFAULT, "_ZN7rocksdb6crc32c6ExtendEjPKcm");
  return bound == reinterpret_cast<void*>(&rocksdb::crc32c::Extend);
}

}  // namespace silo::store

// The interposing definition. Exported from the executable (see store/CMakeLists.txt).
uint32_t rocksdb::crc32c::Extend(uint32_t init_crc, const char* data, size_t n) {
  return silo::store::Crc32cExtend(init_crc, data, n);
}
