// Taking a snapshot of directories: scan (fstatat relative to directory fds, never
// following symlinks), read new and changed files in parallel into the store (chunked
// and deduplicated by the store; SHA-1 aliased on request), build canonical trees bottom-up, and
// commit a snapshot record under `snapshot/<name>/<id>`. Unchanged files are recognised
// by the stat cache (index/stat_cache.h) and not read again.
//
// Nothing is visible until the final commit: an interrupted or failed snapshot leaves the
// earlier ones as they were (its stored contents are unreferenced; gc reclaims them).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "index/snapshot.h"
#include "store/store.h"
#include "util/progress.h"

namespace silo::transfer {

struct SnapshotSourceSpec {
  std::string key;             // the entry name when the snapshot holds several sources
  std::string path;            // directory to snapshot
  bool ignore_hidden = false;  // skip names starting with '.'
  bool leaf_only = false;      // do not keep directories that end up empty
};

struct SnapshotRequest {
  std::string name;
  std::vector<SnapshotSourceSpec> sources;
  // Put the single source's contents at the snapshot root (otherwise each source is a
  // directory named by its key). Ignored with several sources.
  bool top_is_source = true;
  // Globs (fnmatch): with a '/', matched against the path relative to the source root;
  // without, against each name. `.siloignore` files add patterns for their directory and
  // below (one per line, '#' comments).
  std::vector<std::string> excludes;
  bool use_stat_cache = true;
  // Also record a sha1: alias for every file's content (dsync names contents by SHA-1).
  // Costs a second hash of every byte read. Files the caches vouch for were stored
  // without one are read again.
  bool sha1_alias = false;
  size_t threads = 0;                                  // parallel file readers; 0: one per hardware thread (at least 2)
  Progress* progress = nullptr;                        // counts bytes read and files met (items)
  std::function<void(const std::string&)> on_warning;  // skipped entries and races
  // For tests: called on a reader thread after each block of a file is read (its path as
  // warnings name it, and the bytes read so far), so a test can change the file mid-read.
  std::function<void(const std::string& path, uint64_t offset)> after_read_block;
};

struct SnapshotStats {
  uint64_t files_new = 0;        // read; no stat-cache entry for their inode
  uint64_t files_changed = 0;    // read; their stat-cache entry was stale
  uint64_t files_unchanged = 0;  // not read: the stat cache matched
  uint64_t dirs = 0;
  uint64_t symlinks = 0;
  uint64_t specials = 0;             // fifos and devices
  uint64_t skipped = 0;              // excluded by an error or an unsupported type (warned)
  uint64_t excluded = 0;             // matched an exclude pattern or hidden
  uint64_t changed_during_read = 0;  // a file kept changing; stored as last read (warned)
  uint64_t bytes_read = 0;
  uint64_t bytes_added = 0;   // new stored bytes, contents and trees (after dedup and compression)
  uint64_t total_bytes = 0;   // sum of file sizes in the snapshot
  uint64_t errors = 0;        // entries that could not be read (warned, left out)
  uint64_t cache_pruned = 0;  // stat-cache entries of files no longer met, removed
};

struct SnapshotResult {
  index::SnapshotInfo snapshot;
  SnapshotStats stats;
};

// Takes the snapshot. Errors: a source that is not a directory, the store failing, an
// interrupt. Per-entry read errors are warned about, counted in stats.errors and left out.
Result<SnapshotResult> TakeSnapshot(store::Store& store, const SnapshotRequest& request);

}  // namespace silo::transfer
