// Differences between two snapshot trees, path by path. Subtrees with equal digests are
// skipped without being read, so a diff costs what changed, not what exists.
#pragma once

#include <functional>
#include <string>

#include "index/tree.h"
#include "store/store.h"

namespace silo::index {

enum class ChangeKind {
  kAdded,     // only in the second tree
  kRemoved,   // only in the first
  kChanged,   // content, type, size or symlink target differ
  kMetadata,  // same content; mode, owner, mtime, xattrs or hardlinks differ
};

// '+', '-', 'M', 'm'
char ChangeChar(ChangeKind kind);

struct TreeChange {
  ChangeKind kind;
  std::string path;  // relative, '/'-separated bytes
  EntryType type;    // of the newer side (of the removed entry for kRemoved)
};

// Calls `fn` for each change between trees `a` and `b`, in path order. Added and removed
// directories are reported with everything beneath them.
Status DiffTrees(store::Store& store, const store::Digest& a, const store::Digest& b,
                 const std::function<void(const TreeChange&)>& fn);

}  // namespace silo::index
