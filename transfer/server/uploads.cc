#include "transfer/server/uploads.h"

#include <openssl/rand.h>

#include "util/hash.h"

namespace silo::server {

Result<std::string> Uploads::Start(const std::string& repository) {
  uint8_t raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) return Status::IO("upload id: no random bytes");
  std::string id = ToHex(ByteSpan(raw, sizeof raw));
  SILO_ASSIGN_OR_RETURN(auto writer, store_.NewWriter());
  auto session = std::make_shared<UploadSession>();
  session->writer = std::move(writer);
  session->repository = repository;
  session->last_used = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  ExpireLocked();
  sessions_[id] = std::move(session);
  return id;
}

std::shared_ptr<UploadSession> Uploads::Find(const std::string& id) {
  std::lock_guard lock(mu_);
  ExpireLocked();
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return nullptr;
  it->second->last_used = std::chrono::steady_clock::now();
  return it->second;
}

void Uploads::Remove(const std::string& id) {
  std::shared_ptr<UploadSession> gone;
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  gone = std::move(it->second);
  sessions_.erase(it);
}

size_t Uploads::active() {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

void Uploads::ExpireLocked() {
  auto now = std::chrono::steady_clock::now();
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    // A session in use (its mutex held) is never expired under its request.
    if (now - it->second->last_used > expiry_ && it->second.use_count() == 1) {
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace silo::server
