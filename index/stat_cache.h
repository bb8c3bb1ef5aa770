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
  bool sha1 = false;  // the content was stored with its sha1: alias
  friend bool operator==(const StatCacheValue&, const StatCacheValue&) = default;
};

std::string StatCacheKey(uint64_t device, uint64_t inode);
std::string EncodeStatCacheValue(const StatCacheValue& value);
// False when `data` is not a valid entry (treat as a miss).
bool DecodeStatCacheValue(std::string_view data, StatCacheValue* value);

// The directory cache beside it (index space DirCacheSpace(name)): for each directory the
// latest snapshot of NAME met, a fingerprint of what a scan sees of it without reading
// anything (every kept entry's name, inode, type, mode, owner, size, times and link count,
// and the trees of its subdirectories) and the tree it became. A directory whose
// fingerprint still matches is not looked at further: its tree is reused whole. Hints
// like the stat cache: the tree may have been collected since (callers check).
std::string DirCacheSpace(std::string_view snapshot_name);

struct DirCacheValue {
  store::Digest fingerprint;  // SHA-256 of the scan's view (see above)
  store::Digest tree;
  friend bool operator==(const DirCacheValue&, const DirCacheValue&) = default;
};

// Keys are StatCacheKey(device, inode) of the directory.
std::string EncodeDirCacheValue(const DirCacheValue& value);
// False when `data` is not a valid entry (treat as a miss).
bool DecodeDirCacheValue(std::string_view data, DirCacheValue* value);

}  // namespace silo::index
