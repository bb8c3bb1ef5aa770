// Private to transfer/: directory-relative filesystem helpers shared by snapshot, restore
// and archive code. Every path below a root is reached with openat(..., O_NOFOLLOW) one
// component at a time, so a symlink is never followed inside a tree.
#pragma once

#include <sys/stat.h>

#include <string>
#include <utility>
#include <vector>

#include "index/tree.h"
#include "util/fd.h"
#include "util/result.h"

namespace silo::transfer::fs {

// The names in directory `dirfd` (not "." or ".."), sorted by bytes. `what` names it in errors.
Result<std::vector<std::string>> ListDir(int dirfd, const std::string& what);

// Extended attributes of `name` in `dirfd` (not following a symlink), sorted by name.
// Filesystems without xattr support give an empty list.
Result<std::vector<std::pair<std::string, std::string>>> ReadXattrs(int dirfd, const std::string& name,
                                                                    const std::string& what);

// Type, mode, owner, mtime, size and rdev from a stat; false for a type silo cannot keep.
bool EntryFromStat(const struct stat& st, index::TreeEntry* e);

int64_t MtimeNs(const struct stat& st);
int64_t CtimeNs(const struct stat& st);

// Opens the directory `rel` ("a/b", "" for root itself) beneath `rootfd` without following
// symlinks; each component is validated like a tree entry name.
Result<Fd> OpenDirBeneath(int rootfd, const std::string& rel, const std::string& what);

// Removes `name` in `dirfd` (recursively when a directory, never following symlinks).
Status RemoveAt(int dirfd, const std::string& name, const std::string& what);

// "/proc/self/fd/<dirfd>/<name>": a path for the l*xattr calls that have no *at form.
std::string ProcPath(int dirfd, const std::string& name);

}  // namespace silo::transfer::fs
