// Image exports: the record an export archive carries (silo-export.json: which images, which
// blobs it carries, which it omitted because earlier archives carried them, and those
// archives), and the tracker kept in the store that remembers what every export under one
// name carried, so the next export puts only new blobs.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"
#include "util/result.h"

namespace silo::index {

// The name of the record inside an export archive or layout.
inline constexpr std::string_view kExportRecordName = "silo-export.json";

// An earlier archive, by file name (without directory) and the SHA-256 of its bytes (the
// parts joined).
struct ArchiveId {
  std::string name;
  std::string sha256;  // lowercase hex
};

struct ExportedBlob {
  std::string digest;  // "sha256:<hex>"
  uint64_t size = 0;
  std::string archive;  // omitted blobs: the earlier archive that carries it
};

struct ExportedImage {
  std::string name;  // the org.opencontainers.image.ref.name annotation
  std::string digest;
};

struct ExportRecord {
  std::string tracker;                       // empty without one
  std::vector<ExportedImage> images;         // sorted by name
  std::vector<ExportedBlob> blobs;           // carried (manifests included), sorted by digest
  std::vector<ExportedBlob> omitted;         // left out, each with the archive that carries it
  std::vector<ArchiveId> requires_archives;  // the archives named by `omitted`, sorted by name
};

// Canonical JSON (fixed key order, sorted lists): the same record gives the same bytes.
std::string EncodeExportRecord(const ExportRecord& record);
// InvalidArgument naming what is wrong.
Result<ExportRecord> ParseExportRecord(std::string_view json);

// What earlier exports carried: blob digest -> archive name, and the archives.
struct ExportBase {
  std::map<std::string, std::string> carried;
  std::map<std::string, std::string> archive_sha256;  // archive name -> sha256 hex
  // Adds every blob `record` carried (under `archive`) and every blob it omitted (under
  // the archive it names).
  void Add(const ExportRecord& record, const ArchiveId& archive);
};

// Trackers live in the index space "export/<NAME>" of the store (gc never removes index
// entries): "b/<digest>" -> the archive that first carried the blob, "a/<archive>" -> its
// SHA-256 hex, then (since trackers are listed) " <time_ns> <seq> <blobs> <bytes>". Every
// tracker's name is also a key of the space "export-trackers", written before its entries,
// so `silo tracker ls` can list them. NAME: 1-100 bytes of [A-Za-z0-9._-]; InvalidArgument
// otherwise.
Status ValidateTrackerName(std::string_view name);
// The tracker's state; an unknown tracker is empty (not an error).
Result<ExportBase> LoadTracker(store::Store& store, std::string_view name);
// Records that `archive` carried `blobs` at `time_ns` (ns since the epoch): registers the
// name, then one atomic index write. A blob keeps the first archive that carried it; an
// archive name recorded again replaces that archive's entry.
Status RecordExport(store::Store& store, std::string_view name, const ArchiveId& archive,
                    const std::vector<ExportedBlob>& blobs, int64_t time_ns);

// One export as a tracker remembers it.
struct TrackedExport {
  std::string archive;  // file (or layout directory) name
  std::string sha256;   // its identity (see ArchiveId)
  int64_t time_ns = 0;  // 0: recorded before trackers kept times
  uint64_t seq = 0;     // recording order (0 for such old entries)
  uint64_t blobs = 0;   // blobs this export was the first to carry
  uint64_t bytes = 0;   // their bytes
};

struct TrackerSummary {
  std::string name;
  std::vector<TrackedExport> exports;  // in recording order (oldest first)
  uint64_t blobs = 0;                  // distinct blobs carried by all its exports
  uint64_t bytes = 0;                  // their bytes (the exports' sum)
};

// Every registered tracker's name, sorted.
Result<std::vector<std::string>> ListTrackers(store::Store& store);
// One tracker's summary; nullopt when it has no entry (unknown or removed).
Result<std::optional<TrackerSummary>> DescribeTracker(store::Store& store, std::string_view name);
// Forgets everything the tracker knows (the next export under NAME carries every blob).
// NotFound naming it when there is no such tracker.
Status RemoveTracker(store::Store& store, std::string_view name);

}  // namespace silo::index
