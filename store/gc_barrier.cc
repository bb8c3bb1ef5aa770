#include "store/gc_barrier.h"

namespace silo::store {
namespace {
void Unpin(std::unordered_map<std::string, int>& pins, const std::string& id) {
  auto it = pins.find(id);
  if (it != pins.end() && --it->second == 0) pins.erase(it);
}
}  // namespace

void GcBarrier::PinChunk(const std::string& id) {
  std::lock_guard lock(mu_);
  ++pinned_chunks_[id];
  if (active_) shaded_chunks_.insert(id);
}

void GcBarrier::UnpinChunk(const std::string& id) {
  std::lock_guard lock(mu_);
  Unpin(pinned_chunks_, id);
}

void GcBarrier::PinObject(const std::string& id) {
  std::lock_guard lock(mu_);
  ++pinned_objects_[id];
  if (active_) shaded_objects_.insert(id);
}

void GcBarrier::UnpinObject(const std::string& id) {
  std::lock_guard lock(mu_);
  Unpin(pinned_objects_, id);
}

void GcBarrier::ShadeObjectLocked(const std::string& id) {
  if (active_) shaded_objects_.insert(id);
}

void GcBarrier::ShadeChunkLocked(const std::string& id) {
  if (active_) shaded_chunks_.insert(id);
}

std::vector<std::string> GcBarrier::ProtectedObjectsLocked() const {
  std::vector<std::string> ids;
  ids.reserve(pinned_objects_.size() + shaded_objects_.size());
  for (const auto& [id, count] : pinned_objects_) ids.push_back(id);
  for (const auto& id : shaded_objects_) ids.push_back(id);
  return ids;
}

bool GcBarrier::ObjectDeletableLocked(const std::string& id) const {
  return !pinned_objects_.contains(id) && !shaded_objects_.contains(id);
}

bool GcBarrier::ChunkDeletableLocked(const std::string& id) const {
  return !pinned_chunks_.contains(id) && !shaded_chunks_.contains(id);
}

void GcBarrier::Begin() {
  std::lock_guard lock(mu_);
  active_ = true;
}

void GcBarrier::End() {
  std::lock_guard lock(mu_);
  active_ = false;
  shaded_chunks_.clear();
  shaded_objects_.clear();
}

}  // namespace silo::store
