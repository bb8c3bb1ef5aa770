// The stat cache: for each file a snapshot has read, what it looked like (size, mtime,
// ctime) and the content object it became, keyed by (device, inode). A later snapshot
// trusts an entry whose size, mtime and ctime all still match, and does not read the file
// again. Each snapshot name has its own cache, the store index space
// StatCacheSpace(name), so that a snapshot can prune the entries of files it no longer
// sees without touching another name's. Entries are hints, never roots (an entry may name
// an object gc has since removed; callers check).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "store/digest.h"

namespace silo::index {

// "statcache/NAME": the index space of snapshot name NAME's stat cache.
std::string StatCacheSpace(std::string_view snapshot_name);

struct StatCacheValue {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  store::Digest digest;
  friend bool operator==(const StatCacheValue&, const StatCacheValue&) = default;
};

std::string StatCacheKey(uint64_t device, uint64_t inode);
std::string EncodeStatCacheValue(const StatCacheValue& value);
// False when `data` is not a valid entry (treat as a miss).
bool DecodeStatCacheValue(std::string_view data, StatCacheValue* value);

}  // namespace silo::index
