// HashLane: feeds spans, in the order they are pushed, to a SHA-256 (and optionally a
// SHA-1) on a thread of its own. A writer hashes the whole object there while its own
// thread finds the chunk boundaries, so the two passes over every byte run on two cores.
// Internal to the store.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "util/hash.h"

namespace silo::store {

class HashLane {
 public:
  // `sha256` and `sha1` (null for none) must outlive the lane; nobody else may touch them
  // until Drain returns.
  HashLane(Sha256* sha256, Sha1* sha1);
  // Hashes what is queued, then stops the thread.
  ~HashLane();
  HashLane(const HashLane&) = delete;
  HashLane& operator=(const HashLane&) = delete;

  // Queues `data`. `owner` keeps it alive until hashed; with none, the caller keeps it
  // alive until Drain returns. Blocks while a span already waits (bounded memory).
  void Push(ByteSpan data, std::shared_ptr<const void> owner);
  // Returns once every pushed span is hashed.
  void Drain();

 private:
  struct Job {
    ByteSpan data;
    std::shared_ptr<const void> owner;
  };
  void Run();

  Sha256* sha256_;
  Sha1* sha1_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;  // the front one is being hashed; it leaves the queue when done
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace silo::store
