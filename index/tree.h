// Snapshot trees: one directory's entries in a canonical binary encoding, stored as an
// object whose links are the entries' contents (file objects and subtrees), so gc keeps
// whatever a snapshot reaches without parsing this format.
//
// Canonical: entries sorted by name bytes, every field written in one fixed order, no
// optional padding — equal trees encode to equal bytes and so have equal digests. Names
// are bytes: anything a filesystem allows (spaces, newlines, non-UTF-8) except '/' and NUL,
// and never "", "." or "..". Pure logic, thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/digest.h"
#include "store/store.h"
#include "util/result.h"

namespace silo::index {

enum class EntryType : uint8_t {
  kFile = 1,
  kDir = 2,
  kSymlink = 3,
  kFifo = 4,
  kCharDevice = 5,
  kBlockDevice = 6,
  kSocket = 7,
};

// 'f', 'd', 'l', 'p', 'c', 'b', 's' as ls prints them.
char TypeChar(EntryType type);

struct TreeEntry {
  std::string name;  // bytes; see ValidateEntryName
  EntryType type = EntryType::kFile;
  uint32_t mode = 0;  // permission bits and setuid/setgid/sticky (st_mode & 07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime_ns = 0;  // nanoseconds since the epoch
  uint64_t size = 0;     // file size (0 for others)
  store::Digest digest;  // file content or subtree (sha256); unused for other types
  std::string target;    // symlink target bytes
  uint64_t rdev = 0;     // device number of character/block devices
  // Extended attributes, sorted by name (bytes).
  std::vector<std::pair<std::string, std::string>> xattrs;
  // Files sharing an inode within one snapshot share a non-zero group (numbered in the
  // order the scan meets them, so equal trees still get equal numbers); 0 when nlink is 1.
  uint64_t hardlink_group = 0;

  bool has_digest() const { return type == EntryType::kFile || type == EntryType::kDir; }
  friend bool operator==(const TreeEntry&, const TreeEntry&) = default;
};

struct Tree {
  std::vector<TreeEntry> entries;  // sorted by name bytes, unique names

  // The entry named `name`, or null.
  const TreeEntry* Find(std::string_view name) const;
};

// OK when `name` may name a tree entry: not empty, not "." or "..", no '/' and no NUL.
Status ValidateEntryName(std::string_view name);

// Sorts entries by name bytes and encodes them. Does not validate names (DecodeTree does,
// so a hostile tree is refused where it is read).
std::string EncodeTree(Tree tree);
// Decodes and validates: names (ValidateEntryName), strictly increasing order, known
// types, sha256 digests. Corruption naming the problem otherwise.
Result<Tree> DecodeTree(std::string_view data);
// The objects a tree references (file contents and subtrees), sorted and unique.
std::vector<store::Digest> TreeLinks(const Tree& tree);

// Reads tree `digest` from the store and decodes it; NotFound when absent, Corruption when
// it is not a valid tree. Thread-safe (as the store is).
Result<Tree> LoadTree(store::Store& store, const store::Digest& digest);
// Stores `tree` with its links; returns its digest (an existing equal tree is reused).
// With `group`, the tree is committed through it: visible once the group is flushed, and
// pinned by the group until then.
Result<store::Digest> StoreTree(store::Store& store, Tree tree, std::shared_ptr<store::CommitGroup> group = nullptr);
// Follows `path` ("a/b/c", "" for the root itself) down from tree `root`. Returns the
// entry named by the path (a synthetic directory entry for the root); NotFound naming the
// missing component otherwise. Components are validated like entry names.
Result<TreeEntry> WalkPath(store::Store& store, const store::Digest& root, std::string_view path);

}  // namespace silo::index
