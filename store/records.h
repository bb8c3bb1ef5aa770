// Binary encodings of what the store keeps in RocksDB (private to store/).
//
//   objects     sha256 (32 bytes)  -> ObjectRecord
//   aliases     sha1 (20 bytes)    -> sha256 (32 bytes)
//   chunks      chunk id (32)      -> chunk value: codec u8, xxh3 u64, raw length u32, payload
//   chunk_meta  chunk id (32)      -> ChunkMeta (written time, raw and stored length)
//   refs        name bytes         -> target digest (algo u8 + 32 bytes)
//   default     "format", "chunking", "inline_max" -> text
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/digest.h"
#include "util/result.h"

namespace silo::store {

using ChunkId = std::array<uint8_t, 32>;

inline std::string_view KeyOf(const ChunkId& id) {
  return {reinterpret_cast<const char*>(id.data()), id.size()};
}

struct ChunkRef {
  ChunkId id{};
  uint32_t length = 0;
};

struct ObjectRecord {
  uint64_t size = 0;
  int64_t created_us = 0;
  bool inlined = false;
  bool has_sha1 = false;
  std::array<uint8_t, 20> sha1{};
  std::vector<Digest> links;
  std::string inline_data;
  std::vector<ChunkRef> chunks;

  std::string Encode() const;
  static Result<ObjectRecord> Decode(std::string_view bytes);
};

struct ChunkMeta {
  int64_t written_us = 0;
  uint32_t raw_length = 0;
  uint32_t stored_length = 0;
  // The chunk's bytes were written without the WAL and may not have survived a crash:
  // nobody may deduplicate against it, and gc sweeps it after the grace period unless an
  // object references it. Cleared once the bytes are flushed (see WriteChunkUnlogged).
  bool pending = false;

  std::string Encode() const;
  static Result<ChunkMeta> Decode(std::string_view bytes);
};

enum class ChunkCodec : uint8_t { kRaw = 0, kZstd = 1 };
inline constexpr size_t kChunkHeaderSize = 1 + 8 + 4;

// A chunk value in two parts, so the raw bytes need not be copied to be stored:
// `header` followed by either `compressed` or the raw bytes.
struct EncodedChunk {
  std::string header;
  bool is_compressed = false;
  // The zstd frame when is_compressed, else empty.
  std::string_view compressed() const { return {buf.get(), compressed_size}; }
  size_t stored_size(size_t raw_size) const { return header.size() + (is_compressed ? compressed_size : raw_size); }

  // Not zero-filled (a std::string sized to zstd's bound would write every byte of it
  // first): about 2% of a put's CPU.
  std::unique_ptr<char[]> buf;
  size_t compressed_size = 0;
};

// Encodes a chunk, compressing with zstd when that saves at least 1/8.
EncodedChunk EncodeChunk(ByteSpan raw, int zstd_level);
// Decodes a chunk value into `out`, verifying the XXH3 checksum of the raw bytes.
Status DecodeChunk(std::string_view value, std::string* out);
// As DecodeChunk, without copying a raw (uncompressed) chunk: `*out` then points into
// `value`; a compressed one is decompressed into `scratch` and `*out` points there.
Status DecodeChunkView(std::string_view value, std::string* scratch, std::string_view* out);

std::string EncodeRefTarget(const Digest& d);
Result<Digest> DecodeRefTarget(std::string_view bytes);

int64_t NowMicros();

}  // namespace silo::store
