#include "transfer/server/proxy_cache.h"

#include "index/manifest.h"
#include "transfer/server/metrics.h"
#include "transfer/server/registry_api.h"
#include "util/units.h"

namespace silo::server {
namespace {

// The repository name the upstream knows: Docker Hub's official images live under library/.
std::string UpstreamRepo(const RepoLocation& loc) {
  if (loc.registry == "docker.io" && loc.repository.find('/') == std::string::npos) {
    return "library/" + loc.repository;
  }
  return loc.repository;
}

}  // namespace

ProxyCache::ProxyCache(store::Store& store, const Upstreams& upstreams, ProxyOptions options)
    : store_(store), upstreams_(upstreams), options_(std::move(options)), lru_(store) {
  bg_ = std::thread([this] { Background(); });
}

void ProxyCache::Stop() {
  {
    std::lock_guard lock(bg_mu_);
    stopping_ = true;
  }
  bg_cv_.notify_all();
}

ProxyCache::~ProxyCache() {
  Stop();
  if (bg_.joinable()) bg_.join();
  lru_.Flush().status().IgnoreError();  // access times are hints; losing the last batch is harmless
  std::unique_lock lock(fills_mu_);
  fills_cv_.wait(lock, [&] { return fill_threads_ == 0; });
}

void ProxyCache::Log(const std::string& line) const {
  if (options_.log) options_.log(line);
}

void ProxyCache::Background() {
  std::unique_lock lock(bg_mu_);
  while (!stopping_) {
    bg_cv_.wait_for(lock, options_.interval, [&] { return stopping_.load(); });
    if (stopping_) break;
    lock.unlock();
    auto r = Maintain();
    if (!r.ok()) Log("proxy cache maintenance failed: " + r.status().message());
    lock.lock();
  }
}

Result<EvictReport> ProxyCache::Maintain() {
  std::lock_guard lock(maintain_mu_);
  if (options_.max_size == 0) {
    SILO_TRY(lru_.Flush().status());
    return EvictReport{};
  }
  SILO_ASSIGN_OR_RETURN(EvictReport r, lru_.Evict(options_.max_size, options_.gc_grace));
  if (r.images_evicted > 0) {
    images_evicted_ += r.images_evicted;
    bytes_evicted_ += r.bytes_evicted;
    ++gc_runs_;
    Log("proxy cache: " + FormatBytes(r.cache_bytes) + " cached, cap " + FormatBytes(options_.max_size) + ": evicted " +
        std::to_string(r.images_evicted) + " least recently used image(s) (" + FormatBytes(r.bytes_evicted) +
        "); gc removed " + std::to_string(r.gc.objects_removed) + " object(s), " +
        FormatBytes(r.gc.logical_bytes_removed));
  }
  return r;
}

Status ProxyCache::FetchManifest(const RepoLocation& loc, const std::string& reference, const std::string& ref_name,
                                 Upstreams::Clients& up, store::Digest* out) {
  auto outcome = manifest_flight_.Do(ref_name + " " + reference, [&]() -> Status {
    std::string repo = UpstreamRepo(loc);
    SILO_ASSIGN_OR_RETURN(auto m, up.fetch.GetManifest(repo, reference));
    auto parsed = index::ParseManifest(m.bytes, m.media_type);
    if (!parsed.ok()) {
      return Status::Integrity(up.fetch.registry() + "/" + repo + ":" + reference +
                               ": the upstream sent a manifest silo cannot read: " + parsed.status().message());
    }
    SILO_ASSIGN_OR_RETURN(store::Digest digest, store::Digest::Parse(m.digest));
    std::vector<store::Digest> links;
    for (const auto& r : parsed->References()) {
      if (!r.urls.empty()) continue;  // foreign layers live elsewhere
      auto d = store::Digest::Parse(r.digest);
      if (!d.ok() || !d->is_sha256()) {
        return Status::Integrity(up.fetch.registry() + "/" + repo + ":" + reference + ": manifest names digest \"" +
                                 r.digest + "\"");
      }
      links.push_back(*d);
    }
    // The mark first: a ref without it would count as the user's and never be evicted.
    SILO_TRY(store_.PutIndex(kProxyRefsSpace, ref_name, ProxyMark{digest, UnixNow()}.Encode()));
    SILO_TRY(store_.PutIndex(kMediaTypeIndex, digest.raw(), parsed->media_type));
    store::PutOptions po;
    po.expected_digest = digest;
    po.links = std::move(links);
    po.ref = ref_name;
    auto info = store_.Put(ByteSpan(reinterpret_cast<const uint8_t*>(m.bytes.data()), m.bytes.size()), po);
    if (!info.ok()) return std::move(info).take_status();
    return Status::Ok();
  });
  SILO_TRY(outcome.status);
  SILO_ASSIGN_OR_RETURN(auto target, store_.GetRef(ref_name));
  if (!target) return Status::NotFound("manifest " + reference + " unknown");
  *out = *target;
  Touch(*out);
  return Status::Ok();
}

Result<store::Digest> ProxyCache::ResolveTag(const RepoLocation& loc, const std::string& tag) {
  Upstreams::Clients* up = upstreams_.Find(loc.registry);
  if (!up) return Status::NotFound(loc.registry + " is not an upstream");
  std::string ref = loc.TagRef(tag);
  SILO_ASSIGN_OR_RETURN(auto current, store_.GetRef(ref));
  if (current && store_.Stat(*current).ok()) {
    SILO_ASSIGN_OR_RETURN(auto value, store_.GetIndex(kProxyRefsSpace, ref));
    std::optional<ProxyMark> mark = value ? ProxyMark::Decode(*value) : std::nullopt;
    bool ours = mark && mark->digest == *current;
    if (!ours || UnixNow() - mark->checked < options_.tag_ttl.count()) {
      ++manifest_hits_;
      Touch(*current);
      return *current;
    }
    ++tag_checks_;
    std::string what = loc.registry + "/" + loc.repository + ":" + tag;
    auto head = up->check.ManifestDigest(UpstreamRepo(loc), tag, /*for_push=*/false);
    if (!head.ok() || !*head) {
      ++stale_served_;
      Log("warning: " + what + ": upstream check failed (" +
          (head.ok() ? std::string("tag unknown upstream") : head.status().message()) + "); serving the cached " +
          current->ToString());
      Touch(*current);
      return *current;
    }
    if (**head == current->ToString()) {
      SILO_TRY(store_.PutIndex(kProxyRefsSpace, ref, ProxyMark{*current, UnixNow()}.Encode()));
      Touch(*current);
      return *current;
    }
    store::Digest fresh;
    if (Status s = FetchManifest(loc, **head, ref, *up, &fresh); !s.ok()) {
      ++stale_served_;
      Log("warning: " + what + ": upstream moved to " + **head + " but fetching it failed (" + s.message() +
          "); serving the cached " + current->ToString());
      Touch(*current);
      return *current;
    }
    ++tag_refreshes_;
    return fresh;
  }
  ++manifest_misses_;
  store::Digest d;
  SILO_TRY(FetchManifest(loc, tag, ref, *up, &d));
  return d;
}

Status ProxyCache::EnsureManifest(const RepoLocation& loc, const store::Digest& digest) {
  if (store_.Stat(digest).ok()) {
    ++manifest_hits_;
    Touch(digest);
    return Status::Ok();
  }
  Upstreams::Clients* up = upstreams_.Find(loc.registry);
  if (!up) return Status::NotFound("manifest " + digest.ToString() + " unknown");
  ++manifest_misses_;
  store::Digest got;
  return FetchManifest(loc, digest.ToString(), loc.DigestRef(digest.ToString()), *up, &got);
}

Result<std::unique_ptr<store::ObjectReader>> ProxyCache::OpenBlob(const RepoLocation& loc,
                                                                  const store::Digest& digest) {
  Upstreams::Clients* up = upstreams_.Find(loc.registry);
  if (!up) return Status::NotFound("blob " + digest.ToString() + " unknown");
  std::string key = digest.ToString();
  std::shared_ptr<BlobFill> fill;
  {
    std::lock_guard lock(fills_mu_);
    if (stopping_) return Status::Interrupted("the server is stopping");
    if (auto it = fills_.find(key); it != fills_.end()) {
      fill = it->second;
      ++blob_shared_;
    } else {
      // Checked again under the lock: a download that just finished has left the map.
      auto r = store_.NewReader(digest);
      if (r.ok()) {
        ++blob_hits_;
        Touch(digest);
        return r;
      }
      if (!r.status().IsNotFound()) return r;
      ++blob_misses_;
      fill = std::make_shared<BlobFill>(store_, digest, store_.path());
      fills_[key] = fill;
      ++fill_threads_;
      std::string what = loc.registry + "/" + loc.repository + "@" + key;
      std::thread([this, fill, up, repo = UpstreamRepo(loc), key, what] {
        Status s = fill->Run(up->fetch, repo, stopping_);
        if (s.ok()) {
          if (auto size = fill->WaitSize(); size.ok()) bytes_filled_ += *size;
        } else {
          ++blob_failed_;
          Log("warning: " + what + ": not cached: " + s.message());
        }
        std::lock_guard done_lock(fills_mu_);
        if (auto pos = fills_.find(key); pos != fills_.end() && pos->second == fill) fills_.erase(pos);
        --fill_threads_;
        fills_cv_.notify_all();
      }).detach();
    }
  }
  Touch(digest);
  SILO_ASSIGN_OR_RETURN(uint64_t size, fill->WaitSize());
  if (size <= options_.verify_first) {
    SILO_TRY(fill->WaitDone());
    return store_.NewReader(digest);
  }
  return fill->NewReader();
}

std::string ProxyCache::MetricsText() const {
  std::string out;
  auto counter = [&](const char* name, const char* help, uint64_t v) { AppendMetric(&out, name, "counter", help, v); };
  counter("silo_proxy_manifest_hits_total", "Manifests served from the cache", manifest_hits_);
  counter("silo_proxy_manifest_misses_total", "Manifests fetched from an upstream", manifest_misses_);
  counter("silo_proxy_tag_checks_total", "Cached tags rechecked upstream after the TTL", tag_checks_);
  counter("silo_proxy_tag_refreshes_total", "Cached tags that had moved upstream", tag_refreshes_);
  counter("silo_proxy_stale_served_total", "Cached manifests served because the upstream failed", stale_served_);
  counter("silo_proxy_blob_hits_total", "Blobs found in the store on the miss path", blob_hits_);
  counter("silo_proxy_blob_misses_total", "Blob downloads started", blob_misses_);
  counter("silo_proxy_blob_shared_total", "Blob requests fed from a download already running", blob_shared_);
  counter("silo_proxy_blob_failed_total", "Blob downloads that failed (nothing stored)", blob_failed_);
  counter("silo_proxy_filled_bytes_total", "Bytes of blobs stored from upstreams", bytes_filled_);
  counter("silo_proxy_evicted_images_total", "Cached images evicted under the size cap", images_evicted_);
  counter("silo_proxy_evicted_bytes_total", "Bytes of the evicted images", bytes_evicted_);
  counter("silo_proxy_gc_runs_total", "Collections run after evictions", gc_runs_);
  return out;
}

}  // namespace silo::server
