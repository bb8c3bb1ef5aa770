#include "transfer/server/blob_fill.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace silo::server {
namespace {

// An unnamed file in `dir` (O_TMPFILE), or a named one unlinked at once where the
// filesystem lacks O_TMPFILE.
Result<Fd> OpenSpool(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return Fd(fd);
  std::string tmpl = dir + "/.proxy-spool-XXXXXX";
  fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("proxy spool in " + dir, errno);
  ::unlink(tmpl.c_str());
  return Fd(fd);
}

Status PwriteAll(int fd, ByteSpan data, uint64_t at) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(at));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("proxy spool write", errno);
    }
    data = data.subspan(static_cast<size_t>(n));
    at += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

}  // namespace

class BlobFill::Reader final : public store::ObjectReader {
 public:
  Reader(std::shared_ptr<BlobFill> fill, uint64_t size) : fill_(std::move(fill)) {
    info_.digest = fill_->digest_;
    info_.size = size;
  }
  const store::ObjectInfo& info() const override { return info_; }
  Status Seek(uint64_t offset) override {
    if (offset > info_.size) return Status::InvalidArgument("offset past the end of " + info_.digest.ToString());
    pos_ = offset;
    return Status::Ok();
  }
  Result<size_t> Read(std::span<uint8_t> buf) override {
    if (pos_ >= info_.size || buf.empty()) return size_t{0};
    uint64_t limit = 0;
    {
      BlobFill& f = *fill_;
      std::unique_lock lock(f.mu_);
      // The last byte waits for the commit (see blob_fill.h).
      auto available = [&] {
        if (f.finished_) return f.status_.ok() ? info_.size : 0;
        return std::min(f.filled_, info_.size - 1);
      };
      f.cv_.wait(lock, [&] { return (f.finished_ && !f.status_.ok()) || available() > pos_; });
      if (f.finished_ && !f.status_.ok()) return f.status_;
      limit = available();
    }
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), limit - pos_));
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fill_->spool_.get(), buf.data() + done, n - done, static_cast<off_t>(pos_ + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno("proxy spool read", errno);
      }
      if (r == 0) return Status::IO("proxy spool of " + info_.digest.ToString() + " ended early");
      done += static_cast<size_t>(r);
    }
    pos_ += done;
    return done;
  }

 private:
  std::shared_ptr<BlobFill> fill_;
  store::ObjectInfo info_;
  uint64_t pos_ = 0;
};

BlobFill::BlobFill(store::Store& store, store::Digest digest, std::string spool_dir)
    : store_(store), digest_(std::move(digest)), spool_dir_(std::move(spool_dir)) {}

void BlobFill::Finish(Status status) {
  {
    std::lock_guard lock(mu_);
    finished_ = true;
    status_ = std::move(status);
  }
  cv_.notify_all();
}

Status BlobFill::Run(transfer::RegistryClient& client, const std::string& repo, const std::atomic<bool>& stop) {
  std::string digest = digest_.ToString();
  auto run = [&]() -> Status {
    SILO_ASSIGN_OR_RETURN(spool_, OpenSpool(spool_dir_));
    SILO_ASSIGN_OR_RETURN(auto size, client.BlobSize(repo, digest, /*for_push=*/false));
    if (!size) return Status::NotFound(client.registry() + "/" + repo + "@" + digest + ": blob unknown upstream");
    {
      std::lock_guard lock(mu_);
      size_ = *size;
    }
    cv_.notify_all();
    store::PutOptions po;
    po.expected_digest = digest_;
    po.expected_size = *size;
    SILO_ASSIGN_OR_RETURN(auto writer, store_.NewWriter(po));
    uint64_t at = 0;
    auto sink = [&](ByteSpan data) -> Status {
      if (stop) return Status::Interrupted("the server is stopping");
      if (at + data.size() > *size) {
        return Status::Integrity(client.registry() + "/" + repo + "@" + digest + ": more bytes than the " +
                                 std::to_string(*size) + " announced");
      }
      SILO_TRY(writer->Write(data));
      SILO_TRY(PwriteAll(spool_.get(), data, at));
      at += data.size();
      {
        std::lock_guard lock(mu_);
        filled_ = at;
      }
      cv_.notify_all();
      return Status::Ok();
    };
    SILO_TRY(client.FetchBlob(repo, digest, *size, 0, sink));
    auto info = writer->Commit();
    if (!info.ok()) return std::move(info).take_status().WithContext(client.registry() + "/" + repo);
    return Status::Ok();
  };
  Status s = run();
  Finish(s);
  return s;
}

Result<uint64_t> BlobFill::WaitSize() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return size_.has_value() || finished_; });
  if (size_) return *size_;
  return status_;
}

Status BlobFill::WaitDone() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return finished_; });
  return status_;
}

bool BlobFill::done() const {
  std::lock_guard lock(mu_);
  return finished_;
}

std::unique_ptr<store::ObjectReader> BlobFill::NewReader() {
  uint64_t size = 0;
  {
    std::lock_guard lock(mu_);
    size = size_.value_or(0);
  }
  return std::make_unique<Reader>(shared_from_this(), size);
}

}  // namespace silo::server
