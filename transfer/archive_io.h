// Byte streams of image archives: compression chosen by name or option, output split into
// numbered parts, input joined from parts and checked against the parts' checksum list.
//
// Split naming: OUT.000, OUT.001, … of at most SIZE bytes each, plus OUT.sha256 (one
// "<sha256>  <part name>" line per part, what `sha256sum -c` reads). Reading verifies each
// part against that list as it is consumed, so a truncated, corrupted, missing or reordered
// part is reported by name.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/hash.h"
#include "util/result.h"

namespace silo::transfer {

enum class Compression { kNone, kGzip, kZstd };

// "none", "gzip", "zstd"; InvalidArgument otherwise.
Result<Compression> ParseCompression(std::string_view name);
// What an output name implies: .tar none, .tar.gz/.tgz gzip, .tar.zst/.tzst zstd; nullopt
// for other names.
std::optional<Compression> CompressionOfPath(std::string_view path);

// Writes one archive stream to OUT (or its parts) through temporary files in the same
// directory; nothing appears under the final names until Commit(). Zstd compression (when
// asked) happens here, multithreaded (the bytes do not depend on the thread count). Not
// thread-safe.
class PartWriter {
 public:
  // split_size 0: one file. zstd_threads 0: one per hardware thread.
  PartWriter(std::string out_path, uint64_t split_size, bool zstd, int zstd_threads, int zstd_level);
  ~PartWriter();
  PartWriter(const PartWriter&) = delete;
  PartWriter& operator=(const PartWriter&) = delete;

  Status Write(const void* data, size_t size);
  // Finishes compression, syncs, renames the parts (and writes OUT.sha256 when split).
  Status Commit();

  // After Commit: bytes written (compressed), SHA-256 of the whole stream, final paths.
  uint64_t bytes() const { return bytes_; }
  const std::string& sha256_hex() const { return sha256_hex_; }
  const std::vector<std::string>& paths() const { return finals_; }

 private:
  Status Emit(const uint8_t* data, size_t size);
  Status OpenPart();
  Status ClosePart();

  struct Zstd;
  std::string out_;
  uint64_t split_;
  std::unique_ptr<Zstd> zstd_;
  int fd_ = -1;
  uint64_t part_bytes_ = 0;
  uint64_t bytes_ = 0;
  Sha256 whole_;
  std::unique_ptr<Sha256> part_hash_;
  std::vector<std::string> temps_, finals_, part_sums_;
  std::string sha256_hex_;
  bool committed_ = false;
};

// Reads one archive given as a file or as its numbered parts, joined. Errors name the part.
// Not thread-safe.
class PartReader {
 public:
  // `paths`: one file, or parts in order (see ResolveArchiveInputs).
  static Result<std::unique_ptr<PartReader>> Open(std::vector<std::string> paths);
  ~PartReader();

  // Up to `size` bytes; 0 at the end of the last part. A part whose checksum differs from
  // OUT.sha256 is a Corruption error naming it.
  Result<size_t> Read(void* buf, size_t size);
  // The part being read ("" before the first read).
  const std::string& current() const { return current_; }
  const std::vector<std::string>& paths() const { return paths_; }
  // The archive's name for messages: the file, or the first part's name without ".000".
  std::string display_name() const;

 private:
  PartReader() = default;
  Status Advance();
  std::vector<std::string> paths_;
  std::vector<std::string> sums_;  // expected sha256 per part (empty: no list)
  size_t next_ = 0;
  int fd_ = -1;
  std::string current_;
  Sha256 hash_;
};

// Groups command-line inputs into archives: "X.000" (or any one part) stands for all of
// X.000, X.001, … that exist (and X.sha256 says how many); several parts of one X given
// separately are one archive, ordered by number. Other paths are archives of one file.
// Errors: a missing part named by X.sha256, a gap in the numbering.
Result<std::vector<std::vector<std::string>>> ResolveArchiveInputs(const std::vector<std::string>& inputs);

// Where the parts list of a split archive X.000… lives: "X.sha256".
std::string PartsListPath(std::string_view base);

}  // namespace silo::transfer
