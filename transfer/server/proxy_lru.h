// Least-recently-used bookkeeping and eviction for the pull-through cache (proxy_cache.h).
//
// Which refs the cache made: index space "proxy-refs", key = the ref name
// ("image/docker.io/library/nginx:1.27" or "…@sha256:…"), value = "<digest> <unix seconds
// of the last upstream check>". A ref counts as the cache's only while it still points at
// that digest: a push or an explicit pull that moves it makes it the user's, and eviction
// never touches it.
//
// Last access: Touch() records the time in memory (a map from object to seconds, one
// mutex); Flush() writes the batch to index space "proxy-access" (key = the 32 raw SHA-256
// bytes, value = 8 bytes big-endian unix seconds), so a busy server costs one small write
// batch per flush, not one write per request.
//
// Evict(): the cache's size is the sum of the distinct objects (manifests and present
// blobs) under the cache's refs; an image's last access is the newest access of any of its
// objects. While the size exceeds the cap, the least recently used image's ref is deleted
// (only if it still points where the cache set it). Then an online collection
// (Store::CollectGarbage) removes what no ref reaches any more; objects shared with images
// pushed or pulled explicitly stay, as do objects a running response is reading (every
// store reader pins its object, see store/reader.cc).
//
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "store/store.h"
#include "util/result.h"

namespace silo::server {

inline constexpr std::string_view kProxyRefsSpace = "proxy-refs";
inline constexpr std::string_view kProxyAccessSpace = "proxy-access";

// A "proxy-refs" value.
struct ProxyMark {
  store::Digest digest;
  int64_t checked = 0;  // unix seconds
  std::string Encode() const;
  static std::optional<ProxyMark> Decode(std::string_view value);
};

struct EvictReport {
  uint64_t cache_bytes = 0;  // before eviction
  uint64_t images_evicted = 0;
  uint64_t bytes_evicted = 0;  // of the evicted images' objects no other cached image holds
  bool collected = false;      // whether gc ran
  store::GcReport gc;
};

class ProxyLru {
 public:
  explicit ProxyLru(store::Store& store) : store_(store) {}

  // Records an access to `digest` now (memory only until Flush()).
  void Touch(const store::Digest& digest);
  // Writes the recorded accesses to the store; returns how many.
  Result<size_t> Flush();

  // Evicts least recently used cache refs until the cache holds at most `cap` bytes, then
  // collects garbage with `grace` (objects younger than it stay; see GcOptions). Flushes
  // first.
  Result<EvictReport> Evict(uint64_t cap, std::chrono::seconds grace);

 private:
  store::Store& store_;
  std::mutex mu_;
  std::unordered_map<std::string, int64_t> pending_;  // raw digest -> unix seconds
};

int64_t UnixNow();

}  // namespace silo::server
