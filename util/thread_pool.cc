#include "util/thread_pool.h"

namespace silo {

ThreadPool::ThreadPool(size_t threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  workers_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { Run(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::Submit(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void ThreadPool::Run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

void WaitGroup::Add(size_t n) {
  std::lock_guard lock(mu_);
  count_ += n;
}

void WaitGroup::Done() {
  {
    std::lock_guard lock(mu_);
    --count_;
  }
  cv_.notify_all();
}

void WaitGroup::Wait() {
  WaitBelow(1);
}

void WaitGroup::WaitBelow(size_t limit) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return count_ < limit; });
}

}  // namespace silo
