// The per-image worker loop shared by Puller::Pull and Pusher::Push: up to `jobs` threads
// (1..64, never more than the items) take items in order; once interrupted, the items not
// started fail as "not started". Each item's status is set, and the image counters
// (images_total/active/done/failed, common to PullCounters and PushCounters) kept.
#pragma once

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "util/interrupt.h"
#include "util/result.h"

namespace silo::transfer {

// `run(item)` returns the item's status (with its context already added).
template <typename Item, typename Counters, typename Run>
void RunImageJobs(std::vector<Item>& items, int jobs, Counters& counters, Run run) {
  counters.images_total += items.size();
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (;;) {
      size_t i = next++;
      if (i >= items.size()) return;
      Item& item = items[i];
      if (Interrupted()) {
        item.status = Status::Interrupted("not started: interrupted");
        counters.images_failed++;
        continue;
      }
      counters.images_active++;
      item.status = run(item);
      counters.images_active--;
      (item.status.ok() ? counters.images_done : counters.images_failed)++;
    }
  };
  std::vector<std::thread> threads;
  size_t n = std::min<size_t>(static_cast<size_t>(std::clamp(jobs, 1, 64)), items.size());
  for (size_t t = 0; t < n; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
}

}  // namespace silo::transfer
