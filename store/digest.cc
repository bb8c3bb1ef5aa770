#include "store/digest.h"

namespace silo::store {

Digest Digest::Sha256(const std::array<uint8_t, 32>& bytes) {
  Digest d;
  d.algo_ = Algo::kSha256;
  d.bytes_ = bytes;
  return d;
}

Digest Digest::Sha1(const std::array<uint8_t, 20>& bytes) {
  Digest d;
  d.algo_ = Algo::kSha1;
  std::memcpy(d.bytes_.data(), bytes.data(), 20);
  return d;
}

Result<Digest> Digest::Parse(std::string_view text) {
  auto fail = [&](std::string_view why) {
    return Status::InvalidArgument("digest '" + std::string(text) + "': " + std::string(why));
  };
  auto colon = text.find(':');
  if (colon == std::string_view::npos) return fail("expected sha256:<64 hex digits> or sha1:<40 hex digits>");
  std::string_view algo = text.substr(0, colon);
  std::string_view hex = text.substr(colon + 1);
  Digest d;
  if (algo == "sha256") {
    d.algo_ = Algo::kSha256;
  } else if (algo == "sha1") {
    d.algo_ = Algo::kSha1;
  } else {
    return fail("unsupported algorithm '" + std::string(algo) + "' (sha256 or sha1)");
  }
  if (hex.size() != d.size() * 2) {
    return fail("expected " + std::to_string(d.size() * 2) + " hex digits, got " + std::to_string(hex.size()));
  }
  if (!FromHex(hex, std::span<uint8_t>(d.bytes_.data(), d.size()))) return fail("not hexadecimal");
  return d;
}

bool Digest::FromRaw(std::string_view raw, Digest* out) {
  if (raw.size() != 32) return false;
  out->algo_ = Algo::kSha256;
  std::memcpy(out->bytes_.data(), raw.data(), 32);
  return true;
}

std::string Digest::ToString() const {
  return (algo_ == Algo::kSha256 ? "sha256:" : "sha1:") + hex();
}

std::string Digest::Short() const {
  return ToString().substr(0, algo_ == Algo::kSha256 ? 19 : 17);
}

}  // namespace silo::store
