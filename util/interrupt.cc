#include "util/interrupt.h"

#include <atomic>
#include <csignal>

namespace silo {
namespace {
std::atomic<int> g_signal{0};

extern "C" void OnSignal(int sig) {
  if (g_signal.load() != 0) {
    // A second Ctrl-C: the user wants out now.
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
  g_signal.store(sig);
}
}  // namespace

void InstallInterruptHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

bool Interrupted() {
  return g_signal.load(std::memory_order_relaxed) != 0;
}
int InterruptSignal() {
  return g_signal.load();
}
void RequestInterrupt(int signal_number) {
  g_signal.store(signal_number);
}

}  // namespace silo
