// Object names: "sha256:<64 hex>" for every object, "sha1:<40 hex>" as an alias that
// callers naming file contents by SHA-1 (dsync, git) may use.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "util/hash.h"
#include "util/result.h"

namespace silo::store {

enum class Algo : uint8_t { kSha256 = 1, kSha1 = 2 };

class Digest {
 public:
  Digest() = default;
  static Digest Sha256(const std::array<uint8_t, 32>& bytes);
  static Digest Sha1(const std::array<uint8_t, 20>& bytes);
  // Parses "sha256:<hex>" or "sha1:<hex>"; the error names the input and what is wrong.
  static Result<Digest> Parse(std::string_view text);
  // Builds a SHA-256 digest from 32 raw bytes (a database key); false on wrong length.
  static bool FromRaw(std::string_view raw, Digest* out);

  Algo algo() const { return algo_; }
  bool is_sha256() const { return algo_ == Algo::kSha256; }
  size_t size() const { return algo_ == Algo::kSha256 ? 32 : 20; }
  ByteSpan bytes() const { return {bytes_.data(), size()}; }
  // The raw bytes as a string_view (database keys).
  std::string_view raw() const { return {reinterpret_cast<const char*>(bytes_.data()), size()}; }
  std::string hex() const { return ToHex(bytes()); }
  std::string ToString() const;
  // "sha256:0123456789ab" for messages.
  std::string Short() const;

  friend bool operator==(const Digest& a, const Digest& b) { return a.algo_ == b.algo_ && a.bytes_ == b.bytes_; }
  friend auto operator<=>(const Digest& a, const Digest& b) {
    if (auto c = a.algo_ <=> b.algo_; c != 0) return c;
    return a.bytes_ <=> b.bytes_;
  }

 private:
  Algo algo_ = Algo::kSha256;
  std::array<uint8_t, 32> bytes_{};
};

struct DigestHash {
  size_t operator()(const Digest& d) const {
    size_t h;
    std::memcpy(&h, d.bytes().data(), sizeof h);
    return h;
  }
};

}  // namespace silo::store
