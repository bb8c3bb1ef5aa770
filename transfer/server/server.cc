// The connection loop of `silo serve` (see server.h). Everything Asio/Beast lives here.
#include "transfer/server/server.h"

#include <sys/sendfile.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>  // before Asio: GCC 12 with Boost 1.74's coroutine support needs it

#include "transfer/server/access_log.h"
#include "transfer/server/body_feed.h"
#include "transfer/server/metrics.h"
#include "util/interrupt.h"

namespace silo::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// What RunBlocking hands back; default-constructible for the completion signature.
template <typename T>
struct Boxed {
  std::optional<T> value;
};

// Runs `fn` on the blocking pool and resumes the calling coroutine on its own executor
// with the result. Keeps the I/O context alive meanwhile.
template <typename T, typename Fn>
asio::awaitable<T> RunBlocking(asio::thread_pool& pool, Fn fn) {
  auto boxed = co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(Boxed<T>)>(
      [&pool, fn = std::move(fn)](auto handler) mutable {
        auto work = asio::make_work_guard(asio::get_associated_executor(handler));
        asio::post(pool, [fn = std::move(fn), handler = std::move(handler), work = std::move(work)]() mutable {
          Boxed<T> result;
          result.value.emplace(fn());
          auto ex = work.get_executor();
          asio::post(ex, [handler = std::move(handler), result = std::move(result)]() mutable {
            std::move(handler)(std::move(result));
          });
        });
      },
      asio::use_awaitable);
  co_return std::move(*boxed.value);
}

std::string EndpointText(const tcp::endpoint& ep) {
  auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
  }
  if (addr.is_v6()) return "[" + addr.to_string() + "]:" + std::to_string(ep.port());
  return addr.to_string() + ":" + std::to_string(ep.port());
}

std::string ClientAddress(const tcp::endpoint& ep) {
  auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
  }
  return addr.to_string();
}

std::string ReasonlessErrorBody(int status) {
  return std::to_string(status) + " " + std::string(http::obsolete_reason(static_cast<http::status>(status))) + "\n";
}

}  // namespace

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  ListenAddress out;
  std::string_view port;
  if (text.starts_with("[")) {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::InvalidArgument("listen address \"" + std::string(text) + "\": expected [IPV6]:PORT");
    }
    out.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return Status::InvalidArgument("listen address \"" + std::string(text) +
                                     "\": expected ADDR:PORT (IPv6 as [ADDR]:PORT)");
    }
    out.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    if (out.host.empty()) out.host = "0.0.0.0";
  }
  unsigned value = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || p != port.data() + port.size() || value > 65535) {
    return Status::InvalidArgument("listen address \"" + std::string(text) + "\": bad port \"" + std::string(port) +
                                   "\"");
  }
  out.port = static_cast<uint16_t>(value);
  boost::system::error_code bec;
  asio::ip::make_address(out.host, bec);
  if (bec) {
    return Status::InvalidArgument("listen address \"" + std::string(text) + "\": \"" + out.host +
                                   "\" is not an IP address");
  }
  return out;
}

// How far ahead of the network a body is read (see BodyFeed): far for the first few
// bodies streaming at once, less for the rest, so many clients do not hold much memory.
constexpr uint64_t kAheadFew = 8 << 20;
constexpr uint64_t kAheadMany = 2 << 20;
constexpr int kAheadStreams = 4;

// Sends `count` bytes of `fd` from `offset` with sendfile(2): the kernel hands page cache
// pages to the socket without a copy through user space (a page not cached is read on
// this I/O thread, as nginx does). Waits for the socket to drain, at most `timeout` each
// time. Adds what it sent to *sent; false when the client is gone or too slow, or the file
// shrank.
// sendfile cannot take MSG_NOSIGNAL: a client gone mid-body raises SIGPIPE, which the
// process ignores (InstallInterruptHandlers, util/interrupt.h), so the call fails with EPIPE.
asio::awaitable<bool> SendFileRange(beast::tcp_stream& stream, int fd, uint64_t offset, uint64_t count,
                                    std::chrono::seconds timeout, uint64_t* sent) {
  auto& sock = stream.socket();
  boost::system::error_code ec;
  sock.native_non_blocking(true, ec);
  if (ec) co_return false;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  // The timer's handler may run after this frame is gone; it acts only while `live`.
  auto live = std::make_shared<bool>(true);
  auto timed_out = std::make_shared<bool>(false);
  auto off = static_cast<off_t>(offset);
  uint64_t left = count;
  bool ok = true;
  while (left > 0) {
    ssize_t n = ::sendfile(sock.native_handle(), fd, &off, static_cast<size_t>(std::min<uint64_t>(left, 64 << 20)));
    if (n > 0) {
      left -= static_cast<uint64_t>(n);
      *sent += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      ok = false;  // the file shrank, or the connection broke
      break;
    }
    timer.expires_after(timeout);
    timer.async_wait([&sock, live, timed_out](boost::system::error_code e) {
      if (!e && *live) {
        *timed_out = true;
        sock.cancel();
      }
    });
    co_await sock.async_wait(tcp::socket::wait_write, asio::redirect_error(asio::use_awaitable, ec));
    timer.cancel();
    if (ec || *timed_out) {
      ok = false;
      break;
    }
  }
  *live = false;
  co_return ok;
}

struct Server::Impl {
  Router router;
  ServerOptions options;
  asio::io_context ioc;
  asio::thread_pool pool;
  std::optional<asio::ssl::context> ssl;
  std::vector<tcp::acceptor> acceptors;
  std::vector<std::string> endpoints;
  Metrics metrics;
  AccessLog access_log;
  std::function<std::string()> metrics_hook;
  std::atomic<bool> stopping{false};
  std::atomic<int> object_streams{0};  // bodies read ahead by a BodyFeed now
  std::atomic<bool> io_stopped{false};
  std::optional<asio::signal_set> signals;
  std::optional<asio::steady_timer> grace_timer;
  // Shutdown bookkeeping, accept loops and the signal handler run here.
  asio::strand<asio::io_context::executor_type> control{ioc.get_executor()};

  // Open connections: whether each waits for a request (idle) and how to cut it.
  struct Conn {
    bool idle = true;
    std::function<void(bool force)> cancel;  // runs on the connection's strand
  };
  std::mutex conns_mu;
  std::map<uint64_t, Conn> conns;
  uint64_t next_conn = 0;

  Impl(Router r, ServerOptions o)
      : router(std::move(r)),
        options(std::move(o)),
        ioc(static_cast<int>(std::max<size_t>(1, options.io_threads))),
        pool(std::max<size_t>(1, options.blocking_threads)) {}

  uint64_t AddConn(std::function<void(bool)> cancel) {
    std::lock_guard lock(conns_mu);
    uint64_t id = next_conn++;
    conns[id] = Conn{true, std::move(cancel)};
    return id;
  }
  void SetIdle(uint64_t id, bool idle) {
    std::lock_guard lock(conns_mu);
    conns[id].idle = idle;
  }
  bool IsIdle(uint64_t id) {
    std::lock_guard lock(conns_mu);
    auto it = conns.find(id);
    return it != conns.end() && it->second.idle;
  }
  void RemoveConn(uint64_t id) {
    bool last = false;
    {
      std::lock_guard lock(conns_mu);
      conns.erase(id);
      last = conns.empty();
    }
    if (last && stopping) {
      asio::post(control, [this] {
        if (grace_timer) grace_timer->cancel();
      });
    }
  }

  void BeginShutdown() {
    if (stopping.exchange(true)) return;
    for (auto& a : acceptors) {
      boost::system::error_code ec;
      a.close(ec);
    }
    if (signals) {
      boost::system::error_code ec;
      signals->cancel(ec);
    }
    // Idle keep-alive connections are closed now; busy ones close after their response.
    std::vector<std::function<void(bool)>> cuts;
    bool none = false;
    {
      std::lock_guard lock(conns_mu);
      for (auto& [id, c] : conns) cuts.push_back(c.cancel);
      none = conns.empty();
    }
    for (auto& cut : cuts) cut(false);
    if (none) return;
    grace_timer.emplace(ioc);
    grace_timer->expires_after(options.shutdown_grace);
    grace_timer->async_wait([this](boost::system::error_code ec) {
      if (ec) return;  // cancelled: every connection ended in time
      // Past the grace period: cut everything and tell blocking work to give up.
      RequestInterrupt(SIGTERM);
      std::vector<std::function<void(bool)>> all;
      {
        std::lock_guard lock(conns_mu);
        for (auto& [id, c] : conns) all.push_back(c.cancel);
      }
      for (auto& cut : all) cut(true);
    });
  }

  asio::awaitable<void> Accept(tcp::acceptor& acceptor);
  template <typename Stream>
  asio::awaitable<void> Session(Stream stream, tcp::endpoint peer, bool tls);
  template <typename Stream>
  asio::awaitable<bool> Serve(Stream& stream, beast::flat_buffer& buffer,
                              http::request_parser<http::buffer_body>& parser, const tcp::endpoint& peer, bool tls,
                              uint64_t conn_id);
  template <typename Stream>
  asio::awaitable<void> SendSimple(Stream& stream, int status, const std::string& text, bool close);
};

// The request body, read on a pool thread by posting reads to the connection's strand.
template <typename Stream>
class ConnBody final : public BodySource {
 public:
  ConnBody(std::chrono::seconds io_timeout, const std::atomic<bool>& io_stopped, Stream& stream,
           beast::flat_buffer& buffer, http::request_parser<http::buffer_body>& parser)
      : io_timeout_(io_timeout), io_stopped_(io_stopped), stream_(stream), buffer_(buffer), parser_(parser) {
    if (auto len = parser_.content_length()) length_ = *len;
  }

  Result<size_t> Read(std::span<uint8_t> buf) override {
    if (buf.empty()) return size_t{0};
    while (true) {
      if (failed_) return Status::Network("request body: " + error_);
      if (parser_.is_done()) return size_t{0};
      std::promise<std::pair<boost::system::error_code, size_t>> done;
      auto fut = done.get_future();
      asio::post(stream_.get_executor(), [this, buf, &done] {
        parser_.get().body().data = buf.data();
        parser_.get().body().size = buf.size();
        beast::get_lowest_layer(stream_).expires_after(io_timeout_);
        http::async_read_some(stream_, buffer_, parser_, [this, buf, &done](boost::system::error_code ec, size_t) {
          size_t got = buf.size() - parser_.get().body().size;
          if (ec == http::error::need_buffer) ec = {};
          done.set_value({ec, got});
        });
      });
      while (fut.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready) {
        if (io_stopped_) {
          // The I/O threads are gone; nobody will complete the read. The promise must
          // outlive any late completion, so wait for it only while I/O runs.
          failed_ = true;
          error_ = "server stopped";
          return Status::Network("request body: server stopped");
        }
      }
      auto [ec, got] = fut.get();
      consumed_ += got;
      if (ec) {
        failed_ = true;
        error_ = ec.message();
        if (got > 0) return got;
        return Status::Network("request body: " + error_);
      }
      if (got > 0) return got;
    }
  }
  std::optional<uint64_t> length() const override { return length_; }
  uint64_t consumed() const override { return consumed_; }

 private:
  std::chrono::seconds io_timeout_;
  const std::atomic<bool>& io_stopped_;
  Stream& stream_;
  beast::flat_buffer& buffer_;
  http::request_parser<http::buffer_body>& parser_;
  std::optional<uint64_t> length_;
  uint64_t consumed_ = 0;
  bool failed_ = false;
  std::string error_;
};

asio::awaitable<void> Server::Impl::Accept(tcp::acceptor& acceptor) {
  while (!stopping) {
    boost::system::error_code ec;
    tcp::socket socket =
        co_await acceptor.async_accept(asio::make_strand(ioc), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (stopping || ec == asio::error::operation_aborted) break;
      // Out of descriptors and the like: back off a little instead of spinning.
      asio::steady_timer t(ioc);
      t.expires_after(std::chrono::milliseconds(50));
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    boost::system::error_code pec;
    tcp::endpoint peer = socket.remote_endpoint(pec);
    socket.set_option(tcp::no_delay(true), pec);
    auto ex = socket.get_executor();
    if (ssl) {
      asio::co_spawn(
          ex, Session(beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *ssl), peer, true),
          asio::detached);
    } else {
      asio::co_spawn(ex, Session(beast::tcp_stream(std::move(socket)), peer, false), asio::detached);
    }
  }
}

template <typename Stream>
asio::awaitable<void> Server::Impl::SendSimple(Stream& stream, int status, const std::string& text, bool close) {
  http::response<http::string_body> res{static_cast<http::status>(status), 11};
  res.set(http::field::server, "silo");
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = text;
  res.keep_alive(!close);
  res.prepare_payload();
  boost::system::error_code ec;
  beast::get_lowest_layer(stream).expires_after(options.io_timeout);
  co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
}

template <typename Stream>
asio::awaitable<void> Server::Impl::Session(Stream stream, tcp::endpoint peer, bool tls) {
  metrics.ConnectionOpened();
  auto ex = co_await asio::this_coro::executor;
  // The cut runs on this connection's strand; unless forced it only closes a connection
  // waiting for its next request.
  auto id_holder = std::make_shared<uint64_t>(0);
  uint64_t id = AddConn([this, ex, &stream, id_holder](bool force) {
    asio::post(ex, [this, &stream, id_holder, force] {
      if (force || IsIdle(*id_holder)) beast::get_lowest_layer(stream).cancel();
    });
  });
  *id_holder = id;
  try {
    bool ok = true;
    if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
      boost::system::error_code ec;
      beast::get_lowest_layer(stream).expires_after(options.io_timeout);
      co_await stream.async_handshake(asio::ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) ok = false;
    }
    beast::flat_buffer buffer;
    while (ok && !stopping) {
      http::request_parser<http::buffer_body> parser;
      parser.header_limit(options.header_limit);
      parser.body_limit(std::numeric_limits<uint64_t>::max());
      ok = co_await Serve(stream, buffer, parser, peer, tls, id);
    }
  } catch (const std::exception&) {
    // A connection-level failure (the peer vanished): nothing to answer.
  }
  beast::get_lowest_layer(stream).cancel();
  boost::system::error_code ec;
  beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ec);
  RemoveConn(id);
  metrics.ConnectionClosed();
}

// Serves one request; returns whether the connection stays open for another.
template <typename Stream>
asio::awaitable<bool> Server::Impl::Serve(Stream& stream, beast::flat_buffer& buffer,
                                          http::request_parser<http::buffer_body>& parser, const tcp::endpoint& peer,
                                          bool tls, uint64_t conn_id) {
  boost::system::error_code ec;
  SetIdle(conn_id, true);
  if (stopping) co_return false;
  beast::get_lowest_layer(stream).expires_after(options.idle_timeout);
  co_await http::async_read_header(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  SetIdle(conn_id, false);
  auto start = std::chrono::steady_clock::now();
  std::string client = EndpointText(peer);
  if (ec) {
    int status = 0;
    if (ec == http::error::header_limit) {
      status = 431;
    } else if (ec != http::error::end_of_stream && ec != asio::error::eof && ec != asio::error::operation_aborted &&
               ec != beast::error::timeout && ec != asio::error::connection_reset &&
               ec.category() == boost::system::error_code(http::error::bad_target).category()) {
      status = 400;  // a malformed request line or header
    }
    if (status != 0) {
      metrics.RequestStarted();
      std::string body = ReasonlessErrorBody(status);
      co_await SendSimple(stream, status, body, true);
      metrics.RequestDone(status, body.size(), 0);
      access_log.Write({client, "-", "-", status, body.size(), 0});
    }
    co_return false;
  }
  metrics.RequestStarted();
  auto& hdr = parser.get();
  Request req;
  req.method = std::string(hdr.method_string());
  req.target = std::string(hdr.target());
  size_t q = req.target.find('?');
  req.path = req.target.substr(0, q);
  if (q != std::string::npos) req.query = req.target.substr(q + 1);
  for (const auto& f : hdr) req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  req.client_address = ClientAddress(peer);
  req.client_port = peer.port();
  req.tls = tls;
  bool keep_alive = hdr.keep_alive();
  bool is_head = hdr.method() == http::verb::head;

  // "Expect: 100-continue" (curl sends it for large bodies): say go ahead.
  if (auto expect = req.Header("Expect");
      expect && beast::iequals(beast::string_view(expect->data(), expect->size()), "100-continue")) {
    http::response<http::empty_body> cont{http::status::continue_, 11};
    co_await http::async_write(stream, cont, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return false;
  }

  ConnBody<Stream> body(options.io_timeout, io_stopped, stream, buffer, parser);
  req.body = &body;
  Response res = co_await RunBlocking<Response>(pool, [this, &req]() -> Response {
    try {
      if (const auto& check = router.access_check()) {
        if (auto denied = check(req)) return std::move(*denied);
      }
      const Handler* h = router.Find(req.path);
      if (!h) return Response::Text(404, "404 not found\n");
      return (*h)(req);
    } catch (const std::exception& e) {
      return Response::Text(500, std::string("internal error: ") + e.what() + "\n");
    }
  });

  // A body the handler left unread: drain a little, else close after answering.
  if (!parser.is_done()) {
    std::vector<uint8_t> scratch(64 * 1024);
    uint64_t drained = 0;
    while (!parser.is_done() && drained < (1 << 20)) {
      auto got = co_await RunBlocking<Result<size_t>>(pool, [&] { return body.Read(scratch); });
      if (!got.ok() || *got == 0) break;
      drained += *got;
    }
    if (!parser.is_done()) keep_alive = false;
  }

  // Ranges, for every body kind.
  uint64_t entity = res.EntityLength();
  uint64_t first = 0, count = entity;
  http::response<http::empty_body> out{static_cast<http::status>(res.status), 11};
  out.set(http::field::server, "silo");
  for (const auto& [k, v] : res.headers) out.insert(k, v);
  if (res.ranges && res.status == 200) {
    out.set(http::field::accept_ranges, "bytes");
    if (auto range = req.Header("Range"); range && (hdr.method() == http::verb::get || is_head)) {
      ByteRange br;
      switch (ParseRange(*range, entity, &br)) {
        case RangeResult::kNone:
          break;
        case RangeResult::kRange:
          out.result(http::status::partial_content);
          out.set(http::field::content_range,
                  "bytes " + std::to_string(br.first) + "-" + std::to_string(br.last) + "/" + std::to_string(entity));
          first = br.first;
          count = br.size();
          break;
        case RangeResult::kUnsatisfiable:
          out.result(http::status::range_not_satisfiable);
          out.set(http::field::content_range, "bytes */" + std::to_string(entity));
          first = 0;
          count = 0;
          res.kind = Response::Kind::kEmpty;
          break;
      }
    }
  }
  if (stopping) keep_alive = false;
  out.keep_alive(keep_alive);
  out.content_length(count);
  int status = static_cast<int>(out.result_int());

  uint64_t sent = 0;
  bool ok = true;
  beast::get_lowest_layer(stream).expires_after(options.io_timeout);
  http::response_serializer<http::empty_body> sr{out};
  co_await http::async_write_header(stream, sr, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) ok = false;
  if (ok && !is_head && count > 0) {
    if (res.kind == Response::Kind::kString) {
      beast::get_lowest_layer(stream).expires_after(options.io_timeout);
      co_await asio::async_write(stream, asio::buffer(res.body.data() + first, count),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        ok = false;
      } else {
        sent = count;
      }
    } else {
      bool streamed = false;
      if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
        if (res.kind == Response::Kind::kFile) {
          ok =
              co_await SendFileRange(stream, res.file.get(), res.file_offset + first, count, options.io_timeout, &sent);
          streamed = true;
        }
      }
      if (!streamed) {
        // A store object (or a file over TLS): read ahead on the pool, sent as it comes.
        uint64_t ahead = ++object_streams <= kAheadStreams ? kAheadFew : kAheadMany;
        auto feed = BodyFeed::Start(std::move(res), first, count, ahead, pool, co_await asio::this_coro::executor);
        std::vector<store::ObjectPiece> pieces;
        std::vector<asio::const_buffer> buffers;
        while (ok) {
          pieces.clear();
          Status got = co_await feed->Take(&pieces);
          if (pieces.empty()) {
            ok = got.ok();  // complete, or cut short: the client sees a short body
            break;
          }
          buffers.clear();
          uint64_t n = 0;
          for (const auto& p : pieces) {
            buffers.emplace_back(p.bytes.data(), p.bytes.size());
            n += p.bytes.size();
          }
          beast::get_lowest_layer(stream).expires_after(options.io_timeout);
          co_await asio::async_write(stream, buffers, asio::redirect_error(asio::use_awaitable, ec));
          if (ec) {
            ok = false;
            break;
          }
          sent += n;
          feed->Sent(n);
        }
        feed->Stop();
        --object_streams;
      }
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics.RequestDone(status, sent, secs);
  access_log.Write({client, req.method, req.target, status, sent, secs});
  co_return ok&& keep_alive;
}

Server::Server(Router router, ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(router), std::move(options))) {
  Impl* impl = impl_.get();
  if (!impl->router.Find("/metrics")) {
    impl->router.Add("/metrics", [impl](Request& req) {
      if (req.method != "GET" && req.method != "HEAD") return Response::Text(405, "GET only\n");
      std::string text = impl->metrics.Render();
      if (impl->metrics_hook) text += impl->metrics_hook();
      return Response::Text(200, std::move(text), "text/plain; version=0.0.4; charset=utf-8");
    });
  }
  if (!impl->router.Find("/healthz")) {
    impl->router.Add("/healthz", [impl](Request&) {
      if (impl->stopping) return Response::Text(503, "stopping\n");
      return Response::Text(200, "ok\n");
    });
  }
}

Server::~Server() {
  if (impl_) {
    impl_->io_stopped = true;
    impl_->ioc.stop();
    impl_->pool.join();
  }
}

void Server::SetMetricsHook(std::function<std::string()> hook) {
  impl_->metrics_hook = std::move(hook);
}

Status Server::Start() {
  auto& o = impl_->options;
  if (o.listen.empty()) return Status::InvalidArgument("no --listen address given");
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return Status::InvalidArgument("--tls-cert and --tls-key go together");
  }
  SILO_TRY(impl_->access_log.Open(o.access_log));
  if (!o.tls_cert.empty()) {
    impl_->ssl.emplace(asio::ssl::context::tls_server);
    auto& ctx = *impl_->ssl;
    ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                    asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                    asio::ssl::context::single_dh_use);
    for (const auto& f : {o.tls_cert, o.tls_key}) {
      if (::access(f.c_str(), R_OK) != 0) return Status::FromErrno("TLS file " + f, errno);
    }
    boost::system::error_code ec;
    ctx.use_certificate_chain_file(o.tls_cert, ec);
    if (ec)
      return Status::InvalidArgument("TLS certificate " + o.tls_cert + ": not a PEM certificate chain (" +
                                     ec.message() + ")");
    ctx.use_private_key_file(o.tls_key, asio::ssl::context::pem, ec);
    if (ec) {
      return Status::InvalidArgument("TLS key " + o.tls_key + ": not a PEM private key for the certificate (" +
                                     ec.message() + ")");
    }
  }
  for (const auto& text : o.listen) {
    SILO_ASSIGN_OR_RETURN(ListenAddress la, ParseListenAddress(text));
    tcp::endpoint ep(asio::ip::make_address(la.host), la.port);
    tcp::acceptor acc(impl_->ioc);
    boost::system::error_code ec;
    acc.open(ep.protocol(), ec);
    if (!ec) acc.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec && ep.address().is_v6()) acc.set_option(asio::ip::v6_only(true), ec);
    if (!ec) acc.bind(ep, ec);
    if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Status::IO("listen " + text + ": " + ec.message());
    impl_->endpoints.push_back(EndpointText(acc.local_endpoint()));
    impl_->acceptors.push_back(std::move(acc));
  }
  return Status::Ok();
}

std::vector<std::string> Server::endpoints() const {
  return impl_->endpoints;
}

void Server::Run() {
  Impl& impl = *impl_;
  if (impl.options.handle_signals) {
    impl.signals.emplace(impl.ioc, SIGINT, SIGTERM);
    impl.signals->async_wait(asio::bind_executor(impl.control, [&impl](boost::system::error_code ec, int) {
      if (!ec) impl.BeginShutdown();
    }));
  }
  for (auto& a : impl.acceptors) asio::co_spawn(impl.control, impl.Accept(a), asio::detached);
  std::vector<std::thread> threads;
  for (size_t i = 1; i < std::max<size_t>(1, impl.options.io_threads); ++i) {
    threads.emplace_back([&impl] { impl.ioc.run(); });
  }
  impl.ioc.run();
  for (auto& t : threads) t.join();
  impl.io_stopped = true;
  impl.pool.join();
}

void Server::Shutdown() {
  Impl* impl = impl_.get();
  asio::post(impl->control, [impl] { impl->BeginShutdown(); });
}

}  // namespace silo::server
