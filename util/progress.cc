#include "util/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "util/units.h"

namespace silo {
namespace {
std::atomic<bool> g_quiet{false};
std::atomic<bool> g_debug{false};
}  // namespace

void SetDebug(bool debug) {
  g_debug = debug;
}
bool IsDebug() {
  return g_debug;
}

void SetQuiet(bool quiet) {
  g_quiet = quiet;
}
bool IsQuiet() {
  return g_quiet;
}

Progress::Progress(std::string label, uint64_t total, Mode mode)
    : label_(std::move(label)),
      total_(total),
      mode_(mode),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {
  if (mode_ == Mode::kAuto) {
    if (IsQuiet()) {
      mode_ = Mode::kQuiet;
    } else {
      mode_ = isatty(STDERR_FILENO) ? Mode::kTerminal : Mode::kLog;
    }
  }
  if (const char* ms = std::getenv("SILO_PROGRESS_INTERVAL_MS"); ms && *ms) {
    char* end = nullptr;
    long v = std::strtol(ms, &end, 10);
    if (end && *end == '\0' && v >= 0) log_interval_ = std::chrono::milliseconds(v);
  }
}

void Progress::SetUnits(std::string items_noun, std::string bytes_verb) {
  std::lock_guard lock(mu_);
  items_noun_ = std::move(items_noun);
  bytes_verb_ = std::move(bytes_verb);
}

void Progress::AddItems(uint64_t n) {
  items_ += n;
  Tick();
}

Progress::~Progress() {
  Finish();
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::Add(uint64_t bytes) {
  done_ += bytes;
  Tick();
}

void Progress::Tick() {
  if (mode_ == Mode::kQuiet) return;
  auto now = std::chrono::steady_clock::now();
  auto interval = mode_ == Mode::kTerminal ? std::chrono::milliseconds(200) : log_interval_;
  std::unique_lock lock(mu_, std::try_to_lock);
  if (!lock.owns_lock() || finished_ || now - last_draw_ < interval) return;
  last_draw_ = now;
  Draw(false);
}

void Progress::Draw(bool final) {
  uint64_t done = done_.load();
  double secs = elapsed_seconds();
  std::string line = label_ + ": ";
  if (!items_noun_.empty()) line += std::to_string(items_.load()) + " " + items_noun_ + ", ";
  line += FormatBytes(done);
  if (total_ > 0) {
    char pct[16];
    std::snprintf(pct, sizeof pct, " (%.0f%%)", 100.0 * static_cast<double>(done) / static_cast<double>(total_));
    line += " of " + FormatBytes(total_) + pct;
  }
  if (!bytes_verb_.empty()) line += " " + bytes_verb_;
  line += ", " + FormatRate(done, secs);
  if (total_ > done && secs > 0 && done > 0) {
    double eta = secs * static_cast<double>(total_ - done) / static_cast<double>(done);
    line += ", ETA " + FormatDuration(eta);
  }
  if (mode_ == Mode::kTerminal) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

void Progress::Clear() {
  std::lock_guard lock(mu_);
  if (finished_ || mode_ != Mode::kTerminal) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
}

void Progress::Finish() {
  std::lock_guard lock(mu_);
  if (finished_) return;
  finished_ = true;
  if (mode_ == Mode::kTerminal) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
}

}  // namespace silo
