#include "util/hash.h"

#include <openssl/evp.h>
#include <xxhash.h>

#include <stdexcept>
#include <utility>

namespace silo {
namespace {

// The digests, fetched from OpenSSL's provider once. EVP_sha256() is a legacy handle that
// OpenSSL 3 resolves again at every EVP_DigestInit_ex (a locked lookup): that cost 6 us
// per small hash against 2 us with the fetched method.
const EVP_MD* Fetch(const char* name, const EVP_MD* legacy) {
  const EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  return md ? md : legacy;
}

const EVP_MD* Md(EvpHash::Kind kind) {
  static const EVP_MD* const sha256 = Fetch("SHA256", EVP_sha256());
  static const EVP_MD* const sha1 = Fetch("SHA1", EVP_sha1());
  return kind == EvpHash::Kind::kSha256 ? sha256 : sha1;
}

}  // namespace

EvpHash::EvpHash(Kind kind) : kind_(kind), ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, Md(kind), nullptr) != 1) {
    throw std::runtime_error("OpenSSL: cannot initialise digest");
  }
}

EvpHash::~EvpHash() {
  EVP_MD_CTX_free(ctx_);
}

EvpHash::EvpHash(EvpHash&& o) noexcept : kind_(o.kind_), ctx_(std::exchange(o.ctx_, nullptr)) {}

EvpHash& EvpHash::operator=(EvpHash&& o) noexcept {
  if (this != &o) {
    EVP_MD_CTX_free(ctx_);
    kind_ = o.kind_;
    ctx_ = std::exchange(o.ctx_, nullptr);
  }
  return *this;
}

void EvpHash::Update(ByteSpan data) {
  EVP_DigestUpdate(ctx_, data.data(), data.size());
}

void EvpHash::Final(uint8_t* out) {
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, out, &len);
  EVP_DigestInit_ex(ctx_, Md(kind_), nullptr);
}

std::array<uint8_t, 32> Sha256::Final() {
  std::array<uint8_t, 32> out{};
  h_.Final(out.data());
  return out;
}

std::array<uint8_t, 32> Sha256::Of(ByteSpan data) {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, Md(EvpHash::Kind::kSha256), nullptr);
  return out;
}

std::array<uint8_t, 20> Sha1::Final() {
  std::array<uint8_t, 20> out{};
  h_.Final(out.data());
  return out;
}

uint64_t Xxh3(ByteSpan data) {
  return XXH3_64bits(data.data(), data.size());
}

std::string ToHex(ByteSpan data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(data.size() * 2, '0');
  for (size_t i = 0; i < data.size(); ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0xf];
  }
  return out;
}

static int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool FromHex(std::string_view hex, std::span<uint8_t> out) {
  if (hex.size() != out.size() * 2) return false;
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

}  // namespace silo
