// Exporting images from the store: an OCI image layout directory, or one archive (tar,
// tar.gz, tar.zst; optionally split into parts) holding an OCI layout (what skopeo's
// oci-archive: reads) or also a docker-archive manifest.json (what `docker load` and
// `podman load` read). Incremental exports leave out blobs that earlier archives carried and
// say so in silo-export.json.
//
// Archives are deterministic: entries in a fixed order (oci-layout, silo-export.json,
// index.json, manifest.json, blobs/, blobs/sha256/, then blobs by digest), mtime 0, owner
// 0:0, mode 0644/0755, ustar headers, no gzip timestamp, zstd with workers (its bytes do
// not depend on the worker count). Blob content streams from the store in 1 MiB pieces.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "index/export_record.h"
#include "index/manifest.h"
#include "store/store.h"
#include "transfer/archive_io.h"
#include "util/progress.h"
#include "util/result.h"

namespace silo::transfer {

struct ExportImage {
  // The org.opencontainers.image.ref.name annotation: "registry/repo:tag" (or
  // "registry/repo@sha256:…" for an image known by digest alone).
  std::string name;
  store::Digest digest;  // its top-level manifest or index
};

enum class ExportFormat { kOciLayout, kOciArchive, kDockerArchive };

struct ExportOptions {
  ExportFormat format = ExportFormat::kOciArchive;
  Compression compression = Compression::kNone;
  uint64_t split_size = 0;  // archives: parts of at most this many bytes (0: one file)
  int zstd_threads = 0;     // 0: one per hardware thread
  int zstd_level = 3;
  std::vector<index::Platform> platforms;  // only these platforms of indexes (empty: all present)
  // docker-archive: the platform picked from an index (default linux/amd64).
  std::optional<index::Platform> docker_platform;
  // Incremental: blobs these earlier archives carried are left out (manifests never are).
  const index::ExportBase* base = nullptr;
  // Recorded in silo-export.json; when set, the export is also recorded in this tracker.
  std::string tracker;
  Progress* progress = nullptr;  // counts blob bytes written
};

struct ExportStats {
  uint64_t images = 0;
  uint64_t manifests = 0;
  uint64_t blobs_written = 0;  // manifests included
  uint64_t bytes_written = 0;  // blob bytes written (uncompressed)
  uint64_t blobs_present = 0;  // layouts: already there, not written
  uint64_t blobs_omitted = 0;  // incremental: carried by earlier archives
  uint64_t bytes_omitted = 0;
  uint64_t archive_bytes = 0;      // the archive file(s) as written
  std::string archive_sha256;      // of the archive's bytes (parts joined); incremental layouts: of
                                   // their silo-export.json; else empty
  std::vector<std::string> paths;  // files written (the archive or its parts)
  index::ExportRecord record;      // what silo-export.json says
};

// Exports `images` to `out`. Errors: an image absent or incomplete in the store (naming it
// and the missing blob), the output, an interrupt. Nothing half-written is visible: archives
// are renamed into place when complete; layouts get each blob by rename and index.json
// merged under a lock file (index.json.lock) and replaced atomically, so concurrent exports
// into one layout keep every image. Incremental exports (a base or a tracker) into a layout
// need a directory without index.json (InvalidArgument otherwise) and write silo-export.json
// there as archives do; --split (split_size) is archive-only. Thread-compatible.
Result<ExportStats> ExportImages(store::Store& store, const std::vector<ExportImage>& images, const std::string& out,
                                 const ExportOptions& options);

}  // namespace silo::transfer
