// fsck: re-hash every object and chunk; report damage; --repair removes damaged records so
// the objects can be fetched or put again.
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "store/rocks.h"
#include "store/store_impl.h"
#include "util/interrupt.h"

namespace silo::store {
namespace {

enum class ChunkState { kGood, kBad };

}  // namespace

Result<FsckReport> StoreImpl::Check(const FsckOptions& options) {
  if (options.repair) SILO_TRY(RequireWritable("fsck --repair"));
  FsckReport report;
  std::mutex mu;  // guards report, chunk_state and the problem callback
  std::unordered_map<std::string, ChunkState> chunk_state;
  auto problem = [&](const std::string& line) {
    if (options.on_problem) options.on_problem(line);
  };

  // Verifies one chunk (once, however many objects share it); returns its raw bytes.
  auto verify_chunk = [&](const ChunkRef& c, std::string* raw) -> bool {
    std::string key(KeyOf(c.id));
    Status s = ReadChunk(c.id, raw);
    bool good = s.ok() && raw->size() == c.length && Sha256::Of(AsBytes(*raw)) == c.id;
    std::lock_guard lock(mu);
    auto [it, fresh] = chunk_state.emplace(key, good ? ChunkState::kGood : ChunkState::kBad);
    if (fresh) {
      ++report.chunks_checked;
      if (!good) {
        ++report.damaged_chunks;
        problem("chunk " + ToHex(c.id) + ": " + (s.ok() ? std::string("content does not match its id") : s.message()));
      }
    }
    return good;
  };

  // Objects, in parallel on the pool.
  std::vector<std::pair<Digest, std::string>> damaged;  // digest, sha1 alias key
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), objects()));
    WaitGroup wg;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (Interrupted()) break;
      Digest digest;
      if (!Digest::FromRaw(it->key().ToStringView(), &digest)) {
        std::lock_guard lock(mu);
        ++report.other_problems;
        problem("object key of " + std::to_string(it->key().size()) + " bytes is not a digest");
        continue;
      }
      std::string value = it->value().ToString();
      wg.WaitBelow(2 * pool_->size() + 2);
      wg.Add();
      pool_->Submit([&, digest, value = std::move(value)] {
        auto rec = ObjectRecord::Decode(value);
        std::string why;
        std::string alias_key;
        uint64_t bytes = 0;
        if (!rec.ok()) {
          why = rec.status().message();
        } else {
          if (rec->has_sha1) alias_key.assign(reinterpret_cast<const char*>(rec->sha1.data()), 20);
          Sha256 whole;
          std::optional<Sha1> sha1;
          if (rec->has_sha1) sha1.emplace();
          if (rec->inlined) {
            whole.Update(AsBytes(rec->inline_data));
            if (sha1) sha1->Update(AsBytes(rec->inline_data));
            bytes = rec->inline_data.size();
          } else {
            std::string raw;
            for (const auto& c : rec->chunks) {
              if (!verify_chunk(c, &raw)) {
                why = "chunk " + ToHex(c.id).substr(0, 12) + " is damaged or missing";
                break;
              }
              whole.Update(AsBytes(raw));
              if (sha1) sha1->Update(AsBytes(raw));
              bytes += raw.size();
              if (options.on_progress) options.on_progress(raw.size());
            }
          }
          if (why.empty() && Digest::Sha256(whole.Final()) != digest) why = "content does not match its digest";
          if (why.empty() && sha1 && sha1->Final() != rec->sha1) why = "content does not match its sha1 alias";
        }
        {
          std::lock_guard lock(mu);
          ++report.objects_checked;
          report.bytes_checked += bytes;
          if (!why.empty()) {
            report.damaged_objects.push_back(digest);
            damaged.emplace_back(digest, alias_key);
            problem("object " + digest.ToString() + ": " + why);
          }
        }
        wg.Done();
      });
    }
    wg.Wait();
    SILO_TRY(FromRocks(it->status(), "fsck: scan objects"));
  }
  if (Interrupted()) return Status::Interrupted("fsck interrupted");

  // Chunks no object referenced (unfinished writes), and metadata without data.
  std::vector<std::string> bad_chunks;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), chunk_meta()));
    std::string raw;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string key = it->key().ToString();
      auto known = chunk_state.find(key);
      if (known != chunk_state.end()) {
        if (known->second == ChunkState::kBad) bad_chunks.push_back(key);
        continue;
      }
      auto meta = ChunkMeta::Decode(it->value().ToStringView());
      ChunkRef c;
      if (key.size() != 32 || !meta.ok()) {
        ++report.other_problems;
        problem("chunk metadata record malformed");
        bad_chunks.push_back(key);
        continue;
      }
      // Bytes of an unfinished large write may be gone after a crash; nothing uses them and
      // gc sweeps them, so they are not damage.
      if (meta->pending) continue;
      std::memcpy(c.id.data(), key.data(), 32);
      c.length = meta->raw_length;
      if (!verify_chunk(c, &raw)) bad_chunks.push_back(key);
      if (options.on_progress) options.on_progress(raw.size());
    }
    SILO_TRY(FromRocks(it->status(), "fsck: scan chunks"));
  }

  // Aliases must point at objects.
  std::vector<std::string> bad_aliases;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), aliases()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string target;
      if (!db_->Get(rocksdb::ReadOptions(), objects(), it->value(), &target).ok()) {
        ++report.other_problems;
        problem("alias sha1:" + ToHex(AsBytes(it->key().ToStringView())) + " points at a missing object");
        bad_aliases.push_back(it->key().ToString());
      }
    }
    SILO_TRY(FromRocks(it->status(), "fsck: scan aliases"));
  }

  if (options.repair) {
    rocksdb::WriteBatch batch;
    for (const auto& [digest, alias_key] : damaged) {
      batch.Delete(objects(), digest.raw());
      if (!alias_key.empty()) batch.Delete(aliases(), alias_key);
    }
    for (const auto& key : bad_chunks) {
      batch.Delete(chunks(), key);
      batch.Delete(chunk_meta(), key);
    }
    for (const auto& key : bad_aliases) batch.Delete(aliases(), key);
    report.repaired = damaged.size() + bad_chunks.size() + bad_aliases.size();
    if (batch.Count() > 0) {
      rocksdb::WriteOptions wo;
      wo.sync = true;
      SILO_TRY(FromRocks(db_->Write(wo, &batch), "fsck --repair"));
    }
  }
  return report;
}

Result<StoreStats> StoreImpl::Stats() {
  StoreStats st;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), objects()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto rec = ObjectRecord::Decode(it->value().ToStringView());
      if (!rec.ok()) continue;
      ++st.objects;
      st.logical_bytes += rec->size;
      if (rec->inlined) {
        ++st.inline_objects;
        st.inline_bytes += rec->size;
      }
    }
    SILO_TRY(FromRocks(it->status(), "du: scan objects"));
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), chunk_meta()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto meta = ChunkMeta::Decode(it->value().ToStringView());
      if (!meta.ok()) continue;
      ++st.chunks;
      st.chunk_bytes += meta->raw_length;
      st.stored_bytes += meta->stored_length;
    }
    SILO_TRY(FromRocks(it->status(), "du: scan chunks"));
  }
  st.stored_bytes += st.inline_bytes;
  for (auto* cf : {aliases(), refs()}) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf));
    uint64_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    (cf == aliases() ? st.aliases : st.refs) = n;
  }
  st.disk_bytes = DiskUsage();
  return st;
}

}  // namespace silo::store
