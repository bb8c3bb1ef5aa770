// Reads a response body ahead of the connection that sends it. One task on the blocking
// pool reads pieces of a store object (handed out in place, see ObjectReader::ReadPiece)
// or of a file until `ahead` bytes wait to be sent, then rests until the connection has
// sent half of them. The connection takes every piece that is ready and writes them in one
// gather write. A body so costs a hand-over between threads per few MiB, not two per piece.
#pragma once

// clang-format off
#include <utility>  // before Asio: GCC 12 with Boost 1.74's coroutine support needs it
// clang-format on
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "store/store.h"
#include "transfer/server/router.h"
#include "util/result.h"

namespace silo::server {

class BodyFeed : public std::enable_shared_from_this<BodyFeed> {
 public:
  // Starts reading bytes [first, first + count) of `res`, a kFile or kObject response. `ex`
  // is the connection's executor (its strand): Take waits there and is woken there.
  static std::shared_ptr<BodyFeed> Start(Response res, uint64_t first, uint64_t count, uint64_t ahead,
                                         boost::asio::thread_pool& pool, boost::asio::any_io_executor ex);

  // Waits until a piece is ready, the body is complete or reading failed; then moves every
  // ready piece into `out`. OK with nothing added: the body is complete. An error (the
  // object is damaged, the file shrank) comes after the pieces read before it.
  boost::asio::awaitable<Status> Take(std::vector<store::ObjectPiece>* out);
  // The connection has sent `bytes` of what it took; reading resumes if it was resting.
  void Sent(uint64_t bytes);
  // The connection gives up; the reading task ends before its next piece.
  void Stop();

  BodyFeed(Response res, uint64_t first, uint64_t count, uint64_t ahead, boost::asio::thread_pool& pool,
           boost::asio::any_io_executor ex);

 private:
  void Pump();  // the reading task, on the pool
  Result<store::ObjectPiece> ReadOne(uint64_t at, size_t max);

  Response res_;                  // owns the file or the reader; touched by Pump only
  const uint64_t first_, count_;  // the byte range of the entity to send
  const uint64_t ahead_;          // bytes read but not yet sent, at most (plus one piece)
  boost::asio::thread_pool& pool_;
  boost::asio::any_io_executor ex_;
  boost::asio::steady_timer wake_;  // Take waits on it; cancelled to wake it

  std::mutex mu_;  // guards what follows
  std::vector<store::ObjectPiece> ready_;
  uint64_t read_ = 0;     // bytes read so far
  uint64_t unsent_ = 0;   // bytes read and not yet reported sent
  bool running_ = false;  // a Pump task is posted or running
  bool waiting_ = false;  // Take waits for a wake
  bool stopped_ = false;
  Status error_;
};

}  // namespace silo::server
