// Blob upload sessions of the registry API (POST, PATCH, PUT .../blobs/uploads/<uuid>):
// each holds an open store writer, so the bytes stream into the store as they arrive
// and memory stays bounded; nothing is visible until the final PUT commits with the
// client's digest. Sessions live in memory (a restart forgets them: the client starts
// over) and expire after an idle period. Thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "store/store.h"
#include "util/result.h"

namespace silo::server {

struct UploadSession {
  // Held by the request working on the session; a second request at the same time gets
  // a conflict rather than interleaving bytes.
  std::mutex mu;
  std::unique_ptr<store::ObjectWriter> writer;
  std::string repository;  // the served name the upload was started for
  std::chrono::steady_clock::time_point last_used;
};

class Uploads {
 public:
  Uploads(store::Store& store, std::chrono::seconds idle_expiry) : store_(store), expiry_(idle_expiry) {}

  // A new session for `repository`; returns its id (32 random hex digits).
  Result<std::string> Start(const std::string& repository);
  // The session `id`, or null when unknown or expired.
  std::shared_ptr<UploadSession> Find(const std::string& id);
  // Forgets `id` (after commit or cancel); the writer is aborted if still open.
  void Remove(const std::string& id);
  size_t active();

 private:
  void ExpireLocked();

  store::Store& store_;
  std::chrono::seconds expiry_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<UploadSession>> sessions_;
};

}  // namespace silo::server
