// The handler-facing side of `silo serve`: requests, responses and the router that other
// code registers handlers with. No Asio or Beast here, so handler code compiles quickly.
//
// How a request is served (transfer/server/server.h runs this):
//   1. The connection reads the request line and headers (size-limited; 431 when too big).
//   2. The access check, when one is set (Router::SetAccessCheck), sees the request first;
//      a response it returns is sent instead of routing.
//   3. The handler whose prefix matches the path best (longest prefix) runs on the
//      server's blocking pool, so it may call the store, read files and block; it never
//      runs on an I/O thread. No route: 404.
//   4. The response it returns is sent: a string, a range of an open file, or a store
//      object through its reader, streamed in bounded chunks (never read whole into
//      memory). A single `Range: bytes=a-b` (also `a-` and `-n`) is applied here for every
//      body kind when the response is 200 and `ranges` is true: 206 with Content-Range,
//      or 416 when unsatisfiable; multi-range requests get the whole body (200).
//      HEAD gets the headers (Content-Length included) without the body.
//
// Thread safety: a Router is filled before Server::Start() and only read afterwards.
// Handlers run concurrently on several pool threads; each Request is used by one handler.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/store.h"
#include "util/fd.h"
#include "util/result.h"

namespace silo::server {

// The request body, streamed from the connection with bounded memory. Read() blocks the
// calling (pool) thread until bytes arrive; it is valid only during the handler call.
class BodySource {
 public:
  virtual ~BodySource() = default;
  // Reads up to buf.size() bytes; 0 at the end of the body. Network error when the client
  // disconnects or stalls past the read timeout mid-body.
  virtual Result<size_t> Read(std::span<uint8_t> buf) = 0;
  // The Content-Length, when the client sent one (absent for chunked bodies).
  virtual std::optional<uint64_t> length() const = 0;
  // Bytes delivered by Read() so far.
  virtual uint64_t consumed() const = 0;
};

struct Request {
  std::string method;  // "GET", "HEAD", "PUT", ... as sent
  std::string target;  // the raw request target: "/v2/app/tags/list?n=10"
  std::string path;    // target before '?', not percent-decoded (see PercentDecode)
  std::string query;   // target after '?', empty when none
  // Headers in arrival order; names as sent (compare with Header(), case-insensitive).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string client_address;  // "127.0.0.1", "::1" (IPv4-mapped IPv6 shown as IPv4)
  uint16_t client_port = 0;
  bool tls = false;
  // The body; never null while a handler runs (a request without a body reads 0 at once).
  BodySource* body = nullptr;

  // The first header named `name` (case-insensitive), or nullopt.
  std::optional<std::string_view> Header(std::string_view name) const;
  // The first query parameter named `name`, percent-decoded, or nullopt.
  std::optional<std::string> QueryParam(std::string_view name) const;
};

// Percent-decodes `s` ("%2e" -> "."). InvalidArgument on a malformed escape or on "%00".
Result<std::string> PercentDecode(std::string_view s);

// A response. Build it with the helpers below; a handler may add headers freely
// (Content-Length, Content-Range and Accept-Ranges are set by the server).
struct Response {
  enum class Kind { kEmpty, kString, kFile, kObject };

  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  Kind kind = Kind::kEmpty;
  std::string body;  // kString
  // kFile: `length` bytes of `file` starting at `file_offset` form the entity (a Range
  // request selects within them). The response owns the descriptor.
  Fd file;
  uint64_t file_offset = 0;
  // kFile and kObject: the entity's length.
  uint64_t length = 0;
  // kObject: the open reader (the response owns it; the store must outlive the response).
  std::unique_ptr<store::ObjectReader> object;
  // Whether a Range request header is honoured (Accept-Ranges: bytes is sent then).
  bool ranges = false;

  Response() = default;
  Response(Response&&) = default;
  Response& operator=(Response&&) = default;

  // A body from memory with its Content-Type.
  static Response Text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
  // No body (Content-Length: 0).
  static Response Empty(int status);
  // `length` bytes of `fd` from `offset`; ranges honoured.
  static Response File(Fd fd, uint64_t offset, uint64_t length, std::string content_type = "application/octet-stream");
  // The whole object behind `reader`; ranges honoured.
  static Response Object(std::unique_ptr<store::ObjectReader> reader,
                         std::string content_type = "application/octet-stream");

  // Adds a header (several of one name allowed); returns *this for chaining.
  Response& With(std::string name, std::string value);
  // The first header named `name` (case-insensitive), or nullopt.
  std::optional<std::string_view> Header(std::string_view name) const;
  // The entity length for the body kinds (string size, file or object length).
  uint64_t EntityLength() const;
};

// Runs on the blocking pool. Must not throw (an escaping exception becomes a 500).
using Handler = std::function<Response(Request&)>;
// Runs on the blocking pool before routing; a returned response is sent instead.
using AccessCheck = std::function<std::optional<Response>(const Request&)>;

class Router {
 public:
  // Registers `handler` for paths equal to `prefix`, or, when `prefix` ends in '/', for
  // every path starting with it. The longest matching prefix wins; registering a prefix
  // twice replaces the earlier handler. The handler sees every method and answers 405
  // itself for those it does not serve.
  void Add(std::string prefix, Handler handler);
  void SetAccessCheck(AccessCheck check) { access_check_ = std::move(check); }

  // The handler for `path`, or null when none matches.
  const Handler* Find(std::string_view path) const;
  const AccessCheck& access_check() const { return access_check_; }

 private:
  std::vector<std::pair<std::string, Handler>> routes_;  // longest prefix first
  AccessCheck access_check_;
};

// A parsed single Range header against an entity of `length` bytes.
struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive
  uint64_t size() const { return last - first + 1; }
};
enum class RangeResult { kNone, kRange, kUnsatisfiable };
// Parses `header` ("bytes=a-b", "bytes=a-", "bytes=-n"). kNone for a header that is absent,
// malformed or names several ranges (the whole entity is served then); kUnsatisfiable when
// it lies past the end.
RangeResult ParseRange(std::string_view header, uint64_t length, ByteRange* out);

}  // namespace silo::server
