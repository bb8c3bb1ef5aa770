#include "store/chunker.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdio>
#include <iterator>

// GCC 12 warns of an uninitialized variable inside its own AVX-512 intrinsics when they are
// inlined (a known false positive of `_mm512_undefined_epi32`).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

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

// ScanLanes with eight lanes in one AVX-512 register, for CPUs that have it (same contract,
// groups of 8 * kLaneBytes). Each step gathers the eight lanes' gear values at once; the
// input bytes come eight at a time per lane from one gather of 64-bit words, so the load
// ports see about one load per byte and lane instead of two.
#define SILO_AVX512 __attribute__((target("avx512f")))

// The eight 64-bit words at `at + offsets[lane]`, one per lane.
SILO_AVX512 inline __m512i Words8(const uint8_t* at, __m512i offsets) {
  return _mm512_i64gather_epi64(offsets, reinterpret_cast<const long long*>(at), 1);
}

// Feeds each lane the low byte of its word, then shifts the word down a byte.
SILO_AVX512 inline __m512i Feed8(__m512i f, __m512i* words) {
  const __m512i g = _mm512_i64gather_epi64(_mm512_and_si512(*words, _mm512_set1_epi64(0xff)),
                                           reinterpret_cast<const long long*>(kGear.data()), 8);
  *words = _mm512_srli_epi64(*words, 8);
  return _mm512_add_epi64(_mm512_slli_epi64(f, 1), g);
}

SILO_AVX512 bool ScanLanes8(const uint8_t* d, size_t* i, size_t limit, uint64_t mask, uint64_t* fp) {
  constexpr long long L = kLaneBytes;
  const __m512i lane_offsets = _mm512_setr_epi64(0, L, 2 * L, 3 * L, 4 * L, 5 * L, 6 * L, 7 * L);
  // Lanes 1 to 7 warm up on the 64 bytes before them (inside the previous lane). Lane 0
  // continues from *fp; the bytes before it may lie outside `d`, so it warms up on lane
  // 1's, and that result is replaced.
  const __m512i warm_offsets = _mm512_setr_epi64(L, L, 2 * L, 3 * L, 4 * L, 5 * L, 6 * L, 7 * L);
  const __m512i below = _mm512_set1_epi64(static_cast<long long>(~mask));
  while (limit - *i >= 8 * kLaneBytes) {
    const uint8_t* b0 = d + *i;
    __m512i f = _mm512_setzero_si512();
    for (size_t t = 0; t < 64; t += 8) {
      __m512i w = Words8(b0 - 64 + t, warm_offsets);
      for (int j = 0; j < 8; ++j) f = Feed8(f, &w);
    }
    f = _mm512_mask_mov_epi64(f, 1, _mm512_set1_epi64(static_cast<long long>(*fp)));
    size_t hit[8];
    std::fill(std::begin(hit), std::end(hit), ~size_t{0});
    unsigned pending = 0xff;  // lanes without a hit yet
    for (size_t t = 0; t < kLaneBytes; t += 8) {
      __m512i w = Words8(b0 + t, lane_offsets);
      for (size_t j = 0; j < 8; ++j) {
        f = Feed8(f, &w);
        // As in ScanLanes: the mask is a run of top bits, so a match is `f <= ~mask`.
        const unsigned m = _mm512_cmple_epu64_mask(f, below) & pending;
        if (m != 0) [[unlikely]] {
          for (unsigned lane = 0; lane < 8; ++lane) {
            if (m & (1u << lane)) hit[lane] = t + j;
          }
          pending &= ~m;
        }
      }
    }
    for (size_t lane = 0; lane < 8; ++lane) {
      if (hit[lane] != ~size_t{0}) {
        *i += lane * kLaneBytes + hit[lane] + 1;
        return true;
      }
    }
    alignas(64) uint64_t last[8];
    _mm512_store_si512(last, f);
    *fp = last[7];
    *i += 8 * kLaneBytes;
  }
  return false;
}

const bool kHaveAvx512 = __builtin_cpu_supports("avx512f");

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
    if (kHaveAvx512 && ScanLanes8(d, &i, limit, mask, &fp)) return true;
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
