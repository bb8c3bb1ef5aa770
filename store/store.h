// The silo store: immutable, content-addressed objects in one RocksDB database, with
// named roots (refs), declared links between objects, garbage collection and fsck.
// Knows nothing of images or directories.
//
// Thread safety: a Store may be used from many threads at once; writers and readers are
// each used by one thread at a time. One process opens a store for writing; others may
// open it read-only (OpenOptions::read_only).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/chunker.h"
#include "store/digest.h"
#include "util/result.h"

namespace silo::store {

inline constexpr int kFormatVersion = 1;

struct OpenOptions {
  bool read_only = false;
  bool create_if_missing = true;
  // Used only when a new store is created; an existing store keeps what it recorded.
  ChunkParams chunking;
  // Objects up to this size live inline in their record (new stores only).
  uint32_t inline_max = 16 * 1024;
  // Worker threads hashing and writing chunks; 0 means one per hardware thread.
  size_t threads = 0;
  // Bytes of verified, decoded chunks kept in memory for readers of this store (see
  // ChunkCacheStats); 0: none, each read goes to RocksDB (right for one-shot commands).
  size_t chunk_cache_bytes = 0;
};

class CommitGroup;

struct PutOptions {
  std::optional<Digest> expected_digest;  // a SHA-256 or SHA-1 digest the content must have
  std::optional<uint64_t> expected_size;
  bool sha1_alias = false;    // also compute SHA-1 and record a sha1: alias
  std::vector<Digest> links;  // SHA-256 objects this object references (kept alive by gc)
  // Point this ref at the object in the same atomic commit (no window in which a
  // collection could see the object unreferenced).
  std::string ref;
  // Makes the write resumable: progress is checkpointed under this key (every 128 MiB and
  // on Checkpoint()), and a later writer with the same key starts from the last
  // checkpoint (bytes_written() tells where) after re-verifying what was stored.
  std::string resume_key;
  // zstd level for this object's new chunks (0: the store's own level). Chunks stay
  // uncompressed when zstd does not save an eighth, whatever the level.
  int compression_level = 0;
  // Commits the object through this group (see CommitGroup) instead of with a write of
  // its own. Not together with `ref` or `resume_key` (InvalidArgument).
  std::shared_ptr<CommitGroup> commit_group;
};

struct ObjectInfo {
  Digest digest;
  uint64_t size = 0;
  bool inlined = false;
  uint32_t chunk_count = 0;
  std::optional<Digest> sha1;
  std::vector<Digest> links;
  int64_t created_us = 0;  // when the object was first committed
  // Filled in by Commit(): whether the object already existed, and what this put added.
  bool existed = false;
  uint64_t new_chunks = 0;
  uint64_t new_stored_bytes = 0;
};

// Streams one object into the store. Memory stays bounded whatever the size.
// Nothing is visible until Commit() succeeds; destroying an uncommitted writer aborts it.
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;
  virtual Status Write(ByteSpan data) = 0;
  // Like Write, but `data` stays valid for as long as `owner` lives: the writer holds a
  // reference while chunks of it are in flight and returns without waiting for them, so
  // the caller can prepare its next buffer (map the next window of a file) meanwhile.
  virtual Status WriteShared(ByteSpan data, std::shared_ptr<const void> owner) = 0;
  // Checks the expected digest and size, then makes the object visible atomically.
  // Integrity error (nothing visible) when they do not match.
  virtual Result<ObjectInfo> Commit() = 0;
  // Bytes accepted so far, including those restored from a checkpoint.
  virtual uint64_t bytes_written() const = 0;
  // Sets the SHA-256 digest (and, when given, the size) Commit() must find, for writers
  // that learn it only at the end (a chunked registry upload). Replaces what PutOptions
  // said. InvalidArgument for a non-SHA-256 digest.
  virtual Status SetExpected(const Digest& digest, std::optional<uint64_t> size) = 0;
  // Persists progress for `resume_key` (no-op without one): waits for chunks in flight,
  // makes them durable and records them. Bytes after the last chunk boundary are not
  // kept, so bytes_written() may move back to that boundary.
  virtual Status Checkpoint() = 0;
};

// Many small objects committed together: a writer given the group (PutOptions) queues its
// object record, alias and new chunks in the group's batch, which is written in one atomic
// batch once it holds about `max_bytes` (by whichever Commit crosses that) or on Flush(),
// instead of with one write per object. Commit() into a group returns the ObjectInfo at
// once; the object is visible to readers no later than the next Flush() that returns ok.
// Crash safety is unchanged: after a crash an object is absent or whole.
//
// Whether the store already holds an object is looked up when its batch is written (one
// batched lookup for all its records, not one per Commit): ObjectInfo::existed tells only
// whether the group held the object already, and ObjectInfo::new_stored_bytes counts only
// new chunks; bytes_added() tells what the group's objects really added.
//
// Every object committed into the group, new or already stored, stays pinned (as by
// ObjectPins) while the group lives, so gc keeps it and all it reaches. Dropping the group
// drops what it has not written (nothing half-written becomes visible). A failed write
// is sticky: every later Commit into the group and every Flush() returns that error.
// Thread-safe; must not outlive its store.
class CommitGroup {
 public:
  virtual ~CommitGroup() = default;
  // Writes what the group holds; when it returns ok, every object committed into the
  // group before the call is visible.
  virtual Status Flush() = 0;
  // Stored bytes the group's writers added to the store so far: new chunks (after
  // compression) and the records of objects the store lacked (a small object's bytes are
  // in its record). Complete after a Flush().
  virtual uint64_t bytes_added() const = 0;
};

struct CommitGroupOptions {
  size_t max_bytes = 2 << 20;  // queued bytes (records and stored chunks) that start a write
};

// Bytes of an object handed out without a copy: `bytes` stays valid for as long as `owner`
// lives, whatever the reader does meanwhile.
struct ObjectPiece {
  std::string_view bytes;
  std::shared_ptr<const void> owner;
};

// Streams one object out of the store. Every chunk's checksum is verified as it is read;
// a mismatch is an integrity error naming the object.
class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  virtual const ObjectInfo& info() const = 0;
  // Reads up to buf.size() bytes from the current position; 0 at end of object.
  virtual Result<size_t> Read(std::span<uint8_t> buf) = 0;
  // Reads up to `max` bytes (max > 0) from the current position; empty at end of object.
  // The store's reader hands a stored chunk out in place (a piece never spans two chunks);
  // the default copies through Read.
  virtual Result<ObjectPiece> ReadPiece(size_t max);
  // Moves the read position; offset may equal the size (then Read returns 0).
  virtual Status Seek(uint64_t offset) = 0;
};

// Objects a caller relies on without having linked them yet (a snapshot reusing the trees
// and contents of an earlier one). While an ObjectPins lives, gc keeps every object pinned
// through it and everything those objects link to. Used by one thread at a time; must not
// outlive its store.
class ObjectPins {
 public:
  virtual ~ObjectPins() = default;
  // Pins `digests` (SHA-256), then reports which of them the store lacks, in input order.
  // A digest reported present stays present, with everything it links to, until the pins
  // are dropped; one reported missing is pinned harmlessly.
  virtual Result<std::vector<Digest>> PinExisting(std::span<const Digest> digests) = 0;
};

struct RefEntry {
  std::string name;
  Digest target;
};

struct GcOptions {
  // Chunks no object references (unfinished writes) are kept this long.
  std::chrono::seconds grace{3600};
  bool dry_run = false;
  // Rewrite every live chunk so that no byte of a removed one stays on disk (slower).
  bool full = false;
};

struct GcReport {
  uint64_t objects_kept = 0;
  uint64_t objects_removed = 0;
  uint64_t logical_bytes_removed = 0;
  uint64_t chunks_removed = 0;
  uint64_t stored_bytes_removed = 0;
  uint64_t disk_bytes_before = 0;
  uint64_t disk_bytes_after = 0;
  double seconds = 0;
};

struct FsckOptions {
  bool repair = false;
  // Called for each problem found, with a one-line description.
  std::function<void(const std::string&)> on_problem;
  std::function<void(uint64_t bytes)> on_progress;
};

struct FsckReport {
  uint64_t objects_checked = 0;
  uint64_t chunks_checked = 0;
  uint64_t bytes_checked = 0;
  std::vector<Digest> damaged_objects;
  uint64_t damaged_chunks = 0;
  uint64_t other_problems = 0;  // dangling aliases, metadata without data
  uint64_t repaired = 0;        // records removed by --repair
  bool clean() const { return damaged_objects.empty() && damaged_chunks == 0 && other_problems == 0; }
};

struct StoreStats {
  uint64_t objects = 0;
  uint64_t inline_objects = 0;
  uint64_t inline_bytes = 0;
  uint64_t logical_bytes = 0;  // sum of object sizes
  uint64_t chunks = 0;
  uint64_t chunk_bytes = 0;   // unique chunk bytes before compression
  uint64_t stored_bytes = 0;  // chunk bytes after compression, plus inline bytes
  uint64_t aliases = 0;
  uint64_t refs = 0;
  uint64_t disk_bytes = 0;     // files in the store directory
  double dedup_ratio() const;  // logical / (chunk bytes + inline bytes)
};

// The chunk cache of a store opened with OpenOptions::chunk_cache_bytes: readers share
// the chunks it holds, so a hot object is read from RocksDB and checked once, not per read.
struct ChunkCacheStats {
  uint64_t capacity = 0;  // 0: the store has no chunk cache
  uint64_t usage = 0;     // bytes charged now, held by readers or not
  uint64_t pinned = 0;    // of which readers (pieces handed out) hold now
  uint64_t hits = 0;      // chunk loads served from the cache
  uint64_t misses = 0;    // chunk loads that went to RocksDB
};

class Store {
 public:
  virtual ~Store() = default;

  // Opens (creating on first use unless told not to) the store at `path`. Errors: not a
  // silo store, a store of a newer format, an unwritable path, a store another process has
  // open for writing — each naming the path.
  static Result<std::unique_ptr<Store>> Open(const std::string& path, const OpenOptions& options = {});

  virtual const std::string& path() const = 0;
  virtual const ChunkParams& chunk_params() const = 0;

  // --- objects ---
  virtual Result<std::unique_ptr<ObjectWriter>> NewWriter(const PutOptions& options = {}) = 0;
  // Convenience: the whole object from memory.
  virtual Result<ObjectInfo> Put(ByteSpan data, const PutOptions& options = {}) = 0;
  // NotFound when absent. A sha1: digest is resolved through its alias.
  virtual Result<ObjectInfo> Stat(const Digest& digest) = 0;
  virtual Result<std::unique_ptr<ObjectReader>> NewReader(const Digest& digest) = 0;
  // The whole object into memory (for manifests and other small objects).
  virtual Result<std::string> ReadAll(const Digest& digest, uint64_t max_size) = 0;
  // Which of `digests` the store lacks, in input order (one batched lookup).
  virtual Result<std::vector<Digest>> Missing(std::span<const Digest> digests) = 0;
  // Resolves a sha1: alias to its SHA-256 object; a SHA-256 digest is returned as is.
  virtual Result<Digest> Resolve(const Digest& digest) = 0;
  // An empty set of pins (see ObjectPins).
  virtual std::unique_ptr<ObjectPins> NewPins() = 0;
  // A new, empty commit group (see CommitGroup).
  virtual Result<std::shared_ptr<CommitGroup>> NewCommitGroup(const CommitGroupOptions& options = {}) = 0;

  // --- refs ---
  virtual Result<std::optional<Digest>> GetRef(const std::string& name) = 0;
  // Sets `name` to `target` (which must exist). With `expected`, only when the ref
  // currently points there (nullopt inside it: only when the ref does not exist);
  // Conflict otherwise.
  virtual Status SetRef(const std::string& name, const Digest& target,
                        std::optional<std::optional<Digest>> expected = std::nullopt) = 0;
  // NotFound when absent; Conflict when `expected` is given and differs.
  virtual Status DeleteRef(const std::string& name, std::optional<Digest> expected = std::nullopt) = 0;
  // Refs whose names start with `prefix`, sorted by name.
  virtual Result<std::vector<RefEntry>> ListRefs(const std::string& prefix) = 0;

  // --- indexes ---
  // A small key-value space for indexes kept beside the objects (stat caches, export
  // trackers, pull-through bookkeeping). `space` names the index ("statcache/home"); keys
  // and values are arbitrary bytes. Index entries are not roots: gc ignores them, so an
  // index must tolerate naming objects that have since been collected.
  virtual Result<std::optional<std::string>> GetIndex(std::string_view space, std::string_view key) = 0;
  // GetIndex for many keys in one batched lookup: values[i] belongs to keys[i] (nullopt
  // when absent). Cheaper than one GetIndex per key when there are many.
  virtual Result<std::vector<std::optional<std::string>>> GetIndexMany(std::string_view space,
                                                                       std::span<const std::string> keys) = 0;
  virtual Status PutIndex(std::string_view space, std::string_view key, std::string_view value) = 0;
  // Applies puts (value set) and deletes (value nullopt) atomically.
  virtual Status WriteIndex(std::string_view space,
                            std::span<const std::pair<std::string, std::optional<std::string>>> changes) = 0;
  // Calls `fn(key, value)` for each key starting with `prefix`, in key order, until it
  // returns false.
  virtual Status ScanIndex(std::string_view space, std::string_view prefix,
                           const std::function<bool(std::string_view, std::string_view)>& fn) = 0;
  // Removes every key of `space`.
  virtual Status DropIndex(std::string_view space) = 0;

  // --- maintenance ---
  virtual Result<GcReport> CollectGarbage(const GcOptions& options) = 0;
  virtual Result<FsckReport> Check(const FsckOptions& options) = 0;
  virtual Result<StoreStats> Stats() = 0;
  // Cheap (no scan): for a server's /metrics.
  virtual ChunkCacheStats chunk_cache_stats() const = 0;
  // Starts writing what the store holds in memory out to its files, in the background,
  // and returns: at the end of a bulk load, so that the close has less left to write
  // while the caller finishes. Changes nothing visible.
  virtual void StartFlush() = 0;
};

// Checks a ref name: "namespace/rest", no empty, "." or ".." components, no control bytes.
Status ValidateRefName(std::string_view name);

}  // namespace silo::store
