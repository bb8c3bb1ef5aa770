// A fixed-size pool of worker threads running queued tasks in FIFO order.
// Thread-safe. The destructor finishes queued tasks, then joins.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace silo {

class ThreadPool {
 public:
  // threads == 0 means one per hardware thread.
  explicit ThreadPool(size_t threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Submit(std::function<void()> task);
  size_t size() const { return workers_.size(); }

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

// Counts outstanding work; Wait() blocks until every Add() has been matched by Done().
class WaitGroup {
 public:
  void Add(size_t n = 1);
  void Done();
  void Wait();
  // Blocks until fewer than `limit` are outstanding (bounded in-flight work).
  void WaitBelow(size_t limit);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t count_ = 0;
};

}  // namespace silo
