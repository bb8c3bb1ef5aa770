// Refs: named roots with compare-and-set updates.
#include "store/rocks.h"
#include "store/store_impl.h"

namespace silo::store {

Result<std::optional<Digest>> StoreImpl::GetRef(const std::string& name) {
  SILO_TRY(ValidateRefName(name));
  std::string value;
  auto rs = db_->Get(rocksdb::ReadOptions(), refs(), name, &value);
  if (rs.IsNotFound()) return std::optional<Digest>();
  SILO_TRY(FromRocks(rs, "ref " + name));
  SILO_ASSIGN_OR_RETURN(Digest d, DecodeRefTarget(value).WithContext("ref " + name));
  return std::optional<Digest>(d);
}

Status StoreImpl::SetRef(const std::string& name, const Digest& target, std::optional<std::optional<Digest>> expected) {
  SILO_TRY(RequireWritable("ref set"));
  SILO_TRY(ValidateRefName(name));
  auto ctx = "ref " + name;
  SILO_ASSIGN_OR_RETURN(Digest resolved, Resolve(target).WithContext(ctx));
  std::lock_guard lock(refs_mu_);
  {
    // Shade first, then check existence: a running collection cannot delete it after this.
    std::lock_guard gc_lock(barrier_.mutex());
    barrier_.ShadeObjectLocked(std::string(resolved.raw()));
  }
  auto missing = Missing({&resolved, 1});
  SILO_TRY(missing.status());
  if (!missing->empty()) return Status::NotFound(ctx + ": target " + resolved.ToString() + " is not in the store");
  if (expected) {
    SILO_ASSIGN_OR_RETURN(auto current, GetRef(name));
    if (current != *expected) {
      return Status::Conflict(ctx + ": changed concurrently (now " +
                              (current ? current->ToString() : std::string("absent")) + ")");
    }
  }
  rocksdb::WriteOptions wo;
  return FromRocks(db_->Put(wo, refs(), name, EncodeRefTarget(resolved)), ctx);
}

Status StoreImpl::DeleteRef(const std::string& name, std::optional<Digest> expected) {
  SILO_TRY(RequireWritable("ref rm"));
  SILO_TRY(ValidateRefName(name));
  std::lock_guard lock(refs_mu_);
  SILO_ASSIGN_OR_RETURN(auto current, GetRef(name));
  if (!current) return Status::NotFound("ref " + name + ": no such ref");
  if (expected && *current != *expected) {
    return Status::Conflict("ref " + name + ": points to " + current->ToString() + ", not " + expected->ToString());
  }
  return FromRocks(db_->Delete(rocksdb::WriteOptions(), refs(), name), "ref " + name);
}

Result<std::vector<RefEntry>> StoreImpl::ListRefs(const std::string& prefix) {
  std::vector<RefEntry> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), refs()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    SILO_ASSIGN_OR_RETURN(Digest d, DecodeRefTarget(it->value().ToStringView()));
    out.push_back({it->key().ToString(), d});
  }
  SILO_TRY(FromRocks(it->status(), "list refs"));
  return out;
}

}  // namespace silo::store
