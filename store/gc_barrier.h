// Coordination between garbage collection and concurrent writers (private to store/).
//
// Writers pin every chunk and link target they rely on before checking that it exists,
// and keep the pin until their object is committed. While a collection runs, commits and
// ref updates also "shade" what they touched; the sweep never deletes a pinned or shaded
// id, and decides each deletion under the barrier's sweep lock. One process owns a store
// for writing, so this in-memory barrier sees every writer.
//
// Long-lived writers that pin many ids (a commit group, a snapshot's pins) keep them in a
// PinSet of their own: pinning takes only the set's mutex, and the whole set is released
// at once.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace silo::store {

class GcBarrier;

// A 32-byte id (an object's raw SHA-256 digest, a chunk's key) held by value: a set of
// them costs one allocation per id, and no string.
struct RawId {
  std::array<char, 32> bytes;
  static RawId Of(std::string_view id) {
    RawId r{};
    std::memcpy(r.bytes.data(), id.data(), std::min(id.size(), r.bytes.size()));
    return r;
  }
  std::string_view view() const { return {bytes.data(), bytes.size()}; }
  bool operator==(const RawId&) const = default;
};
struct RawIdHash {
  size_t operator()(const RawId& id) const {
    size_t h;  // the ids are digests: any eight of their bytes are as good as a hash
    std::memcpy(&h, id.bytes.data(), sizeof h);
    return h;
  }
};
using RawIdSet = std::unordered_set<RawId, RawIdHash>;

// Ids pinned for as long as the set lives. Thread-safe.
class PinSet {
 public:
  explicit PinSet(GcBarrier& barrier);  // registers with the barrier
  ~PinSet();                            // unregisters (shading every id if a collection runs)
  PinSet(const PinSet&) = delete;
  PinSet& operator=(const PinSet&) = delete;

  // `id`: 32 bytes (an object's raw SHA-256 digest, a chunk's key).
  void PinObject(std::string_view id);
  void PinChunk(std::string_view id);

 private:
  friend class GcBarrier;
  GcBarrier& barrier_;
  std::mutex mu_;  // after the barrier's mutex when both are held
  RawIdSet objects_;
  RawIdSet chunks_;
};

class GcBarrier {
 public:
  void PinChunk(const std::string& id);
  void UnpinChunk(const std::string& id);
  void PinObject(const std::string& id);
  void UnpinObject(const std::string& id);

  // Shades ids when a collection is running (no-op otherwise). Caller holds mutex().
  void ShadeObjectLocked(const std::string& id);
  void ShadeChunkLocked(const std::string& id);

  // The sweep's lock: the barrier's mutex and every pin set's, so that no id is pinned
  // between a decision and the write that carries it out.
  class SweepLock {
   public:
    explicit SweepLock(GcBarrier& b);
    ~SweepLock();
    SweepLock(const SweepLock&) = delete;
    SweepLock& operator=(const SweepLock&) = delete;

   private:
    GcBarrier& b_;
  };

  // Caller holds a SweepLock: every pinned or shaded object id (the sweep keeps what they
  // reach).
  std::vector<std::string> ProtectedObjectsLocked() const;

  // Caller holds a SweepLock: may the sweep delete this id now?
  bool ObjectDeletableLocked(const std::string& id) const;
  bool ChunkDeletableLocked(const std::string& id) const;

  void Begin();
  void End();
  bool active() const { return active_; }
  std::mutex& mutex() { return mu_; }

 private:
  friend class PinSet;
  void Register(PinSet* set);
  void Unregister(PinSet* set);

  std::mutex mu_;
  bool active_ = false;
  std::unordered_map<std::string, int> pinned_chunks_;
  std::unordered_map<std::string, int> pinned_objects_;
  std::unordered_set<std::string> shaded_chunks_;
  std::unordered_set<std::string> shaded_objects_;
  std::unordered_set<PinSet*> sets_;
};

}  // namespace silo::store
