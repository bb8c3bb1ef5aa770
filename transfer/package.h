// Packages: a snapshot tree written as one archive file (zip, tar, tar.gz, tar.zst, via
// libarchive), and such an archive read back into a snapshot.
//
// Writing is deterministic: entries in depth-first name-byte order (a directory before its
// contents), owners as recorded (numeric, no user or group names), mtimes as recorded, no
// atime/ctime, no gzip timestamp, pax headers with binary names and no per-process names —
// the same tree gives the same bytes. File content streams from the store in 1 MiB pieces,
// so memory does not grow with file sizes. Tar formats keep everything a tree holds (pax:
// nanosecond mtimes, xattrs, symlinks, hardlinks, empty directories, fifos and devices);
// zip keeps content, modes, owners, mtimes (seconds), symlinks and empty directories, writes
// hardlinked files as copies and leaves fifos and devices out (warned).
//
// Reading accepts tar (ustar, pax, GNU) and zip, plain or compressed (gzip, zstd, bzip2,
// xz, …; detected by libarchive). Every path is checked before anything is stored: absolute
// paths, ".." components, names a tree refuses and paths through a symlink entry are
// refused and the import fails without committing anything. Symlink targets are data and
// kept as they are.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "index/snapshot.h"
#include "index/tree.h"
#include "store/store.h"
#include "util/progress.h"
#include "util/result.h"

namespace silo::transfer {

enum class PackageFormat { kZip, kTar, kTarGz, kTarZst };

// "zip", "tar", "tar.gz" (also "tgz"), "tar.zst" (also "tzst"); InvalidArgument otherwise.
Result<PackageFormat> ParsePackageFormat(std::string_view name);
// The format a file name's suffix names ("x.tar.gz" -> kTarGz); InvalidArgument otherwise.
Result<PackageFormat> PackageFormatOfPath(std::string_view path);
// "zip", "tar", "tar.gz", "tar.zst": the suffix written after a fingerprint.
std::string_view PackageExtension(PackageFormat format);

// dsync's package fingerprint, SHA-1 over its sources' tree SHA-1s in order (sha1(p0, p1,
// …)), with silo's tree digests in their place: the lowercase hex SHA-1 of the lines
// "sha256:<hex>\n", one per root tree digest, in the order given. Equal trees, equal names.
std::string PackageFingerprint(std::span<const store::Digest> roots);

struct PackageOptions {
  PackageFormat format = PackageFormat::kZip;
  // zstd worker threads for tar.zst (0: one per hardware thread). The output does not
  // depend on the count.
  int zstd_threads = 0;
  Progress* progress = nullptr;  // counts content bytes written
  std::function<void(const std::string&)> on_warning;
};

struct PackageStats {
  uint64_t files = 0;
  uint64_t dirs = 0;
  uint64_t symlinks = 0;
  uint64_t hardlinks = 0;  // written as links (tar) rather than copies
  uint64_t specials = 0;   // fifos and devices written
  uint64_t skipped = 0;    // entries the format cannot hold (warned)
  uint64_t content_bytes = 0;
  uint64_t package_bytes = 0;  // size of the written file
};

// Writes `root` to `out_path` through a temporary file in the same directory and a rename
// (nothing half-written is visible under `out_path`). A directory `root` contributes its
// contents (not itself); any other entry is written under its name. Errors: the store
// (missing or damaged content), the output directory, libarchive — each naming the entry
// or path. Thread-compatible.
Result<PackageStats> WritePackage(store::Store& store, const index::TreeEntry& root, const std::string& out_path,
                                  const PackageOptions& options);

struct ImportRequest {
  std::string name;              // the snapshot name to commit under (snapshot/NAME/ID)
  std::string path;              // the package file
  Progress* progress = nullptr;  // counts content bytes read
  std::function<void(const std::string&)> on_warning;
};

struct ImportStats {
  uint64_t files = 0;  // file entries (hardlinks included)
  uint64_t dirs = 0;
  uint64_t symlinks = 0;
  uint64_t hardlinks = 0;
  uint64_t specials = 0;
  uint64_t replaced = 0;  // entries a later entry of the same path replaced (warned)
  uint64_t bytes_read = 0;
  uint64_t bytes_added = 0;  // new stored bytes (after dedup and compression)
};

struct ImportResult {
  index::SnapshotInfo snapshot;
  ImportStats stats;
};

// Reads the package at `request.path` into the store and commits it as a snapshot of
// `request.name` (its one source keyed by the name, path the package's absolute path;
// parent: the previous snapshot of that name). Directories only implied by paths get mode
// 0755, owner 0 and mtime 0. Nothing is committed on any error (hostile or malformed
// entries, an unreadable archive, the store failing, an interrupt); content stored before
// the error is unreferenced and gc reclaims it.
Result<ImportResult> ImportPackage(store::Store& store, const ImportRequest& request);

}  // namespace silo::transfer
