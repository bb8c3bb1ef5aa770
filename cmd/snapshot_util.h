// Shared by the snapshot commands: resolving "NAME[@ID][:PATH]" to a snapshot and an entry
// inside it, and printing warnings.
#pragma once

#include <cstdio>
#include <string>

#include "index/snapshot.h"
#include "index/tree.h"
#include "store/store.h"

namespace silo::cmd {

struct ResolvedPath {
  index::SnapshotInfo snapshot;
  index::TreeEntry entry;  // what PATH names (the snapshot root when there is no PATH)
  // Whether `entry` carries recorded metadata (false for a root silo made up: several
  // sources, or a record without a root entry).
  bool has_metadata = false;
};

inline Result<ResolvedPath> ResolveSnapshotPath(store::Store& store, std::string_view text) {
  SILO_ASSIGN_OR_RETURN(index::SnapshotSpec spec, index::ParseSnapshotSpec(text));
  ResolvedPath out;
  SILO_ASSIGN_OR_RETURN(out.snapshot, index::ResolveSnapshot(store, spec));
  SILO_ASSIGN_OR_RETURN(
      out.entry,
      index::WalkPath(store, out.snapshot.record.root, spec.path).WithContext(spec.name + "@" + out.snapshot.id));
  bool is_root = spec.path.find_first_not_of('/') == std::string::npos;
  out.has_metadata = !is_root || out.snapshot.record.root_entry.has_value();
  if (is_root && out.snapshot.record.root_entry) out.entry = *out.snapshot.record.root_entry;
  if (out.entry.name.empty()) {
    std::string p = spec.path;
    while (!p.empty() && p.back() == '/') p.pop_back();
    out.entry.name = p.substr(p.rfind('/') == std::string::npos ? 0 : p.rfind('/') + 1);
  }
  return out;
}

inline void PrintWarning(const std::string& m) {
  std::fprintf(stderr, "silo: warning: %s\n", m.c_str());
}

}  // namespace silo::cmd
