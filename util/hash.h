// Streaming hashes: SHA-256 and SHA-1 through OpenSSL EVP (which uses the CPU's SHA
// instructions), and XXH3-64 for cheap integrity checks. Each owns its C handle (RAII).
// Not thread-safe; one instance per stream.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

struct evp_md_ctx_st;
struct XXH3_state_s;

namespace silo {

using ByteSpan = std::span<const uint8_t>;

class EvpHash {
 public:
  enum class Kind { kSha256, kSha1 };
  explicit EvpHash(Kind kind);
  ~EvpHash();
  EvpHash(EvpHash&&) noexcept;
  EvpHash& operator=(EvpHash&&) noexcept;
  EvpHash(const EvpHash&) = delete;
  EvpHash& operator=(const EvpHash&) = delete;

  void Update(ByteSpan data);
  // Writes the digest (32 bytes for SHA-256, 20 for SHA-1) and resets for reuse.
  void Final(uint8_t* out);
  size_t size() const { return kind_ == Kind::kSha256 ? 32 : 20; }

 private:
  Kind kind_;
  evp_md_ctx_st* ctx_ = nullptr;
};

class Sha256 {
 public:
  Sha256() : h_(EvpHash::Kind::kSha256) {}
  void Update(ByteSpan data) { h_.Update(data); }
  std::array<uint8_t, 32> Final();
  static std::array<uint8_t, 32> Of(ByteSpan data);

 private:
  EvpHash h_;
};

class Sha1 {
 public:
  Sha1() : h_(EvpHash::Kind::kSha1) {}
  void Update(ByteSpan data) { h_.Update(data); }
  std::array<uint8_t, 20> Final();

 private:
  EvpHash h_;
};

// One-shot XXH3-64.
uint64_t Xxh3(ByteSpan data);

std::string ToHex(ByteSpan data);
// Decodes lowercase or uppercase hex; false when `hex` is not exactly out.size()*2 hex digits.
bool FromHex(std::string_view hex, std::span<uint8_t> out);

inline ByteSpan AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace silo
