#include "transfer/server/metrics.h"

#include <cstdio>

#include "store/store.h"

namespace silo::server {

void Metrics::RequestDone(int status, uint64_t bytes, double seconds) {
  if (status < 0 || status >= static_cast<int>(by_status_.size())) status = 0;
  by_status_[static_cast<size_t>(status)].fetch_add(1, std::memory_order_relaxed);
  bytes_out_.fetch_add(bytes, std::memory_order_relaxed);
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  duration_us_.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
  requests_.fetch_add(1, std::memory_order_relaxed);
}

void AppendMetric(std::string* out, std::string_view name, std::string_view type, std::string_view help,
                  uint64_t value) {
  std::string n(name);
  if (!help.empty()) *out += "# HELP " + n + " " + std::string(help) + "\n";
  *out += "# TYPE " + n + " " + std::string(type) + "\n" + n + " " + std::to_string(value) + "\n";
}

std::string ChunkCacheMetricsText(const store::ChunkCacheStats& c) {
  std::string out;
  if (c.capacity == 0) return out;
  AppendMetric(&out, "silo_chunk_cache_capacity_bytes", "gauge", "", c.capacity);
  AppendMetric(&out, "silo_chunk_cache_usage_bytes", "gauge", "", c.usage);
  AppendMetric(&out, "silo_chunk_cache_pinned_bytes", "gauge", "", c.pinned);
  AppendMetric(&out, "silo_chunk_cache_hits_total", "counter", "", c.hits);
  AppendMetric(&out, "silo_chunk_cache_misses_total", "counter", "", c.misses);
  return out;
}

std::string Metrics::Render() const {
  std::string out;
  out += "# HELP silo_http_requests_total HTTP requests answered, by status code.\n";
  out += "# TYPE silo_http_requests_total counter\n";
  for (size_t code = 0; code < by_status_.size(); ++code) {
    uint64_t n = by_status_[code].load(std::memory_order_relaxed);
    if (n == 0) continue;
    out += "silo_http_requests_total{code=\"" + std::to_string(code) + "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP silo_http_response_bytes_total Response body bytes sent.\n";
  out += "# TYPE silo_http_response_bytes_total counter\n";
  out += "silo_http_response_bytes_total " + std::to_string(bytes_out_.load()) + "\n";
  out += "# HELP silo_http_requests_in_flight Requests being served now.\n";
  out += "# TYPE silo_http_requests_in_flight gauge\n";
  out += "silo_http_requests_in_flight " + std::to_string(in_flight_.load()) + "\n";
  out += "# HELP silo_http_connections_open Client connections open now.\n";
  out += "# TYPE silo_http_connections_open gauge\n";
  out += "silo_http_connections_open " + std::to_string(connections_.load()) + "\n";
  char secs[64];
  std::snprintf(secs, sizeof secs, "%.6f", static_cast<double>(duration_us_.load()) / 1e6);
  out += "# HELP silo_http_request_duration_seconds Time from request header to last byte sent.\n";
  out += "# TYPE silo_http_request_duration_seconds summary\n";
  out += "silo_http_request_duration_seconds_sum " + std::string(secs) + "\n";
  out += "silo_http_request_duration_seconds_count " + std::to_string(requests_.load()) + "\n";
  return out;
}

}  // namespace silo::server
