// One upstream blob download that fills the store and feeds any number of clients at once
// (the pull-through cache's blob miss path, see proxy_cache.h).
//
// The download runs on its own thread, never on a client's: bytes go into a store writer
// (which verifies the digest and size before anything is visible) and into an unnamed
// spool file beside the store (O_TMPFILE, gone when the last user closes it), from which
// every reader is fed at its own pace. A client that disconnects only drops its reader;
// the download and the store write go on. Readers get every byte but the last as soon as
// it has arrived; the last one only once the object is committed, so a blob whose digest
// or size is wrong reaches no client whole (its response is cut short) and nothing is
// stored. Memory stays bounded: 1 MiB pieces, whatever the blob size.
//
// Thread-safe: Run() on one thread, readers and waits on any.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "store/store.h"
#include "transfer/registry_client.h"
#include "util/fd.h"
#include "util/result.h"

namespace silo::server {

class BlobFill : public std::enable_shared_from_this<BlobFill> {
 public:
  // `store` must outlive the fill. The spool is created in `spool_dir` by Run().
  BlobFill(store::Store& store, store::Digest digest, std::string spool_dir);

  // HEADs the blob upstream for its size, then streams it into the store and the spool.
  // `stop` (read between pieces) aborts the download when set. Returns the final status
  // (also what Wait* report): NotFound when the upstream lacks the blob, Integrity when the
  // bytes do not match, Network when the upstream fails.
  Status Run(transfer::RegistryClient& client, const std::string& repo, const std::atomic<bool>& stop);

  // Blocks until the size is known (or the fill failed before): the size, or the error.
  Result<uint64_t> WaitSize();
  // Blocks until the fill ended: Ok when committed, else its error.
  Status WaitDone();
  bool done() const;

  // A reader over the bytes as they arrive (see the header comment). It keeps the fill
  // (and its spool) alive; its info() has the digest and size. Call after WaitSize().
  std::unique_ptr<store::ObjectReader> NewReader();

  const store::Digest& digest() const { return digest_; }

 private:
  class Reader;
  void Finish(Status status);

  store::Store& store_;
  store::Digest digest_;
  std::string spool_dir_;
  Fd spool_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<uint64_t> size_;
  uint64_t filled_ = 0;  // bytes in the spool
  bool finished_ = false;
  Status status_;  // when finished_
};

}  // namespace silo::server
