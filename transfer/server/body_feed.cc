#include "transfer/server/body_feed.h"

#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <string>
#include <utility>

namespace silo::server {

namespace asio = boost::asio;

namespace {
// The most one piece holds; a store object's piece also ends where its chunk ends.
constexpr size_t kPiece = 1024 * 1024;
}  // namespace

BodyFeed::BodyFeed(Response res, uint64_t first, uint64_t count, uint64_t ahead, asio::thread_pool& pool,
                   asio::any_io_executor ex)
    : res_(std::move(res)),
      first_(first),
      count_(count),
      ahead_(std::max<uint64_t>(ahead, kPiece)),
      pool_(pool),
      ex_(ex),
      wake_(ex) {}

std::shared_ptr<BodyFeed> BodyFeed::Start(Response res, uint64_t first, uint64_t count, uint64_t ahead,
                                          asio::thread_pool& pool, asio::any_io_executor ex) {
  auto feed = std::make_shared<BodyFeed>(std::move(res), first, count, ahead, pool, ex);
  feed->running_ = true;
  asio::post(pool, [feed] { feed->Pump(); });
  return feed;
}

Result<store::ObjectPiece> BodyFeed::ReadOne(uint64_t at, size_t max) {
  if (res_.kind == Response::Kind::kObject) {
    if (!res_.object) return Status::InvalidArgument("object response without a reader");
    if (at == 0 && first_ != 0) SILO_TRY(res_.object->Seek(first_));
    SILO_ASSIGN_OR_RETURN(store::ObjectPiece piece, res_.object->ReadPiece(max));
    if (piece.bytes.empty()) return Status::Integrity(res_.object->info().digest.ToString() + " ended early");
    return piece;
  }
  auto buf = std::make_shared<std::string>(max, '\0');
  size_t done = 0;
  while (done < max) {
    ssize_t r = ::pread(res_.file.get(), buf->data() + done, max - done,
                        static_cast<off_t>(res_.file_offset + first_ + at + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("read", errno);
    }
    if (r == 0) return Status::IO("file shrank while being sent");
    done += static_cast<size_t>(r);
  }
  return store::ObjectPiece{*buf, std::move(buf)};
}

void BodyFeed::Pump() {
  for (;;) {
    uint64_t at;
    {
      std::lock_guard lock(mu_);
      if (stopped_ || !error_.ok() || read_ == count_ || unsent_ >= ahead_) {
        running_ = false;
        return;
      }
      at = read_;
    }
    // Only this task reads, so the response needs no lock.
    auto piece = ReadOne(at, static_cast<size_t>(std::min<uint64_t>(kPiece, count_ - at)));
    bool wake;
    {
      std::lock_guard lock(mu_);
      if (piece.ok()) {
        size_t n = piece->bytes.size();
        read_ += n;
        unsent_ += n;
        ready_.push_back(std::move(piece).value());
      } else {
        error_ = std::move(piece).take_status();
      }
      wake = std::exchange(waiting_, false);
    }
    if (wake) asio::post(ex_, [self = shared_from_this()] { self->wake_.cancel(); });
  }
}

asio::awaitable<Status> BodyFeed::Take(std::vector<store::ObjectPiece>* out) {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (!ready_.empty()) {
        for (auto& p : ready_) out->push_back(std::move(p));
        ready_.clear();
        co_return Status::Ok();
      }
      if (!error_.ok()) co_return error_;
      if (read_ == count_ || stopped_) co_return Status::Ok();
      // Pump posts the wake to this executor, so it runs after the wait below begins.
      waiting_ = true;
      wake_.expires_at(asio::steady_timer::time_point::max());
    }
    boost::system::error_code ec;
    co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

void BodyFeed::Sent(uint64_t bytes) {
  std::lock_guard lock(mu_);
  unsent_ -= std::min(unsent_, bytes);
  if (!running_ && !stopped_ && error_.ok() && read_ < count_ && unsent_ <= ahead_ / 2) {
    running_ = true;
    asio::post(pool_, [self = shared_from_this()] { self->Pump(); });
  }
}

void BodyFeed::Stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
}

}  // namespace silo::server
