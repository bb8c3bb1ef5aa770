#include "store/gc_barrier.h"

namespace silo::store {
namespace {

void Unpin(std::unordered_map<std::string, int>& pins, const std::string& id) {
  auto it = pins.find(id);
  if (it != pins.end() && --it->second == 0) pins.erase(it);
}

bool Holds(const RawIdSet& set, const std::string& id) {
  return id.size() == 32 && set.contains(RawId::Of(id));
}

}  // namespace

PinSet::PinSet(GcBarrier& barrier) : barrier_(barrier) {
  barrier_.Register(this);
}

PinSet::~PinSet() {
  barrier_.Unregister(this);
}

void PinSet::PinObject(std::string_view id) {
  std::lock_guard lock(mu_);
  objects_.insert(RawId::Of(id));
}

void PinSet::PinChunk(std::string_view id) {
  std::lock_guard lock(mu_);
  chunks_.insert(RawId::Of(id));
}

void GcBarrier::Register(PinSet* set) {
  std::lock_guard lock(mu_);
  sets_.insert(set);
}

void GcBarrier::Unregister(PinSet* set) {
  std::lock_guard lock(mu_);
  sets_.erase(set);
  if (!active_) return;
  // A running collection may have decided nothing about these yet: they stay until it ends.
  std::lock_guard set_lock(set->mu_);
  for (const auto& id : set->objects_) shaded_objects_.emplace(id.view());
  for (const auto& id : set->chunks_) shaded_chunks_.emplace(id.view());
}

GcBarrier::SweepLock::SweepLock(GcBarrier& b) : b_(b) {
  b_.mu_.lock();
  for (PinSet* s : b_.sets_) s->mu_.lock();
}

GcBarrier::SweepLock::~SweepLock() {
  for (PinSet* s : b_.sets_) s->mu_.unlock();
  b_.mu_.unlock();
}

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
  for (const PinSet* s : sets_) {
    for (const auto& id : s->objects_) ids.emplace_back(id.view());
  }
  return ids;
}

bool GcBarrier::ObjectDeletableLocked(const std::string& id) const {
  if (pinned_objects_.contains(id) || shaded_objects_.contains(id)) return false;
  for (const PinSet* s : sets_) {
    if (Holds(s->objects_, id)) return false;
  }
  return true;
}

bool GcBarrier::ChunkDeletableLocked(const std::string& id) const {
  if (pinned_chunks_.contains(id) || shaded_chunks_.contains(id)) return false;
  for (const PinSet* s : sets_) {
    if (Holds(s->chunks_, id)) return false;
  }
  return true;
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
