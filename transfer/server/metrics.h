// Request counters for /metrics, in Prometheus text format. Thread-safe (atomics).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace silo::store {
struct ChunkCacheStats;
}  // namespace silo::store

namespace silo::server {

// Appends one metric in Prometheus text format: "# HELP" (when `help` is not empty),
// "# TYPE" and the sample line.
void AppendMetric(std::string* out, std::string_view name, std::string_view type, std::string_view help,
                  uint64_t value);

// The store's chunk cache figures (silo_chunk_cache_*); empty when the store has none.
std::string ChunkCacheMetricsText(const store::ChunkCacheStats& stats);

class Metrics {
 public:
  void RequestStarted() { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  // Counts a finished request by status, with the body bytes sent and its duration.
  void RequestDone(int status, uint64_t bytes, double seconds);
  void ConnectionOpened() { connections_.fetch_add(1, std::memory_order_relaxed); }
  void ConnectionClosed() { connections_.fetch_sub(1, std::memory_order_relaxed); }
  int64_t connections() const { return connections_.load(); }

  // The exposition text: silo_http_requests_total{code=...}, silo_http_response_bytes_total,
  // silo_http_requests_in_flight, silo_http_connections_open,
  // silo_http_request_duration_seconds_sum/_count.
  std::string Render() const;

 private:
  std::array<std::atomic<uint64_t>, 600> by_status_{};
  std::atomic<uint64_t> bytes_out_{0};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> connections_{0};
  std::atomic<uint64_t> duration_us_{0};
  std::atomic<uint64_t> requests_{0};
};

}  // namespace silo::server
