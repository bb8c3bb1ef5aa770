#include "store/chunker.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdio>

namespace silo::store {
namespace {

// 256 pseudo-random 64-bit values from splitmix64 with a fixed seed.
constexpr std::array<uint64_t, 256> MakeGear() {
  std::array<uint64_t, 256> g{};
  uint64_t x = 0x5349'4c4f'4344'4331ULL;  // "SILOCDC1"
  for (auto& v : g) {
    x += 0x9e3779b97f4a7c15ULL;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    v = z ^ (z >> 31);
  }
  return g;
}
constexpr std::array<uint64_t, 256> kGear = MakeGear();

// A mask of the `bits` most significant bits: the gear hash mixes the last 64 bytes into
// its high bits, so they make the best cut condition.
uint64_t TopBits(int bits) {
  return bits <= 0 ? 0 : ~0ULL << (64 - bits);
}

// Four blocks scanned side by side, so four independent dependency chains keep the core
// busy instead of one. The hash after a byte depends only on the last 64 bytes (older
// contributions are shifted out), so lanes 1 to 3 start exact after 64 bytes of warm-up;
// lane 0 continues from `*fp`. A cut in an earlier lane wins. Scans whole groups of
// 4 * kLaneBytes from `*i` below `limit`; returns true with `*i` just past the cut byte,
// or false with `*i` and `*fp` advanced past the groups scanned.
constexpr size_t kLaneBytes = 4096;
bool ScanLanes(const uint8_t* d, size_t* i, size_t limit, uint64_t mask, uint64_t* fp) {
  constexpr size_t kNone = ~size_t{0};
  while (limit - *i >= 4 * kLaneBytes) {
    const uint8_t* b0 = d + *i;
    const uint8_t* b1 = b0 + kLaneBytes;
    const uint8_t* b2 = b1 + kLaneBytes;
    const uint8_t* b3 = b2 + kLaneBytes;
    uint64_t f0 = *fp, f1 = 0, f2 = 0, f3 = 0;
    for (size_t t = 64; t > 0; --t) {
      f1 = (f1 << 1) + kGear[b1[-static_cast<ptrdiff_t>(t)]];
      f2 = (f2 << 1) + kGear[b2[-static_cast<ptrdiff_t>(t)]];
      f3 = (f3 << 1) + kGear[b3[-static_cast<ptrdiff_t>(t)]];
    }
    size_t hit[4] = {kNone, kNone, kNone, kNone};
    // The mask is a run of top bits, so `(f & mask) == 0` is `f <= ~mask`: the smallest of
    // the four lanes tells whether any lane matched.
    const uint64_t below = ~mask;
    for (size_t t = 0; t < kLaneBytes; ++t) {
      f0 = (f0 << 1) + kGear[b0[t]];
      f1 = (f1 << 1) + kGear[b1[t]];
      f2 = (f2 << 1) + kGear[b2[t]];
      f3 = (f3 << 1) + kGear[b3[t]];
      if (std::min(std::min(f0, f1), std::min(f2, f3)) <= below) [[unlikely]] {
        if ((f0 & mask) == 0 && hit[0] == kNone) hit[0] = t;
        if ((f1 & mask) == 0 && hit[1] == kNone) hit[1] = t;
        if ((f2 & mask) == 0 && hit[2] == kNone) hit[2] = t;
        if ((f3 & mask) == 0 && hit[3] == kNone) hit[3] = t;
      }
    }
    for (size_t lane = 0; lane < 4; ++lane) {
      if (hit[lane] != kNone) {
        *i += lane * kLaneBytes + hit[lane] + 1;
        return true;
      }
    }
    *fp = f3;
    *i += 4 * kLaneBytes;
  }
  return false;
}

}  // namespace

std::string ChunkParams::Encode() const {
  char buf[96];
  std::snprintf(buf, sizeof buf, "fastcdc-v1 min=%u avg=%u max=%u", min_size, avg_size, max_size);
  return buf;
}

Result<ChunkParams> ChunkParams::Decode(std::string_view text) {
  ChunkParams p;
  std::string s(text);
  if (std::sscanf(s.c_str(), "fastcdc-v1 min=%u avg=%u max=%u", &p.min_size, &p.avg_size, &p.max_size) != 3) {
    return Status::Unsupported("chunking parameters '" + s + "' not understood by this silo");
  }
  SILO_TRY(p.Validate());
  return p;
}

Status ChunkParams::Validate() const {
  if (min_size < 64 || !std::has_single_bit(avg_size) || min_size >= avg_size || avg_size >= max_size) {
    return Status::InvalidArgument("chunk parameters need 64 <= min < avg < max and avg a power of two, got " +
                                   Encode());
  }
  return Status::Ok();
}

Chunker::Chunker(const ChunkParams& params) : p_(params) {
  int bits = std::countr_zero(params.avg_size);
  mask_small_ = TopBits(bits + 1);
  mask_large_ = TopBits(bits - 1);
}

std::optional<size_t> Chunker::FindCut(ByteSpan data) {
  const size_t n = data.size();
  size_t i = 0;
  // Cut-point skipping: no boundary can fall below the minimum size.
  if (len_ < p_.min_size) {
    size_t skip = std::min<size_t>(p_.min_size - len_, n);
    len_ += skip;
    i = skip;
  }
  uint64_t fp = fp_;
  const uint8_t* d = data.data();
  // Two bytes per step: fp2 = (fp << 2) + (G[b0] << 1) + G[b1] depends on fp through one
  // shift and one add, halving the serial dependency chain of the byte-at-a-time form.
  // Both intermediate positions are tested, so cut points are exactly those of the
  // byte-at-a-time algorithm.
  auto scan = [&](size_t limit, uint64_t mask) -> bool {
    if (ScanLanes(d, &i, limit, mask, &fp)) return true;
    while (i + 2 <= limit) {
      uint64_t g0 = kGear[d[i]];
      uint64_t g1 = kGear[d[i + 1]];
      uint64_t fp1 = (fp << 1) + g0;
      uint64_t fp2 = (fp << 2) + (g0 << 1) + g1;
      if ((fp1 & mask) == 0) {
        fp = fp1;
        i += 1;
        return true;
      }
      fp = fp2;
      i += 2;
      if ((fp2 & mask) == 0) return true;
    }
    if (i < limit) {
      fp = (fp << 1) + kGear[d[i++]];
      if ((fp & mask) == 0) return true;
    }
    return false;
  };
  // Below the average size: the stricter mask; from there to the maximum: the looser one.
  if (len_ < p_.avg_size) {
    const size_t begin = i;
    const size_t limit = std::min<size_t>(n, i + (p_.avg_size - len_));
    if (scan(limit, mask_small_)) goto cut;
    len_ += i - begin;
  }
  if (len_ >= p_.avg_size) {
    const size_t begin = i;
    const size_t limit = std::min<size_t>(n, i + (p_.max_size - len_));
    if (scan(limit, mask_large_)) goto cut;
    len_ += i - begin;
    if (len_ >= p_.max_size) goto cut;
  }
  fp_ = fp;
  return std::nullopt;
cut:
  fp_ = 0;
  len_ = 0;
  return i;
}

}  // namespace silo::store
