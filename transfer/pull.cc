#include "transfer/pull.h"

#include <algorithm>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "transfer/image_jobs.h"
#include "util/interrupt.h"
#include "util/single_flight.h"
#include "util/thread_pool.h"

namespace silo::transfer {
namespace {

Result<store::Digest> ParseDigest(const std::string& d) {
  return store::Digest::Parse(d);
}

bool IsAttestationOrUnknown(const index::Descriptor& d) {
  return d.platform && (d.platform->os == "unknown" || d.platform->architecture == "unknown");
}

}  // namespace

struct Puller::Impl {
  store::Store& store;
  PullOptions options;
  PullCounters& counters;
  std::mutex clients_mu;
  std::map<std::string, std::unique_ptr<RegistryClient>> clients;
  // Blobs being fetched right now, so concurrent images share one download.
  SingleFlight inflight;  // blob digests being fetched
  std::unique_ptr<ThreadPool> blob_pool;

  Impl(store::Store& s, PullOptions o, PullCounters& c) : store(s), options(std::move(o)), counters(c) {
    size_t threads = static_cast<size_t>(std::clamp(options.jobs * options.blob_jobs, 1, 64));
    blob_pool = std::make_unique<ThreadPool>(threads);
  }

  RegistryClient& Client(const std::string& registry) {
    std::lock_guard lock(clients_mu);
    auto& c = clients[registry];
    if (!c) {
      RegistryOptions o = options.registry;
      o.plain_http = std::find(options.plain_http_registries.begin(), options.plain_http_registries.end(), registry) !=
                         options.plain_http_registries.end() ||
                     options.registry.plain_http;
      c = std::make_unique<RegistryClient>(registry, o);
    }
    return *c;
  }

  // Stores one blob (verifying size and digest), resuming a checkpointed download.
  Status FetchBlobNow(RegistryClient& client, const std::string& repo, const index::Descriptor& d,
                      const PullItem& item) {
    SILO_ASSIGN_OR_RETURN(store::Digest digest, ParseDigest(d.digest));
    // Another image may have stored it since this one looked.
    if (store.Stat(digest).ok()) return Status::Ok();
    store::PutOptions po;
    po.expected_digest = digest;
    po.expected_size = d.size;
    po.resume_key = "blob/" + d.digest;
    SILO_ASSIGN_OR_RETURN(auto writer, store.NewWriter(po));
    uint64_t offset = writer->bytes_written();
    std::unique_ptr<BlobTee> tee;
    if (item.tee && offset == 0) tee = item.tee(d);
    Status s = client.FetchBlob(repo, d.digest, d.size, offset, [&](ByteSpan data) {
      counters.bytes_fetched += data.size();
      if (tee) tee->Write(data);
      return writer->Write(data);
    });
    if (!s.ok()) {
      if (tee) tee->Finish(s);
      writer->Checkpoint().IgnoreError();  // the next attempt resumes from here
      return s;
    }
    auto info = writer->Commit();
    if (tee) tee->Finish(info.status());
    if (!info.ok()) return std::move(info).take_status().WithContext("blob " + d.digest);
    counters.blobs_fetched++;
    return Status::Ok();
  }

  // Fetches a blob unless another image is fetching it already (then waits for that).
  Status FetchBlobShared(RegistryClient& client, const std::string& repo, const index::Descriptor& d,
                         const PullItem& item) {
    auto run = inflight.Do(d.digest, [&] { return FetchBlobNow(client, repo, d, item); });
    if (run.ran) return run.status;
    counters.blobs_shared++;
    // The other image's registry or repository may have failed; try ours.
    if (run.status.ok()) return run.status;
    return FetchBlobShared(client, repo, d, item);
  }

  // Fetches the missing blobs of one image manifest, up to blob_jobs at a time.
  Status FetchBlobs(RegistryClient& client, const std::string& repo, const std::vector<index::Descriptor>& blobs,
                    PullItem& item) {
    std::vector<store::Digest> digests;
    for (const auto& b : blobs) {
      SILO_ASSIGN_OR_RETURN(store::Digest d, ParseDigest(b.digest));
      digests.push_back(d);
    }
    SILO_ASSIGN_OR_RETURN(auto missing, store.Missing(digests));
    std::set<std::string> missing_set;
    for (const auto& m : missing) missing_set.insert(m.ToString());
    counters.blobs_present += blobs.size() - missing_set.size();
    std::vector<const index::Descriptor*> todo;
    std::set<std::string> seen;
    for (const auto& b : blobs) {
      if (missing_set.contains(b.digest) && seen.insert(b.digest).second) todo.push_back(&b);
    }
    for (const auto* b : todo) {
      if (!b->urls.empty()) {
        return Status::Unsupported("blob " + b->digest + " is a foreign layer (" + b->urls.front() +
                                   "); silo pulls only from the registry");
      }
      counters.bytes_planned += b->size;
    }
    if (options.dry_run) {
      for (const auto* b : todo) item.would_fetch.push_back(b->digest + " " + std::to_string(b->size));
      return Status::Ok();
    }
    WaitGroup wg;
    std::mutex mu;
    Status first;
    for (const auto* b : todo) {
      if (Interrupted()) break;
      wg.WaitBelow(static_cast<size_t>(std::max(1, options.blob_jobs)));
      {
        std::lock_guard lock(mu);
        if (!first.ok()) break;
      }
      wg.Add();
      blob_pool->Submit([&, b] {
        Status s = FetchBlobShared(client, repo, *b, item);
        if (!s.ok()) {
          std::lock_guard lock(mu);
          if (first.ok()) first = std::move(s);
        }
        wg.Done();
      });
    }
    wg.Wait();
    if (first.ok() && Interrupted()) return Status::Interrupted("interrupted");
    return first;
  }

  // A manifest from the store when present, else from the registry.
  Result<FetchedManifest> ManifestByDigest(RegistryClient& client, const std::string& repo, const std::string& digest) {
    SILO_ASSIGN_OR_RETURN(store::Digest d, ParseDigest(digest));
    auto local = store.ReadAll(d, index::kMaxManifestSize);
    if (local.ok()) return FetchedManifest{std::move(*local), "", digest};
    return client.GetManifest(repo, digest);
  }

  Status StoreManifest(const FetchedManifest& m, const index::Manifest& parsed, const std::string& ref) {
    if (options.dry_run) return Status::Ok();
    store::PutOptions po;
    SILO_ASSIGN_OR_RETURN(po.expected_digest, ParseDigest(m.digest));
    // Already stored (and the tag already names it): write nothing, so a no-op re-pull
    // leaves no memtable to flush when the store closes.
    if (store.Stat(*po.expected_digest).ok()) {
      if (ref.empty()) return Status::Ok();
      auto current = store.GetRef(ref);
      if (current.ok() && *current && **current == *po.expected_digest) return Status::Ok();
    }
    for (const auto& child : parsed.References()) {
      SILO_ASSIGN_OR_RETURN(store::Digest d, ParseDigest(child.digest));
      po.links.push_back(d);
    }
    po.ref = ref;
    auto info = store.Put(AsBytes(m.bytes), po);
    return info.status();
  }

  // Pulls one image manifest (not an index): its blobs, then the manifest itself.
  Status PullImage(RegistryClient& client, const std::string& repo, const FetchedManifest& m,
                   const index::Manifest& parsed, const std::string& ref, PullItem& item) {
    std::vector<index::Descriptor> blobs = parsed.References();
    SILO_TRY(FetchBlobs(client, repo, blobs, item));
    return StoreManifest(m, parsed, ref);
  }

  // The platform of a single image manifest, from its config.
  Result<index::Platform> ConfigPlatform(RegistryClient& client, const std::string& repo, const index::Manifest& m,
                                         PullItem& item) {
    SILO_TRY(FetchBlobs(client, repo, {m.config}, item));
    if (options.dry_run) {
      // Nothing stored: read the config straight from the registry.
      std::string bytes;
      SILO_TRY(client.FetchBlob(repo, m.config.digest, m.config.size, 0, [&](ByteSpan b) {
        bytes.append(reinterpret_cast<const char*>(b.data()), b.size());
        return Status::Ok();
      }));
      return index::ParseConfigPlatform(bytes);
    }
    SILO_ASSIGN_OR_RETURN(store::Digest d, ParseDigest(m.config.digest));
    SILO_ASSIGN_OR_RETURN(std::string config, store.ReadAll(d, 16 << 20));
    return index::ParseConfigPlatform(config);
  }

  bool Wanted(const index::Platform& p) const {
    if (options.platforms.empty()) return true;
    return std::any_of(options.platforms.begin(), options.platforms.end(),
                       [&](const index::Platform& w) { return p.Matches(w); });
  }

  Status NoPlatform(PullItem& item, const std::string& had) {
    std::string want;
    for (const auto& p : options.platforms) want += (want.empty() ? "" : ", ") + p.ToString();
    std::string msg = "none of the platforms asked for (" + want + ") is in the image (it has " + had + ")";
    if (options.fail_without_platform) return Status::NotFound(msg);
    item.warnings.push_back(msg);
    return Status::Ok();
  }

  Status PullOne(PullItem& item) {
    const index::Reference& r = item.reference;
    RegistryClient& client = Client(r.registry);
    SILO_ASSIGN_OR_RETURN(FetchedManifest top, client.GetManifest(r.repository, r.Identifier()));
    item.digest = top.digest;
    SILO_ASSIGN_OR_RETURN(index::Manifest parsed, index::ParseManifest(top.bytes, top.media_type));
    std::string ref = index::ImageRefName(r);
    if (!parsed.is_index()) {
      if (!options.platforms.empty()) {
        SILO_ASSIGN_OR_RETURN(index::Platform p, ConfigPlatform(client, r.repository, parsed, item));
        if (!Wanted(p)) return NoPlatform(item, p.ToString());
        item.platforms.push_back(p.ToString());
      }
      return PullImage(client, r.repository, top, parsed, ref, item);
    }
    // An index: the selected children, then the index itself, byte-exact.
    std::string had;
    std::vector<const index::Descriptor*> selected;
    for (const auto& child : parsed.manifests) {
      std::string plat = child.platform ? child.platform->ToString() : "?";
      if (!IsAttestationOrUnknown(child)) had += (had.empty() ? "" : ", ") + plat;
      bool want = options.platforms.empty()
                      ? true
                      : child.platform && !IsAttestationOrUnknown(child) && Wanted(*child.platform);
      if (want) selected.push_back(&child);
    }
    if (selected.empty()) return NoPlatform(item, had.empty() ? "no platforms" : had);
    for (const auto* child : selected) {
      if (Interrupted()) return Status::Interrupted("interrupted");
      SILO_ASSIGN_OR_RETURN(FetchedManifest cm, ManifestByDigest(client, r.repository, child->digest));
      SILO_ASSIGN_OR_RETURN(index::Manifest cp, index::ParseManifest(cm.bytes, child->media_type));
      if (cp.is_index()) return Status::Unsupported("nested index " + child->digest + " is not supported");
      SILO_TRY(PullImage(client, r.repository, cm, cp, "", item).WithContext("manifest " + child->digest));
      if (child->platform && !IsAttestationOrUnknown(*child)) item.platforms.push_back(child->platform->ToString());
    }
    return StoreManifest(top, parsed, ref);
  }
};

Puller::Puller(store::Store& store, PullOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(options), counters_)) {}

Puller::~Puller() = default;

uint64_t Puller::requests() const {
  std::lock_guard lock(impl_->clients_mu);
  uint64_t n = 0;
  for (const auto& [name, c] : impl_->clients) n += c->requests();
  return n;
}

uint64_t Puller::retries() const {
  std::lock_guard lock(impl_->clients_mu);
  uint64_t n = 0;
  for (const auto& [name, c] : impl_->clients) n += c->retries();
  return n;
}

void Puller::Pull(std::vector<PullItem>& items) {
  RunImageJobs(items, impl_->options.jobs, counters_,
               [&](PullItem& item) { return impl_->PullOne(item).WithContext("pull " + item.reference.ToString()); });
}

}  // namespace silo::transfer
