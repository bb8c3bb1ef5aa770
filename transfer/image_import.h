// Importing images into the store: OCI archives (tar, tar.gz, tar.zst, detected by their
// magic, given as one file or as numbered parts), OCI image layout directories, and sync
// directories of batch-export (every NNNNNN-*.tar* in number order).
//
// Every blob is verified as it lands (the store writer checks the digest its path names and
// the size its header gives); manifests are stored with links to what they reference. Image
// refs ("image/<registry>/<repo>:<tag>", from each index.json entry's
// org.opencontainers.image.ref.name) are set only after every manifest and blob of the
// archive is in the store, so nothing half-imported is visible. A name without a registry
// ("app:1.0", "library/debian:12") gets `default_registry` (docker.io unless told), as
// Docker reads it; an entry without a name is stored and reported, with no ref.
//
// docker save / podman save --format docker-archive archives (manifest.json, config
// "<hex>.json", layers "<id>/layer.tar" or "<hex>.tar", uncompressed, possibly linked to one
// another; no index.json) are read in the same single pass: every other file is stored under
// the digest of its bytes, then each manifest.json entry becomes a Docker v2 schema 2
// manifest over its config and layers (a layer's digest is its file's SHA-256; an
// uncompressed layer must equal the config's diff_id), and each RepoTags name a ref. When an
// archive holds both, index.json wins (its manifests are the exact originals).
//
// An incremental archive (silo-export.json lists omitted blobs) whose omitted blobs are not
// in the store is refused before anything is stored, naming the missing blobs and the
// archives that carry them. Importing an archive again stores nothing new.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "index/export_record.h"
#include "store/store.h"
#include "util/progress.h"
#include "util/result.h"

namespace silo::transfer {

struct ImageImportOptions {
  std::string default_registry = "docker.io";
  Progress* progress = nullptr;  // counts archive blob bytes read
  std::function<void(const std::string&)> on_warning;
};

struct ImportedImage {
  std::string ref;  // the image ref set ("image/…"), empty when the entry had no name
  std::string name;
  std::string digest;
};

struct ImageImportStats {
  uint64_t archives = 0;
  uint64_t blobs_stored = 0;
  uint64_t blobs_present = 0;  // already in the store
  uint64_t bytes_stored = 0;
  uint64_t bytes_read = 0;
  std::vector<ImportedImage> images;
};

// True when `path` is a directory holding an OCI layout or batch-export files, or a file
// whose archive holds an oci-layout or index.json entry (so `silo import` can tell image
// archives from snapshot packages).
bool LooksLikeImageInput(const std::string& path);

// Imports `inputs` in order: archives (parts grouped as ResolveArchiveInputs does), layout
// directories and sync directories. Stops at the first archive that fails (earlier ones
// stay imported; the failing one sets no ref). Errors name the archive (and the part).
Result<ImageImportStats> ImportImages(store::Store& store, const std::vector<std::string>& inputs,
                                      const ImageImportOptions& options);

// The record of an earlier archive (its silo-export.json, read from the start of the
// archive; parts joined) and its identity (file name, SHA-256 of its bytes). An archive
// without a record (not written by silo) yields every blob it holds.
Result<std::pair<index::ExportRecord, index::ArchiveId>> ReadArchiveRecord(const std::vector<std::string>& parts);

// The record of an earlier layout export (DIR/silo-export.json) and its identity (the
// directory's name, SHA-256 of that file). A layout without a record yields every blob in
// DIR/blobs/sha256.
Result<std::pair<index::ExportRecord, index::ArchiveId>> ReadLayoutRecord(const std::string& dir);

// The export files of a sync directory, grouped into archives, in number order.
Result<std::vector<std::vector<std::string>>> SyncDirArchives(const std::string& dir);

}  // namespace silo::transfer
