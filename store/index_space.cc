// Index spaces: a key-value area beside the objects, keyed "<space>\0<key>".
#include "store/rocks.h"
#include "store/store_impl.h"

namespace silo::store {
namespace {

Status CheckSpace(std::string_view space) {
  if (space.empty() || space.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("index space name must be non-empty and contain no NUL byte");
  }
  return Status::Ok();
}

}  // namespace

std::string StoreImpl::IndexKey(std::string_view space, std::string_view key) {
  std::string k;
  k.reserve(space.size() + 1 + key.size());
  k.append(space);
  k.push_back('\0');
  k.append(key);
  return k;
}

Result<std::optional<std::string>> StoreImpl::GetIndex(std::string_view space, std::string_view key) {
  SILO_TRY(CheckSpace(space));
  std::string value;
  auto rs = db_->Get(rocksdb::ReadOptions(), index(), IndexKey(space, key), &value);
  if (rs.IsNotFound()) return std::optional<std::string>();
  SILO_TRY(FromRocks(rs, "index " + std::string(space)));
  return std::optional<std::string>(std::move(value));
}

Result<std::vector<std::optional<std::string>>> StoreImpl::GetIndexMany(std::string_view space,
                                                                        std::span<const std::string> keys) {
  SILO_TRY(CheckSpace(space));
  std::vector<std::string> full;
  full.reserve(keys.size());
  for (const auto& k : keys) full.push_back(IndexKey(space, k));
  std::vector<rocksdb::Slice> slices(full.begin(), full.end());
  std::vector<rocksdb::PinnableSlice> values(full.size());
  std::vector<rocksdb::Status> statuses(full.size());
  db_->MultiGet(rocksdb::ReadOptions(), index(), slices.size(), slices.data(), values.data(), statuses.data());
  std::vector<std::optional<std::string>> out(full.size());
  for (size_t i = 0; i < full.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    SILO_TRY(FromRocks(statuses[i], "index " + std::string(space)));
    out[i] = values[i].ToString();
  }
  return out;
}

Status StoreImpl::PutIndex(std::string_view space, std::string_view key, std::string_view value) {
  std::pair<std::string, std::optional<std::string>> change{std::string(key), std::string(value)};
  return WriteIndex(space, {&change, 1});
}

Status StoreImpl::WriteIndex(std::string_view space,
                             std::span<const std::pair<std::string, std::optional<std::string>>> changes) {
  SILO_TRY(RequireWritable("index"));
  SILO_TRY(CheckSpace(space));
  rocksdb::WriteBatch batch;
  for (const auto& [key, value] : changes) {
    if (value) {
      SILO_TRY(FromRocks(batch.Put(index(), IndexKey(space, key), *value), "index"));
    } else {
      SILO_TRY(FromRocks(batch.Delete(index(), IndexKey(space, key)), "index"));
    }
  }
  return FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "index " + std::string(space));
}

Status StoreImpl::ScanIndex(std::string_view space, std::string_view prefix,
                            const std::function<bool(std::string_view, std::string_view)>& fn) {
  SILO_TRY(CheckSpace(space));
  std::string start = IndexKey(space, prefix);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), index()));
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    std::string_view k = it->key().ToStringView().substr(space.size() + 1);
    if (!fn(k, it->value().ToStringView())) break;
  }
  return FromRocks(it->status(), "index " + std::string(space));
}

Status StoreImpl::DropIndex(std::string_view space) {
  SILO_TRY(RequireWritable("index"));
  SILO_TRY(CheckSpace(space));
  std::string begin = IndexKey(space, "");
  std::string end(space);
  end.push_back('\1');
  return FromRocks(db_->DeleteRange(rocksdb::WriteOptions(), index(), begin, end), "index " + std::string(space));
}

}  // namespace silo::store
