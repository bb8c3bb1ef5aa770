#include "util/single_flight.h"

namespace silo {

SingleFlight::Outcome SingleFlight::Do(const std::string& key, const std::function<Status()>& work) {
  std::promise<Status> promise;
  std::shared_future<Status> running;
  {
    std::lock_guard lock(mu_);
    auto it = inflight_.find(key);
    if (it != inflight_.end()) {
      running = it->second;
    } else {
      inflight_.emplace(key, promise.get_future().share());
    }
  }
  if (running.valid()) return {false, running.get()};
  Status s = work();
  {
    std::lock_guard lock(mu_);
    inflight_.erase(key);
  }
  promise.set_value(s);
  return {true, s};
}

}  // namespace silo
