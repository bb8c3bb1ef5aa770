// The pull-through cache of `silo serve --upstream`: what the registry API does when a
// repository whose registry is an upstream (upstream.h) asks for something the store lacks.
//
// Manifests by tag: a miss fetches the manifest from the upstream, stores it byte-exact
// with links to what it names, sets the tag's ref and marks the ref as the cache's
// (proxy_lru.h). A cached tag younger than `tag_ttl` is served with no upstream call; an
// older one is rechecked with a HEAD (digest compare) and refreshed when it moved. When the
// upstream fails (429, 5xx, timeout, refused), the cached manifest is served and a warning
// logged; an uncached one fails. A tag the user pushed or pulled explicitly (no cache mark)
// is served as stored, never rechecked.
// Manifests by digest: a hit never touches the upstream; a miss is fetched, checked against
// the digest and stored under a digest ref.
// Blobs: a miss starts one download per digest (blob_fill.h) that streams to every client
// asking for that blob meanwhile (the second client is fed from the same download, not
// from a second one) while it is stored; the object is committed only after its digest and
// size verify. Blobs up to `verify_first` bytes are answered only after the commit, so a bad
// small blob gets a clean error instead of a cut-short body.
// Size cap: accesses are recorded (ProxyLru::Touch) and a background thread flushes them
// every `interval` and, with a cap, evicts least recently used cached images and collects
// garbage (proxy_lru.h).
//
// Thread-safe: every method may be called from the server's handler threads at once.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "store/store.h"
#include "transfer/server/blob_fill.h"
#include "transfer/server/proxy_lru.h"
#include "transfer/server/repo_map.h"
#include "transfer/server/upstream.h"
#include "util/single_flight.h"

namespace silo::server {

struct ProxyOptions {
  std::chrono::seconds tag_ttl{300};
  uint64_t max_size = 0;  // 0: no cap
  // How often accesses are flushed and the cap checked.
  std::chrono::seconds interval{10};
  // Grace given to the collection after an eviction (objects younger than this stay).
  std::chrono::seconds gc_grace{900};
  uint64_t verify_first = 4 << 20;
  // Where warnings go (upstream failures answered from the cache, evictions); may be null.
  std::function<void(const std::string&)> log;
};

class ProxyCache {
 public:
  // `store` and `upstreams` must outlive the cache. Starts the background thread.
  ProxyCache(store::Store& store, const Upstreams& upstreams, ProxyOptions options);
  // Stops the background thread (a last flush) and aborts downloads still running, waiting
  // for their threads.
  ~ProxyCache();
  ProxyCache(const ProxyCache&) = delete;
  ProxyCache& operator=(const ProxyCache&) = delete;

  // Whether `loc`'s registry is an upstream.
  bool Serves(const RepoLocation& loc) const { return upstreams_.Find(loc.registry) != nullptr; }

  // The digest `tag` stands for in `loc`, fetched or refreshed from the upstream as the
  // header comment says; the manifest is in the store when this returns. NotFound when
  // neither the store nor the upstream knows it; Network (upstream unreachable or failing)
  // when it is not cached.
  Result<store::Digest> ResolveTag(const RepoLocation& loc, const std::string& tag);
  // Makes sure manifest `digest` is in the store, fetching it on a miss.
  Status EnsureManifest(const RepoLocation& loc, const store::Digest& digest);
  // A reader for blob `digest`: from the store when present, else from the (possibly
  // shared) download. NotFound when the upstream lacks it; Integrity when a small blob
  // failed its check; Network when the upstream fails.
  Result<std::unique_ptr<store::ObjectReader>> OpenBlob(const RepoLocation& loc, const store::Digest& digest);

  // Aborts downloads still running (their clients get an error) and stops the background
  // thread's work; called when the server stops. Idempotent.
  void Stop();

  // Records an access (a hit served from the store).
  void Touch(const store::Digest& digest) { lru_.Touch(digest); }
  // Runs one flush and, with a cap, one eviction pass now (the background thread does it
  // every `interval`).
  Result<EvictReport> Maintain();

  // Prometheus lines.
  std::string MetricsText() const;

 private:
  Status FetchManifest(const RepoLocation& loc, const std::string& reference, const std::string& ref_name,
                       Upstreams::Clients& up, store::Digest* out);
  void Log(const std::string& line) const;
  void Background();

  store::Store& store_;
  const Upstreams& upstreams_;
  ProxyOptions options_;
  ProxyLru lru_;
  SingleFlight manifest_flight_;

  std::mutex fills_mu_;
  std::condition_variable fills_cv_;
  std::map<std::string, std::shared_ptr<BlobFill>> fills_;  // by digest, while running
  int fill_threads_ = 0;
  std::atomic<bool> stopping_{false};

  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  std::mutex maintain_mu_;
  std::thread bg_;

  std::atomic<uint64_t> manifest_hits_{0}, manifest_misses_{0}, tag_checks_{0}, tag_refreshes_{0}, stale_served_{0};
  std::atomic<uint64_t> blob_hits_{0}, blob_misses_{0}, blob_shared_{0}, blob_failed_{0}, bytes_filled_{0};
  std::atomic<uint64_t> images_evicted_{0}, bytes_evicted_{0}, gc_runs_{0};
};

}  // namespace silo::server
