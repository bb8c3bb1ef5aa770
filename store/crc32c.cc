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

__attribute__((target("sse4.2"))) uint32_t ExtendSse42(uint32_t crc, const char* data, size_t n) {
  uint64_t c = ~crc;
  while (n > 0 && (reinterpret_cast<uintptr_t>(data) & 7) != 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), static_cast<uint8_t>(*data++));
    --n;
  }
  // Three independent streams hide the instruction's 3-cycle latency.
  while (n >= 24) {
    uint64_t a, b, d;
    std::memcpy(&a, data, 8);
    std::memcpy(&b, data + 8, 8);
    std::memcpy(&d, data + 16, 8);
    c = _mm_crc32_u64(c, a);
    c = _mm_crc32_u64(c, b);
    c = _mm_crc32_u64(c, d);
    data += 24;
    n -= 24;
  }
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
