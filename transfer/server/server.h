// `silo serve`'s HTTP server: Boost.Beast on Asio with C++20 coroutines. Several
// listeners (IPv4 and IPv6), HTTP/1.1 keep-alive, optional TLS (OpenSSL), header size
// limits, a structured access log, /metrics (Prometheus text) and /healthz, and graceful
// shutdown (stop accepting, finish in-flight responses, bounded wait).
//
// Connections run as coroutines on a few I/O threads (a strand each); handlers run on a
// separate blocking pool (see router.h), so a slow disk read stalls only its own request.
//
//   Router router;
//   router.Add("/v2/", handler);
//   Server server(std::move(router), options);
//   SILO_TRY(server.Start());   // binds every listener
//   server.Run();               // until SIGTERM/SIGINT or Shutdown()
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "transfer/server/router.h"
#include "util/result.h"

namespace silo::server {

struct ServerOptions {
  // "ADDR:PORT": "127.0.0.1:5000", "[::1]:5000", "[::]:5000", "0.0.0.0:5000"; port 0
  // picks a free one (see Server::endpoints()). At least one.
  std::vector<std::string> listen;
  // PEM certificate chain and key: every listener speaks HTTPS. Both or neither.
  std::string tls_cert;
  std::string tls_key;
  // Request line plus headers larger than this get 431 and the connection is closed.
  uint32_t header_limit = 16 * 1024;
  size_t io_threads = 2;
  size_t blocking_threads = 32;
  // Keep-alive connections idle this long are closed; a stalled body read fails after
  // io_timeout, as does a client that stops reading a response.
  std::chrono::seconds idle_timeout{120};
  std::chrono::seconds io_timeout{120};
  // On shutdown, in-flight responses get this long to finish before connections are cut.
  std::chrono::seconds shutdown_grace{10};
  // Access log: "" for stderr, "-" for stdout, "off", or a file path (appended to).
  std::string access_log;
  // Install SIGTERM/SIGINT handlers that start a graceful shutdown (the CLI does).
  bool handle_signals = true;
};

// Parses "ADDR:PORT" / "[V6]:PORT"; InvalidArgument naming the input otherwise.
struct ListenAddress {
  std::string host;
  uint16_t port = 0;
};
Result<ListenAddress> ParseListenAddress(std::string_view text);

class Server {
 public:
  // Adds /metrics and /healthz to `router` (unless it has its own).
  Server(Router router, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Loads TLS material and binds every listener. Errors name the address or file.
  Status Start();
  // Bound endpoints after Start() ("127.0.0.1:43521", "[::1]:43521"), in listen order.
  std::vector<std::string> endpoints() const;
  // Serves until Shutdown() or a signal, then drains (bounded by shutdown_grace) and
  // returns. Call once, after Start().
  void Run();
  // Starts a graceful shutdown. Thread-safe; idempotent.
  void Shutdown();

  // Extra lines appended to /metrics (Prometheus text, each ending in '\n'); called on
  // the blocking pool. Set before Start().
  void SetMetricsHook(std::function<std::string()> hook);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace silo::server
