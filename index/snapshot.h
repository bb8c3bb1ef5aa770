// Snapshot records and their names. A record is a store object that links to its root
// trees; it is kept alive by the ref `snapshot/<NAME>/<ID>`, where ID is the first 12 hex
// digits of the record's SHA-256. On the command line a snapshot is
//   NAME        the latest snapshot of NAME (by recorded time)
//   NAME@ID     a specific one (ID: any unique prefix of at least 4 hex digits)
//   …:PATH      a path inside it ("NAME:etc/hosts", "NAME@1a2b3c:src")
// NAME is [A-Za-z0-9._-]+ and does not start with '.'.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "index/tree.h"
#include "store/store.h"
#include "util/result.h"

namespace silo::index {

struct SnapshotSource {
  std::string key;     // the source's name in the snapshot ("p0", or the directory's base name)
  std::string path;    // absolute path it was taken from (bytes)
  store::Digest tree;  // its root tree
};

struct SnapshotRecord {
  std::string name;
  int64_t time_ns = 0;  // when the snapshot was started, UTC nanoseconds
  std::string host;
  // The previous snapshot of the same name, when there was one. Not a link: forgetting a
  // parent lets gc reclaim it even while its children live.
  std::optional<store::Digest> parent;
  // What restore materializes: the single source's tree, or a tree with one directory per
  // source key when there are several.
  store::Digest root;
  std::vector<SnapshotSource> sources;
  // The metadata (mode, owner, mtime, attributes) of the directory `root` was taken from,
  // when the root is a single source's own tree; its name is the source key and its
  // digest `root`. Absent for several sources (the root is then a tree silo made).
  std::optional<TreeEntry> root_entry;
  uint64_t files = 0;
  uint64_t dirs = 0;
  uint64_t bytes = 0;  // sum of file sizes
};

std::string EncodeSnapshot(const SnapshotRecord& record);
Result<SnapshotRecord> DecodeSnapshot(std::string_view data);
// root and every source tree: the record's links.
std::vector<store::Digest> SnapshotLinks(const SnapshotRecord& record);

Status ValidateSnapshotName(std::string_view name);
// "snapshot/NAME/"
std::string SnapshotRefPrefix(std::string_view name);
std::string SnapshotId(const store::Digest& record_digest);

struct SnapshotSpec {
  std::string name;
  std::string id;    // empty: latest
  std::string path;  // inside the snapshot, "" for its root
  bool has_path = false;
};
Result<SnapshotSpec> ParseSnapshotSpec(std::string_view text);

struct SnapshotInfo {
  std::string id;
  std::string ref;
  store::Digest digest;
  SnapshotRecord record;
};

// Snapshots of `name` (every name when empty), oldest first. Records that cannot be read
// are reported as errors.
Result<std::vector<SnapshotInfo>> ListSnapshots(store::Store& store, std::string_view name);
// The snapshot `spec` names: NotFound when there is none, InvalidArgument when an ID
// prefix is ambiguous.
Result<SnapshotInfo> ResolveSnapshot(store::Store& store, const SnapshotSpec& spec);
// A record for a new snapshot of `name`: taken now, on this host, with the latest snapshot
// of that name (if any) as its parent. The caller fills in the roots and sources.
Result<SnapshotRecord> NewSnapshotRecord(store::Store& store, const std::string& name);
// Stores `record` and points `snapshot/NAME/ID` at it in the same commit.
Result<SnapshotInfo> CommitSnapshot(store::Store& store, const SnapshotRecord& record);

// Retention rules as restic has them: keep the newest `last`; for each of the newest
// `daily` days (UTC) that have snapshots, the newest of that day; likewise ISO weeks.
struct RetentionPolicy {
  int last = 0;
  int daily = 0;
  int weekly = 0;
  bool empty() const { return last == 0 && daily == 0 && weekly == 0; }
};
// `times_ns` in any order; returns whether to keep each (same order).
std::vector<bool> ApplyRetention(const std::vector<int64_t>& times_ns, const RetentionPolicy& policy);

// "2024-05-01 12:34:56" (UTC).
std::string FormatTime(int64_t time_ns);

}  // namespace silo::index
