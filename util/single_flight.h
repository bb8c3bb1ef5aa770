// Work keyed by a name, run at most once at a time: a caller whose key is already running
// waits for that run and takes its status instead of starting another (a blob shared by
// images pulled or pushed at the same moment goes over the wire once). Thread-safe.
#pragma once

#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <string>

#include "util/result.h"

namespace silo {

class SingleFlight {
 public:
  struct Outcome {
    bool ran = false;  // this call ran the work (else it waited for another call's run)
    Status status;     // the status of the run
  };

  // Runs `work` for `key` unless a run for `key` is in flight; then waits for that run. The
  // key is free again before waiters wake, so a waiter that retries starts a fresh run.
  Outcome Do(const std::string& key, const std::function<Status()>& work);

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_future<Status>> inflight_;
};

}  // namespace silo
