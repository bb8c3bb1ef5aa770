// Restoring a snapshot tree into a directory. Writes only what differs from what the
// directory already holds (a regular file whose size and mtime match is kept; its mode,
// owner and attributes are fixed if they differ), a file that replaces another through a
// temporary file and a rename (one in a directory the restore made, in place), metadata
// after content and directories' metadata last. Files are written in parallel.
//
// Safety: every path is reached with openat(..., O_NOFOLLOW) one component at a time, so a
// symlink in the target is replaced, never followed; tree names that could escape the
// target ("..", "/", NUL, empty) are refused when the tree is decoded.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "index/tree.h"
#include "store/store.h"
#include "util/progress.h"

namespace silo::transfer {

struct RestoreOptions {
  bool delete_extra = false;  // remove what the snapshot lacks
  // For a directory root: also give `target` itself the root's mode, owner, mtime and
  // attributes (set when the root's metadata was recorded, not made up).
  bool root_metadata = false;
  // Compare an existing file of the right size by content (SHA-256 against the snapshot)
  // instead of trusting a matching size and mtime; files that match are kept (their
  // metadata fixed), the others rewritten. Slower: reads every such file.
  bool verify_content = false;
  size_t threads = 0;  // parallel file writers; 0: one per hardware thread (at least 2)
  // Files are handed to the writers in batches of up to this many, each sorted by digest,
  // so the records of small files are read in the store's order (a batch also ends when
  // it holds a share of the process's file descriptors in open directories).
  size_t sort_window_files = 131072;
  Progress* progress = nullptr;  // counts bytes written and files done (items)
  std::function<void(const std::string&)> on_warning;
};

struct RestoreStats {
  uint64_t files_written = 0;
  uint64_t files_unchanged = 0;
  uint64_t files_verified = 0;  // of files_unchanged: kept after a content comparison
  uint64_t metadata_fixed = 0;  // kept files whose mode, owner or attributes were fixed
  uint64_t dirs = 0;
  uint64_t symlinks = 0;
  uint64_t hardlinks = 0;
  uint64_t specials = 0;
  uint64_t deleted = 0;
  uint64_t bytes_written = 0;
  uint64_t errors = 0;  // entries that could not be restored (warned)
};

// Restores `root` into directory `target` (created if missing): a directory entry's
// contents go into `target`; any other entry is written into it under its name. Fatal
// errors (the store failing, the target unusable, an interrupt, a hostile tree) stop the
// restore; per-entry errors are warned about and counted.
Result<RestoreStats> RestoreTree(store::Store& store, const index::TreeEntry& root, const std::string& target,
                                 const RestoreOptions& options);

}  // namespace silo::transfer
