// Progress reporting for long operations: a live, rewritten line on a terminal,
// plain log lines (at most one every few seconds) otherwise, nothing when quiet.
// Thread-safe: Add(), AddItems(), Tick() and Clear() may be called from any thread.
//
// The environment variable SILO_PROGRESS_INTERVAL_MS sets how often a log line is printed
// when stderr is not a terminal (default 5000), for scripts and tests that follow it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace silo {

class Progress {
 public:
  enum class Mode { kAuto, kTerminal, kLog, kQuiet };
  // `total` is the expected number of bytes, 0 when unknown.
  Progress(std::string label, uint64_t total, Mode mode = Mode::kAuto);
  ~Progress();

  void Add(uint64_t bytes);
  // Counts items (files, say) besides bytes; the line shows them once SetUnits named them.
  void AddItems(uint64_t n);
  // Names what AddItems counts ("files") and what the bytes are ("read", "written"); both
  // optional. Call before the operation starts (not thread-safe against Draw).
  void SetUnits(std::string items_noun, std::string bytes_verb);
  // Redraws if enough time has passed; cheap to call often.
  void Tick();
  // Clears the live line for a message (a warning) printed next; drawing resumes at the
  // next tick.
  void Clear();
  // Clears the live line; the caller prints its own summary afterwards.
  void Finish();

  uint64_t done() const { return done_.load(); }
  uint64_t items() const { return items_.load(); }
  double elapsed_seconds() const;

 private:
  void Draw(bool final);

  std::string label_;
  uint64_t total_;
  Mode mode_;
  std::atomic<uint64_t> done_{0};
  std::atomic<uint64_t> items_{0};
  std::string items_noun_;
  std::string bytes_verb_;
  std::chrono::milliseconds log_interval_{5000};
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  std::mutex mu_;
  bool finished_ = false;
};

// Global verbosity set by the CLI's --quiet/--debug.
void SetQuiet(bool quiet);
bool IsQuiet();
void SetDebug(bool debug);
bool IsDebug();

}  // namespace silo
