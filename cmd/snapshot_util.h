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
};

inline Result<ResolvedPath> ResolveSnapshotPath(store::Store& store, std::string_view text) {
  SILO_ASSIGN_OR_RETURN(index::SnapshotSpec spec, index::ParseSnapshotSpec(text));
  ResolvedPath out;
  SILO_ASSIGN_OR_RETURN(out.snapshot, index::ResolveSnapshot(store, spec));
  SILO_ASSIGN_OR_RETURN(
      out.entry,
      index::WalkPath(store, out.snapshot.record.root, spec.path).WithContext(spec.name + "@" + out.snapshot.id));
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
