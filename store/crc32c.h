// Hardware CRC32C for RocksDB. RocksDB checksums every block and every blob record with
// CRC32C; Debian's librocksdb is built portable, without SSE4.2, so it computes them with a
// table-driven loop (about 1 s of CPU per GiB stored). crc32c.cc defines RocksDB's exported
// `rocksdb::crc32c::Extend` with the SSE4.2 instruction; the library calls that function
// through its PLT, so the dynamic linker binds those calls to this definition (symbol
// interposition; the link exports the symbol, see store/CMakeLists.txt). The results are the
// same CRC32C values, so stores written with either implementation read with the other.
// On a CPU without SSE4.2 the library's own implementation is called.
#pragma once

#include <cstddef>
#include <cstdint>

namespace silo::store {

// True when RocksDB's CRC32C calls reach the SSE4.2 implementation in this program.
bool Crc32cIsHardware();

// CRC32C of `data` continuing from `crc` (the CRC32C of what came before; 0 to start).
uint32_t Crc32cExtend(uint32_t crc, const char* data, size_t n);

}  // namespace silo::store
