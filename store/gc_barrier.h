// Coordination between garbage collection and concurrent writers (private to store/).
//
// Writers pin every chunk and link target they rely on before checking that it exists,
// and keep the pin until their object is committed. While a collection runs, commits and
// ref updates also "shade" what they touched; the sweep never deletes a pinned or shaded
// id, and decides each deletion under the barrier's mutex. One process owns a store for
// writing, so this in-memory barrier sees every writer.
#pragma once

#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace silo::store {

class GcBarrier {
 public:
  void PinChunk(const std::string& id);
  void UnpinChunk(const std::string& id);
  void PinObject(const std::string& id);
  void UnpinObject(const std::string& id);

  // Shades ids when a collection is running (no-op otherwise). Caller holds mutex().
  void ShadeObjectLocked(const std::string& id);
  void ShadeChunkLocked(const std::string& id);

  // Caller holds mutex(): every pinned or shaded object id (the sweep keeps what they reach).
  std::vector<std::string> ProtectedObjectsLocked() const;

  // Caller holds mutex(): may the sweep delete this id now?
  bool ObjectDeletableLocked(const std::string& id) const;
  bool ChunkDeletableLocked(const std::string& id) const;

  void Begin();
  void End();
  bool active() const { return active_; }
  std::mutex& mutex() { return mu_; }

 private:
  std::mutex mu_;
  bool active_ = false;
  std::unordered_map<std::string, int> pinned_chunks_;
  std::unordered_map<std::string, int> pinned_objects_;
  std::unordered_set<std::string> shaded_chunks_;
  std::unordered_set<std::string> shaded_objects_;
};

}  // namespace silo::store
