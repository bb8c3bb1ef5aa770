// An HTTP client on libcurl: connection reuse across requests and threads (a shared
// connection cache), HTTP/2 where the server offers it, TLS verified by default, streamed
// bodies, Ctrl-C aborts a transfer. Thread-safe: one client serves every thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "util/hash.h"
#include "util/result.h"

namespace silo::transfer {

struct HttpOptions {
  bool tls_verify = true;
  std::string ca_file;  // extra CA bundle (PEM); empty: the system's
  long connect_timeout_s = 30;
  // A transfer slower than 1 KiB/s for this long is a timeout.
  long low_speed_time_s = 60;
  std::string user_agent = "silo";
  // Bytes per second per transfer; 0: unlimited.
  uint64_t max_recv_speed = 0;
  // libcurl's receive buffer (bytes per body callback at most); 0: libcurl's default.
  long buffer_size = 0;
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;     // "Name: value"
  std::optional<uint64_t> range_start;  // sends "Range: bytes=N-"
  std::string body;                     // request body (PUT/POST)
  // A streamed request body of exactly `body_size` bytes (instead of `body`): called for
  // the next bytes into the buffer, returns how many (0 only at the end). An error aborts
  // the transfer and is returned by Do(). Memory stays bounded whatever the size.
  std::function<Result<size_t>(std::span<uint8_t>)> body_source;
  uint64_t body_size = 0;
  bool follow_redirects = true;
  // Receives the response body of a 2xx answer as it arrives, with the status (200 or
  // 206); an error aborts the transfer and is returned by Do(). When null the body is
  // collected (up to max_body).
  std::function<Status(long status, ByteSpan)> on_body;
  uint64_t max_body = 4 << 20;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // lowercase names; the last value wins
  std::string body;                            // when no on_body sink was given
  std::string header(const std::string& lower_name) const;
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Performs the request. Transport failures (refused, reset, timeout, TLS) are Network
  // errors naming the method and URL; any HTTP status is a successful Result.
  Result<HttpResponse> Do(const HttpRequest& request);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "Basic base64(user:password)" helpers.
std::string Base64Encode(std::string_view in);
Result<std::string> Base64Decode(std::string_view in);

}  // namespace silo::transfer
