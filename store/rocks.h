// The one place rocksdb::Status becomes silo::Status (private to store/).
#pragma once

#include <rocksdb/status.h>

#include <string>
#include <string_view>

#include "util/result.h"

namespace silo::store {

inline Status FromRocks(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return Status::Ok();
  std::string m = std::string(context) + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(std::move(m));
  if (s.IsCorruption()) return Status::Integrity(std::move(m));
  if (s.IsBusy() || s.IsTryAgain()) return Status::Conflict(std::move(m));
  return Status::IO(std::move(m));
}

}  // namespace silo::store
