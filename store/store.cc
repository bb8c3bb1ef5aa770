// Opening a store, its format record, and object lookups.
#include <fcntl.h>
#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "store/crc32c.h"
#include "store/rocks.h"
#include "store/store_impl.h"

namespace silo::store {
namespace fs = std::filesystem;

namespace {

const char* const kCfNames[] = {"default", "objects", "aliases", "chunks", "chunk_meta", "refs", "index"};

// `filter_bits`: Bloom filter bits per key of the family's tables.
rocksdb::ColumnFamilyOptions RecordCfOptions(const std::shared_ptr<rocksdb::Cache>& cache, int filter_bits = 10) {
  rocksdb::ColumnFamilyOptions o;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = cache;
  // Missing-object and missing-chunk queries are mostly misses: Bloom filters answer them.
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(filter_bits));
  t.cache_index_and_filter_blocks = true;
  // A bulk load asks each new record whether it exists: every lookup then consults the
  // filter of every level-0 file (up to 16 in the objects family). Pinned, those filters
  // are not looked up in the block cache each time.
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  o.write_buffer_size = 16 << 20;
  o.max_write_buffer_number = 2;
  o.compression = rocksdb::kLZ4Compression;
  return o;
}

// Chunk values from this size on live in blob files; smaller ones (the tails of some
// objects) sit in table blocks.
constexpr uint64_t kMinBlobSize = 4096;

rocksdb::ColumnFamilyOptions ChunkCfOptions(const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::ColumnFamilyOptions o = RecordCfOptions(cache);
  // Chunk values live in blob files; the LSM tree holds only small blob indexes.
  o.enable_blob_files = true;
  o.min_blob_size = kMinBlobSize;
  o.blob_file_size = 256 << 20;
  o.blob_compression_type = rocksdb::kNoCompression;  // chunks are compressed by silo
  // No blob garbage collection during normal compactions: chunks are written once and
  // only `silo gc` creates garbage, so it alone asks for blob files to be rewritten.
  o.enable_blob_garbage_collection = false;
  o.write_buffer_size = 32 << 20;
  // A third memtable: a flush here waits for a flush thread the objects family may hold
  // (its flushes compress), and with two every write stopped meanwhile. All memtables
  // together stay under the database's write buffer size.
  o.max_write_buffer_number = 3;
  o.compression = rocksdb::kNoCompression;
  return o;
}

bool LooksLikeRocksDb(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p / "CURRENT", ec);
}

// Whether the filesystem under `dir` accepts O_DIRECT (tmpfs does not).
bool SupportsDirectIo(const std::string& dir) {
  std::string probe = dir + "/.silo-direct-probe";
  int fd = ::open(probe.c_str(), O_CREAT | O_WRONLY | O_DIRECT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  ::close(fd);
  ::unlink(probe.c_str());
  return true;
}

bool DirIsEmpty(const fs::path& p) {
  std::error_code ec;
  return fs::is_empty(p, ec);
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const std::string& path, const OpenOptions& options) {
  return StoreImpl::Open(path, options);
}

Result<std::unique_ptr<Store>> StoreImpl::Open(const std::string& path, const OpenOptions& options) {
  auto ctx = "store " + path;
  SILO_TRY(options.chunking.Validate().WithContext(ctx));
  std::error_code ec;
  fs::path p(path);
  bool exists = fs::exists(p, ec);
  if (exists && !fs::is_directory(p, ec)) {
    return Status::InvalidArgument(ctx + ": not a directory");
  }
  bool is_db = exists && LooksLikeRocksDb(p);
  if (exists && !is_db && !DirIsEmpty(p)) {
    return Status::InvalidArgument(ctx + ": not a silo store (the directory holds other files)");
  }
  if (!is_db) {
    if (options.read_only || !options.create_if_missing) {
      return Status::NotFound(ctx + ": no store here (run a writing command such as `silo put` to create one)");
    }
    fs::create_directories(p, ec);
    if (ec) return Status::IO(ctx + ": cannot create: " + ec.message());
    if (::access(path.c_str(), W_OK) != 0) return Status::FromErrno(ctx + ": cannot write", errno);
  } else if (!options.read_only && ::access(path.c_str(), W_OK) != 0) {
    return Status::FromErrno(ctx + ": cannot write", errno);
  }

  auto cache = rocksdb::NewLRUCache(32 << 20);
  rocksdb::DBOptions dbo;
  dbo.create_if_missing = true;
  dbo.create_missing_column_families = true;
  // Two flush threads and one for compactions (from max_background_jobs alone RocksDB
  // would take one flush thread): the flushes at close, and of several families in a
  // bulk load, run side by side.
  dbo.max_background_flushes = 2;
  dbo.max_background_compactions = 1;
  dbo.bytes_per_sync = 1 << 20;
  dbo.db_write_buffer_size = 128 << 20;
  // Bounds the WAL: column families holding old log data are flushed past this size.
  dbo.max_total_wal_size = 64 << 20;
  dbo.keep_log_file_num = 3;
  dbo.max_log_file_size = 4 << 20;
  dbo.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  dbo.max_open_files = 1024;
  // Opening is on the path of every command (a no-op re-pull is mostly open and close):
  // do not read every table file's properties for compaction statistics, nor stat every
  // table file, before the first request.
  dbo.skip_stats_update_on_db_open = true;
  dbo.skip_checking_sst_file_sizes_on_db_open = true;
  // RocksDB starts this many threads per column family to open table files at open (16 by
  // default: over a hundred threads for our seven families, most of a no-op command's
  // kernel time). It opens at most a few files per family then; two threads suffice.
  dbo.max_file_opening_threads = 2;
  // No preallocation of WAL, table and blob files: on tmpfs it zero-fills pages that the
  // close then truncates away, and on ext4 it costs extent updates too (together about 6%
  // of a pull's CPU on tmpfs); files are written sequentially in any case.
  dbo.allow_fallocate = false;
  // No atomic flush: metadata always goes through the WAL, and chunk bytes written without
  // it stay pending until a flush of the chunks column family alone has made them durable
  // (see WriteChunkUnlogged). (Debian's librocksdb 7.8 keeps its assertions, and its atomic
  // flush aborts the process when a manual flush races an automatic one:
  // `cfd->GetFlushReason() == cfds[0]->GetFlushReason()`.)
  dbo.atomic_flush = false;
  // Flushes write chunk data to blob files with direct I/O where the filesystem allows:
  // no copy through the page cache (a large cost on the CPU), and a long-lived cache host
  // keeps its page cache for reads.
  dbo.use_direct_io_for_flush_and_compaction = !options.read_only && SupportsDirectIo(path);

  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (int i = 0; i < kCfCount; ++i) {
    // Every new object record and chunk is first looked up (a commit's, a commit group's
    // batch, a chunk's), and in a bulk load the answer is mostly no. These families' table
    // filters have 16 bits per key, not 10: with a dozen level-0 files (a bulk load), 10
    // bits let about one new record in eight past some table's filter (~1% false
    // positives each), each costing a data block read and decompressed; 16 bits make that
    // about one in a hundred (a cold snapshot of /usr/share + /usr/include: about 0.7
    // CPU-s less), for 6 more bits per record in the cache.
    const bool looked_up = i == kObjects || i == kAliases || i == kChunkMeta;
    auto o = i == kChunks ? ChunkCfOptions(cache) : RecordCfOptions(cache, looked_up ? 16 : 10);
    // Object records hold small objects inline (files up to inline_max, snapshot trees):
    // zstd keeps them markedly smaller than LZ4 (a store of many small files is mostly
    // these). A setting of the files written from now on; older files stay readable.
    if (i == kObjects) {
      o.compression = rocksdb::kZSTD;
      // Level 1 over 16 KiB blocks with a 128 KiB dictionary sampled from each output file
      // (no training: cheap): small files share a block and their common words. On
      // /usr/share + /usr/include (flush CPU of a cold snapshot, table bytes): level 3 with
      // a 64 KiB dictionary 2.5 s, 100.5 MB (zstd copies a level-3 dictionary's tables
      // for every block over 16 KiB); level 1 with 128 KiB 1.6 s, 101.9 MB; level 1 with
      // 64 KiB 1.5 s, 103.8 MB; level 3 without a dictionary 1.6 s, 106.6 MB.
      o.compression_opts.level = 1;
      o.compression_opts.max_dict_bytes = 128 << 10;
      o.compression_opts.zstd_max_train_bytes = 0;
      // The sample comes from the first 4 MiB of an output file (unlimited, RocksDB would
      // hold a whole output file's blocks in memory before compressing any).
      o.compression_opts.max_dict_buffer_bytes = 4 << 20;
      rocksdb::BlockBasedTableOptions t = *o.table_factory->GetOptions<rocksdb::BlockBasedTableOptions>();
      t.block_size = 16 << 10;
      // Keep each table's index, filter and dictionary in the cache: a restore of many
      // small files reads records all over the family, and a dictionary evicted is a
      // dictionary read and digested again.
      t.metadata_cache_options.unpartitioned_pinning = rocksdb::PinningTier::kAll;
      o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
      // A bulk load (a cold snapshot of many small files) flushes this family a dozen times
      // or more, and each L0-to-L1 compaction rewrites all of L1: compact after 16
      // flushes (each compaction decompresses and recompresses every inline file it
      // holds), with the write slowdown and stop moved up to match.
      o.level0_file_num_compaction_trigger = 16;
      o.level0_slowdown_writes_trigger = 28;
      o.level0_stop_writes_trigger = 44;
      // Its flushes compress (the rest mostly copy): with two memtables a cold snapshot of
      // many small files filled the second before the first was flushed, and every write
      // stopped until it was ("Stopping writes because we have 2 immutable memtables").
      o.max_write_buffer_number = 4;
    } else if (i == kIndex) {
      o.compression = rocksdb::kZSTD;  // the stat caches: about a tenth smaller than LZ4
      o.compression_opts.level = 1;
    }
    // A Bloom filter over the memtable too: it answers those lookups without a skiplist
    // search.
    if (looked_up) {
      o.memtable_prefix_bloom_size_ratio = 0.05;
      o.memtable_whole_key_filtering = true;
    }
    descs.emplace_back(kCfNames[i], o);
  }

  std::unique_ptr<StoreImpl> s(new StoreImpl());
  s->path_ = path;
  s->read_only_ = options.read_only;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status rs;
  if (options.read_only) {
    rs = rocksdb::DB::OpenForReadOnly(dbo, path, descs, &s->cfs_, &raw);
  } else {
    rs = rocksdb::DB::Open(dbo, path, descs, &s->cfs_, &raw);
  }
  if (!rs.ok()) {
    std::string msg = rs.ToString();
    if (msg.find("LOCK") != std::string::npos || msg.find("lock") != std::string::npos) {
      return Status::Conflict(ctx +
                              ": in use by another silo process (only one may write at a time; "
                              "read-only commands still work)");
    }
    if (rs.IsInvalidArgument() && msg.find("Column famil") != std::string::npos) {
      return Status::InvalidArgument(ctx + ": not a silo store (a RocksDB database of another program)");
    }
    return FromRocks(rs, ctx);
  }
  s->db_.reset(raw);
  if (!Crc32cIsHardware()) {
    // Records in RocksDB's LOG why checksumming costs more CPU than it should.
    rocksdb::Log(rocksdb::InfoLogLevel::WARN_LEVEL, raw->GetDBOptions().info_log,
                 "silo: RocksDB CRC32C runs in software (no SSE4.2, or the interposer was not linked)");
  }
  SILO_TRY(s->InitMeta(options, !is_db).WithContext(ctx));
  s->pool_ = std::make_unique<ThreadPool>(options.threads);
  if (options.chunk_cache_bytes > 0) s->chunk_cache_ = std::make_unique<ChunkCache>(options.chunk_cache_bytes);
  return std::unique_ptr<Store>(std::move(s));
}

void StoreImpl::StartFlush() {
  if (!db_ || read_only_) return;
  rocksdb::FlushOptions fo;
  fo.wait = false;
  fo.allow_write_stall = true;
  db_->Flush(fo, cfs_).PermitUncheckedError();  // each family with anything to write
}

StoreImpl::~StoreImpl() {
  pool_.reset();  // finish queued chunk writes before the database goes
  if (db_ && !read_only_) {
    // Leave no memtable behind: readers that open the store next need not replay a WAL.
    rocksdb::FlushOptions fo;
    db_->Flush(fo, cfs_).PermitUncheckedError();
  }
  if (db_) {
    for (auto* h : cfs_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    cfs_.clear();
    db_->Close().PermitUncheckedError();
  }
}

Status StoreImpl::InitMeta(const OpenOptions& options, bool created) {
  std::string format;
  auto rs = db_->Get(rocksdb::ReadOptions(), meta(), "format", &format);
  if (rs.IsNotFound()) {
    if (!created || read_only_) return Status::InvalidArgument("not a silo store (no format record)");
    rocksdb::WriteBatch b;
    b.Put(meta(), "format", std::to_string(kFormatVersion));
    b.Put(meta(), "chunking", options.chunking.Encode());
    b.Put(meta(), "inline_max", std::to_string(options.inline_max));
    b.Put(meta(), "compression", "zstd:1");
    rocksdb::WriteOptions wo;
    wo.sync = true;
    SILO_TRY(FromRocks(db_->Write(wo, &b), "write format record"));
    params_ = options.chunking;
    inline_max_ = options.inline_max;
    zstd_level_ = 1;
    return Status::Ok();
  }
  SILO_TRY(FromRocks(rs, "read format record"));
  int version = std::atoi(format.c_str());
  if (version <= 0) return Status::Corruption("format record '" + format + "' is not a version");
  if (version > kFormatVersion) {
    return Status::Unsupported("store format " + std::to_string(version) + " is newer than this silo reads (" +
                               std::to_string(kFormatVersion) + "); upgrade silo");
  }
  std::string chunking, inline_max, compression;
  SILO_TRY(FromRocks(db_->Get(rocksdb::ReadOptions(), meta(), "chunking", &chunking), "read chunking record"));
  SILO_ASSIGN_OR_RETURN(params_, ChunkParams::Decode(chunking));
  if (db_->Get(rocksdb::ReadOptions(), meta(), "inline_max", &inline_max).ok()) {
    inline_max_ = static_cast<uint32_t>(std::stoul(inline_max));
  }
  if (db_->Get(rocksdb::ReadOptions(), meta(), "compression", &compression).ok()) {
    zstd_level_ = compression == "none" ? 0 : std::atoi(compression.c_str() + 5);
  }
  return Status::Ok();
}

Status StoreImpl::RequireWritable(std::string_view what) const {
  if (read_only_) return Status::InvalidArgument(std::string(what) + ": store opened read-only");
  return Status::Ok();
}

Result<ObjectRecord> StoreImpl::LoadRecord(const Digest& digest, const rocksdb::Snapshot* snapshot) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  rocksdb::PinnableSlice value;
  auto rs = db_->Get(ro, objects(), digest.raw(), &value);
  if (rs.IsNotFound()) return Status::NotFound(digest.ToString() + ": not in the store");
  SILO_TRY(FromRocks(rs, digest.ToString()));
  return ObjectRecord::Decode(value.ToStringView()).WithContext(digest.ToString());
}

Status StoreImpl::ReadChunkView(const ChunkId& id, rocksdb::PinnableSlice* pin, std::string* scratch,
                                std::string_view* out) {
  pin->Reset();
  rocksdb::ReadOptions ro;
  ro.verify_checksums = false;  // every chunk carries its own XXH3, checked below
  auto rs = db_->Get(ro, chunks(), KeyOf(id), pin);
  if (rs.IsNotFound()) return Status::Integrity("chunk " + ToHex(id).substr(0, 12) + " is missing");
  if (rs.IsCorruption()) return Status::Integrity("chunk " + ToHex(id).substr(0, 12) + ": " + rs.ToString());
  if (!rs.ok()) return Status::IO("chunk " + ToHex(id).substr(0, 12) + ": " + rs.ToString());
  return DecodeChunkView(pin->ToStringView(), scratch, out).WithContext("chunk " + ToHex(id).substr(0, 12));
}

Result<std::shared_ptr<const ChunkBytes>> StoreImpl::ReadCachedChunk(const ChunkId& id) {
  if (!chunk_cache_) return std::shared_ptr<const ChunkBytes>();
  if (auto hit = chunk_cache_->Lookup(id)) return hit;
  auto bytes = std::make_unique<ChunkBytes>();
  SILO_TRY(ReadChunkView(id, &bytes->pin, &bytes->scratch, &bytes->view));
  // A decompressed chunk no longer needs its stored form (Reset would keep the buffer). A
  // raw one under the blob threshold is pinned inside a table block of RocksDB's block
  // cache, which goes with the store, while a cache entry may outlive it: copy it.
  if (bytes->view.data() != bytes->scratch.data() && bytes->pin.size() < kMinBlobSize) {
    bytes->scratch.assign(bytes->view);
    bytes->view = bytes->scratch;
  }
  if (bytes->view.data() == bytes->scratch.data()) bytes->pin = rocksdb::PinnableSlice();
  return chunk_cache_->Insert(id, std::move(bytes));
}

ChunkCacheStats StoreImpl::chunk_cache_stats() const {
  return chunk_cache_ ? chunk_cache_->stats() : ChunkCacheStats{};
}

Status StoreImpl::ReadChunk(const ChunkId& id, std::string* out) {
  rocksdb::PinnableSlice value;
  std::string_view view;
  SILO_TRY(ReadChunkView(id, &value, out, &view));
  if (view.data() != out->data()) out->assign(view);
  return Status::Ok();
}

namespace {

// One batch entry for a chunk's bytes, reserved up front so the batch never regrows (a
// regrowth copies every byte of the chunk once more).
struct ChunkBatch {
  EncodedChunk enc;
  rocksdb::WriteBatch batch;
  Result<ChunkMeta> meta;

  ChunkBatch(StoreImpl* store, const ChunkId& id, ByteSpan raw, int zstd_level)
      : enc(EncodeChunk(raw, zstd_level)),
        batch(enc.stored_size(raw.size()) + 256),
        meta(store->PutChunkValue(&batch, id, raw, enc)) {}
};

}  // namespace

Result<ChunkMeta> StoreImpl::PutChunkValue(rocksdb::WriteBatch* batch, const ChunkId& id, ByteSpan raw,
                                           const EncodedChunk& enc) {
  ChunkMeta meta{NowMicros(), static_cast<uint32_t>(raw.size()), static_cast<uint32_t>(enc.stored_size(raw.size()))};
  rocksdb::Slice key(KeyOf(id).data(), KeyOf(id).size());
  rocksdb::Slice parts[2] = {rocksdb::Slice(enc.header),
                             enc.is_compressed ? rocksdb::Slice(enc.compressed().data(), enc.compressed().size())
                                               : rocksdb::Slice(reinterpret_cast<const char*>(raw.data()), raw.size())};
  SILO_TRY(FromRocks(batch->Put(chunks(), rocksdb::SliceParts(&key, 1), rocksdb::SliceParts(parts, 2)), "write chunk"));
  return meta;
}

Status StoreImpl::WriteChunk(const ChunkId& id, ByteSpan raw, uint64_t* stored_size, int zstd_level) {
  ChunkBatch c(this, id, raw, ChunkLevel(zstd_level));
  SILO_TRY(c.meta.status());
  *stored_size = c.meta->stored_length;
  SILO_TRY(FromRocks(c.batch.Put(chunk_meta(), KeyOf(id), c.meta->Encode()), "write chunk"));
  return FromRocks(db_->Write(rocksdb::WriteOptions(), &c.batch), "write chunk");
}

Status StoreImpl::WriteChunkUnlogged(const ChunkId& id, ByteSpan raw, int zstd_level, ChunkMeta* meta,
                                     uint64_t* ticket) {
  ChunkBatch c(this, id, raw, ChunkLevel(zstd_level));
  SILO_TRY(c.meta.status());
  *meta = *c.meta;
  // The pending record first and logged: whenever the bytes may have reached disk, a
  // record exists that lets gc find and sweep them.
  ChunkMeta pending = *c.meta;
  pending.pending = true;
  SILO_TRY(FromRocks(db_->Put(rocksdb::WriteOptions(), chunk_meta(), KeyOf(id), pending.Encode()), "write chunk"));
  rocksdb::WriteOptions unlogged;
  unlogged.disableWAL = true;
  std::shared_lock lock(unlogged_mu_);
  *ticket = unlogged_tickets_.fetch_add(1) + 1;
  return FromRocks(db_->Write(unlogged, &c.batch), "write chunk");
}

Status StoreImpl::FlushUnloggedChunks(uint64_t ticket) {
  std::lock_guard flush_lock(flush_mu_);
  if (flushed_ticket_ >= ticket) return Status::Ok();
  uint64_t target;
  {
    std::unique_lock lock(unlogged_mu_);
    target = unlogged_tickets_.load();
  }
  rocksdb::FlushOptions fo;
  fo.wait = true;
  fo.allow_write_stall = true;
  SILO_TRY(FromRocks(db_->Flush(fo, chunks()), "flush chunks"));
  flushed_ticket_ = target;
  return Status::Ok();
}

void StoreImpl::AcquireChunkBudget(size_t bytes) {
  std::unique_lock lock(budget_mu_);
  // One chunk larger than what is free still goes when nothing else is in flight.
  budget_cv_.wait(lock, [&] { return budget_used_ == 0 || budget_used_ + bytes <= kChunkBudget; });
  budget_used_ += bytes;
}

void StoreImpl::ReleaseChunkBudget(size_t bytes) {
  {
    std::lock_guard lock(budget_mu_);
    budget_used_ -= bytes;
  }
  budget_cv_.notify_all();
}

Status StoreImpl::DropDamagedChunk(const ChunkId& id) {
  rocksdb::WriteBatch batch;
  batch.Delete(chunks(), KeyOf(id));
  batch.Delete(chunk_meta(), KeyOf(id));
  return FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "drop damaged chunk");
}

bool StoreImpl::ChunkExists(const ChunkId& id) {
  rocksdb::PinnableSlice value;
  if (!db_->Get(rocksdb::ReadOptions(), chunk_meta(), KeyOf(id), &value).ok()) return false;
  auto meta = ChunkMeta::Decode(value.ToStringView());
  return meta.ok() && !meta->pending;
}

ObjectInfo StoreImpl::InfoFromRecord(const Digest& digest, const ObjectRecord& r) {
  ObjectInfo info;
  info.digest = digest;
  info.size = r.size;
  info.inlined = r.inlined;
  info.chunk_count = static_cast<uint32_t>(r.chunks.size());
  if (r.has_sha1) info.sha1 = Digest::Sha1(r.sha1);
  info.links = r.links;
  info.created_us = r.created_us;
  return info;
}

Result<Digest> StoreImpl::Resolve(const Digest& digest) {
  if (digest.is_sha256()) return digest;
  std::string value;
  auto rs = db_->Get(rocksdb::ReadOptions(), aliases(), digest.raw(), &value);
  if (rs.IsNotFound()) return Status::NotFound(digest.ToString() + ": no object has this SHA-1");
  SILO_TRY(FromRocks(rs, digest.ToString()));
  Digest d;
  if (!Digest::FromRaw(value, &d)) return Status::Corruption(digest.ToString() + ": alias record malformed");
  return d;
}

Result<ObjectInfo> StoreImpl::Stat(const Digest& digest) {
  SILO_ASSIGN_OR_RETURN(Digest d, Resolve(digest));
  SILO_ASSIGN_OR_RETURN(ObjectRecord r, LoadRecord(d));
  return InfoFromRecord(d, r);
}

Result<std::vector<Digest>> StoreImpl::Missing(std::span<const Digest> digests) {
  std::vector<Digest> resolved;
  std::vector<rocksdb::Slice> keys;
  std::vector<bool> unresolved(digests.size(), false);
  resolved.reserve(digests.size());
  for (size_t i = 0; i < digests.size(); ++i) {
    auto r = Resolve(digests[i]);
    if (!r.ok()) {
      if (!r.status().IsNotFound()) return std::move(r).take_status();
      unresolved[i] = true;
      resolved.push_back(digests[i]);
    } else {
      resolved.push_back(*r);
    }
  }
  for (const auto& d : resolved) keys.emplace_back(d.raw().data(), d.raw().size());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db_->MultiGet(rocksdb::ReadOptions(), objects(), keys.size(), keys.data(), values.data(), statuses.data());
  std::vector<Digest> missing;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (unresolved[i] || statuses[i].IsNotFound()) {
      missing.push_back(digests[i]);
    } else if (!statuses[i].ok()) {
      return FromRocks(statuses[i], "lookup " + digests[i].ToString());
    }
  }
  return missing;
}

namespace {

class PinsImpl final : public ObjectPins {
 public:
  explicit PinsImpl(StoreImpl* store) : store_(store), pins_(store->barrier()) {}

  Result<std::vector<Digest>> PinExisting(std::span<const Digest> digests) override {
    for (const auto& d : digests) {
      if (!d.is_sha256()) return Status::InvalidArgument("pin " + d.ToString() + ": pins name sha256 objects");
    }
    // Pin first, then look: a collection that has not removed an object by now keeps it
    // (and what it reaches) while the pin lives.
    for (const auto& d : digests) pins_.PinObject(d.raw());
    return store_->Missing(digests);
  }

 private:
  StoreImpl* store_;
  PinSet pins_;
};

}  // namespace

std::unique_ptr<ObjectPins> StoreImpl::NewPins() {
  return std::make_unique<PinsImpl>(this);
}

uint64_t StoreImpl::DiskUsage() const {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(path_, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  }
  return total;
}

double StoreStats::dedup_ratio() const {
  uint64_t denom = chunk_bytes + inline_bytes;
  return denom == 0 ? 1.0 : static_cast<double>(logical_bytes) / static_cast<double>(denom);
}

Status ValidateRefName(std::string_view name) {
  auto bad = [&](const char* why) { return Status::InvalidArgument("ref name '" + std::string(name) + "': " + why); };
  if (name.empty()) return bad("empty");
  if (name.size() > 4096) return bad("longer than 4096 bytes");
  if (name.find('/') == std::string_view::npos) return bad("expected namespace/name, e.g. image/..., snapshot/...");
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    auto part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return bad("empty, '.' or '..' path component");
    start = end + 1;
  }
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return bad("control character");
  }
  return Status::Ok();
}

}  // namespace silo::store
