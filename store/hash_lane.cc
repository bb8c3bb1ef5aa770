#include "store/hash_lane.h"

namespace silo::store {

HashLane::HashLane(Sha256* sha256, Sha1* sha1) : sha256_(sha256), sha1_(sha1), thread_([this] { Run(); }) {}

HashLane::~HashLane() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void HashLane::Push(ByteSpan data, std::shared_ptr<const void> owner) {
  std::unique_lock lock(mu_);
  // One span hashed and one waiting: the producer runs at most one span ahead.
  cv_.wait(lock, [&] { return jobs_.size() < 2; });
  jobs_.push_back({data, std::move(owner)});
  cv_.notify_all();
}

void HashLane::Drain() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return jobs_.empty(); });
}

void HashLane::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, and everything queued is hashed
    ByteSpan data = jobs_.front().data;
    lock.unlock();
    sha256_->Update(data);
    if (sha1_) sha1_->Update(data);
    lock.lock();
    jobs_.pop_front();  // releases the owner
    cv_.notify_all();
  }
}

}  // namespace silo::store
