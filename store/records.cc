#include "store/records.h"

#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>

namespace silo::store {
namespace {

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    auto byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

template <typename T>
void PutFixed(std::string* out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));  // little-endian hosts only (x86-64, arm64)
  out->append(buf, sizeof(T));
}

template <typename T>
bool GetFixed(std::string_view* in, T* v) {
  if (in->size() < sizeof(T)) return false;
  std::memcpy(v, in->data(), sizeof(T));
  in->remove_prefix(sizeof(T));
  return true;
}

bool GetBytes(std::string_view* in, uint8_t* out, size_t n) {
  if (in->size() < n) return false;
  std::memcpy(out, in->data(), n);
  in->remove_prefix(n);
  return true;
}

constexpr uint8_t kRecordVersion = 1;
constexpr uint8_t kFlagInline = 1;
constexpr uint8_t kFlagSha1 = 2;

struct ZstdCCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct ZstdDCtxDeleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

}  // namespace

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string ObjectRecord::Encode() const {
  std::string out;
  out.reserve(32 + links.size() * 33 + (inlined ? inline_data.size() : chunks.size() * 36));
  out.push_back(static_cast<char>(kRecordVersion));
  out.push_back(static_cast<char>((inlined ? kFlagInline : 0) | (has_sha1 ? kFlagSha1 : 0)));
  PutVarint(&out, size);
  PutVarint(&out, static_cast<uint64_t>(created_us));
  if (has_sha1) out.append(reinterpret_cast<const char*>(sha1.data()), sha1.size());
  PutVarint(&out, links.size());
  for (const auto& l : links) {
    out.push_back(static_cast<char>(l.algo()));
    out.append(l.raw());
  }
  if (inlined) {
    out.append(inline_data);
  } else {
    PutVarint(&out, chunks.size());
    for (const auto& c : chunks) {
      out.append(KeyOf(c.id));
      PutVarint(&out, c.length);
    }
  }
  return out;
}

Result<ObjectRecord> ObjectRecord::Decode(std::string_view in) {
  auto bad = [](const char* what) { return Status::Corruption(std::string("object record: ") + what); };
  ObjectRecord r;
  uint8_t version = 0, flags = 0;
  if (!GetFixed(&in, &version) || !GetFixed(&in, &flags)) return bad("truncated header");
  if (version != kRecordVersion) return bad("unknown record version");
  r.inlined = (flags & kFlagInline) != 0;
  r.has_sha1 = (flags & kFlagSha1) != 0;
  uint64_t created = 0, nlinks = 0;
  if (!GetVarint(&in, &r.size) || !GetVarint(&in, &created)) return bad("truncated size");
  r.created_us = static_cast<int64_t>(created);
  if (r.has_sha1 && !GetBytes(&in, r.sha1.data(), 20)) return bad("truncated sha1");
  if (!GetVarint(&in, &nlinks) || nlinks > in.size() / 33) return bad("bad link count");
  r.links.reserve(nlinks);
  for (uint64_t i = 0; i < nlinks; ++i) {
    uint8_t algo = 0;
    std::array<uint8_t, 32> raw{};
    if (!GetFixed(&in, &algo) || !GetBytes(&in, raw.data(), 32)) return bad("truncated link");
    r.links.push_back(Digest::Sha256(raw));
  }
  if (r.inlined) {
    r.inline_data.assign(in);
    if (r.inline_data.size() != r.size) return bad("inline size mismatch");
    return r;
  }
  uint64_t nchunks = 0;
  if (!GetVarint(&in, &nchunks) || nchunks > in.size() / 33) return bad("bad chunk count");
  r.chunks.resize(nchunks);
  uint64_t total = 0;
  for (auto& c : r.chunks) {
    uint64_t len = 0;
    if (!GetBytes(&in, c.id.data(), 32) || !GetVarint(&in, &len)) return bad("truncated chunk list");
    c.length = static_cast<uint32_t>(len);
    total += len;
  }
  if (total != r.size) return bad("chunk lengths do not add up to the size");
  return r;
}

std::string ChunkMeta::Encode() const {
  std::string out;
  PutFixed(&out, written_us);
  PutFixed(&out, raw_length);
  PutFixed(&out, stored_length);
  if (pending) out.push_back('\1');  // absent in records written before the flag existed
  return out;
}

Result<ChunkMeta> ChunkMeta::Decode(std::string_view in) {
  ChunkMeta m;
  if (!GetFixed(&in, &m.written_us) || !GetFixed(&in, &m.raw_length) || !GetFixed(&in, &m.stored_length)) {
    return Status::Corruption("chunk metadata truncated");
  }
  m.pending = !in.empty() && in[0] != 0;
  return m;
}

EncodedChunk EncodeChunk(ByteSpan raw, int zstd_level) {
  thread_local std::unique_ptr<ZSTD_CCtx, ZstdCCtxDeleter> cctx(ZSTD_createCCtx());
  EncodedChunk out;
  if (zstd_level != 0 && raw.size() >= 4096) {
    // One streamed frame: the first 64 KiB are compressed and flushed as a probe, so
    // incompressible data (gzip layers, media) costs little, and compressible data goes on
    // in the same frame without compressing the probe's bytes twice (most chunks of a tree
    // of small files are under 64 KiB: the probe is the whole chunk).
    ZSTD_CCtx* c = cctx.get();
    ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, zstd_level);
    ZSTD_CCtx_setPledgedSrcSize(c, raw.size());
    // A hash table of 2^16 entries from level 3 up (level 3 itself takes 2^17 for large
    // inputs; zstd shrinks it further for small ones): on /usr/share + /usr/include that
    // costs 0.2% more output and saves about a sixth of the CPU, the larger table
    // missing the cache.
    if (zstd_level >= 3) ZSTD_CCtx_setParameter(c, ZSTD_c_hashLog, 16);
    const size_t sample = std::min<size_t>(raw.size(), 64 * 1024);
    const size_t bound = ZSTD_compressBound(raw.size());
    out.buf.reset(new char[bound]);
    ZSTD_outBuffer dst{out.buf.get(), bound, 0};
    ZSTD_inBuffer src{raw.data(), sample, 0};
    // With room for the whole bound, each call consumes all input and ends with 0 left.
    size_t left = ZSTD_compressStream2(c, &dst, &src, sample == raw.size() ? ZSTD_e_end : ZSTD_e_flush);
    bool worth = !ZSTD_isError(left) && left == 0 && dst.pos < sample - sample / 8;
    if (worth && sample < raw.size()) {
      src = ZSTD_inBuffer{raw.data(), raw.size(), sample};
      left = ZSTD_compressStream2(c, &dst, &src, ZSTD_e_end);
      worth = !ZSTD_isError(left) && left == 0 && src.pos == raw.size();
    }
    if (worth && dst.pos < raw.size() - raw.size() / 8) {
      out.compressed_size = dst.pos;
      out.is_compressed = true;
    } else {
      out.buf.reset();
    }
  }
  out.header.push_back(static_cast<char>(out.is_compressed ? ChunkCodec::kZstd : ChunkCodec::kRaw));
  PutFixed(&out.header, Xxh3(raw));
  PutFixed(&out.header, static_cast<uint32_t>(raw.size()));
  return out;
}

Status DecodeChunkView(std::string_view value, std::string* scratch, std::string_view* out) {
  thread_local std::unique_ptr<ZSTD_DCtx, ZstdDCtxDeleter> dctx(ZSTD_createDCtx());
  std::string_view in = value;
  uint8_t codec = 0;
  uint64_t sum = 0;
  uint32_t raw_len = 0;
  if (!GetFixed(&in, &codec) || !GetFixed(&in, &sum) || !GetFixed(&in, &raw_len)) {
    return Status::Integrity("chunk value truncated");
  }
  if (codec == static_cast<uint8_t>(ChunkCodec::kRaw)) {
    if (in.size() != raw_len) return Status::Integrity("chunk length mismatch");
    *out = in;
  } else if (codec == static_cast<uint8_t>(ChunkCodec::kZstd)) {
    scratch->resize(raw_len);
    size_t n = ZSTD_decompressDCtx(dctx.get(), scratch->data(), raw_len, in.data(), in.size());
    if (ZSTD_isError(n) || n != raw_len) return Status::Integrity("chunk does not decompress");
    *out = *scratch;
  } else {
    return Status::Integrity("unknown chunk codec");
  }
  if (Xxh3(AsBytes(*out)) != sum) return Status::Integrity("chunk checksum mismatch");
  return Status::Ok();
}

Status DecodeChunk(std::string_view value, std::string* out) {
  std::string_view view;
  SILO_TRY(DecodeChunkView(value, out, &view));
  if (view.data() != out->data()) out->assign(view);
  return Status::Ok();
}

std::string EncodeRefTarget(const Digest& d) {
  std::string out;
  out.push_back(static_cast<char>(d.algo()));
  out.append(d.raw());
  return out;
}

Result<Digest> DecodeRefTarget(std::string_view bytes) {
  Digest d;
  if (bytes.size() != 33 || static_cast<uint8_t>(bytes[0]) != static_cast<uint8_t>(Algo::kSha256) ||
      !Digest::FromRaw(bytes.substr(1), &d)) {
    return Status::Corruption("ref target record malformed");
  }
  return d;
}

}  // namespace silo::store
