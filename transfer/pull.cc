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
  store::Store* store;  // UseStore switches it between runs
  PullOptions options;
  PullCounters& counters;
  std::mutex clients_mu;
  std::map<std::string, std::unique_ptr<RegistryClient>> clients;
  // Blobs being fetched right now, so concurrent images share one download.
  SingleFlight inflight;  // blob digests being fetched
  std::once_flag blob_pool_once;
  std::unique_ptr<ThreadPool> blob_pool;  // started by the first blob fetch (a no-op pull needs none)

  Impl(store::Store& s, PullOptions o, PullCounters& c) : store(&s), options(std::move(o)), counters(c) {}

  ThreadPool& BlobPool() {
    std::call_once(blob_pool_once, [&] {
      size_t threads = static_cast<size_t>(std::clamp(options.jobs * options.blob_jobs, 1, 64));
      blob_pool = std::make_unique<ThreadPool>(threads);
    });
    return *blob_pool;
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
    if (store->Stat(digest).ok()) return Status::Ok();
    store::PutOptions po;
    po.expected_digest = digest;
    po.expected_size = d.size;
    po.resume_key = "blob/" + d.digest;
    SILO_ASSIGN_OR_RETURN(auto writer, store->NewWriter(po));
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
    SILO_ASSIGN_OR_RETURN(auto missing, store->Missing(digests));
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
      BlobPool().Submit([&, b] {
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
    auto local = store->ReadAll(d, index::kMaxManifestSize);
    if (local.ok()) return FetchedManifest{std::move(*local), "", digest};
    return client.GetManifest(repo, digest);
  }

  Status StoreManifest(const FetchedManifest& m, const index::Manifest& parsed, const std::string& ref) {
    if (options.dry_run) return Status::Ok();
    store::PutOptions po;
    SILO_ASSIGN_OR_RETURN(po.expected_digest, ParseDigest(m.digest));
    // Already stored (and the tag already names it): write nothing, so a no-op re-pull
    // leaves no memtable to flush when the store closes.
    if (store->Stat(*po.expected_digest).ok()) {
      if (ref.empty()) return Status::Ok();
      auto current = store->GetRef(ref);
      if (current.ok() && *current && **current == *po.expected_digest) return Status::Ok();
    }
    for (const auto& child : parsed.References()) {
      SILO_ASSIGN_OR_RETURN(store::Digest d, ParseDigest(child.digest));
      po.links.push_back(d);
    }
    po.ref = ref;
    auto info = store->Put(AsBytes(m.bytes), po);
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
    SILO_ASSIGN_OR_RETURN(std::string config, store->ReadAll(d, 16 << 20));
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

  // The children of an index that the platform filter selects; `had` lists the platforms
  // the index offers.
  std::vector<const index::Descriptor*> SelectChildren(const index::Manifest& parsed, std::string& had) const {
    std::vector<const index::Descriptor*> selected;
    for (const auto& child : parsed.manifests) {
      std::string plat = child.platform ? child.platform->ToString() : "?";
      if (!IsAttestationOrUnknown(child)) had += (had.empty() ? "" : ", ") + plat;
      bool want = options.platforms.empty()
                      ? true
                      : child.platform && !IsAttestationOrUnknown(child) && Wanted(*child.platform);
      if (want) selected.push_back(&child);
    }
    return selected;
  }

  // Whether every blob of `m` is stored (false too when the question cannot be answered:
  // PullOne then reports the problem).
  bool BlobsStored(const index::Manifest& m) {
    std::vector<store::Digest> digests;
    for (const auto& b : m.References()) {
      auto d = ParseDigest(b.digest);
      if (!d.ok()) return false;
      digests.push_back(*d);
    }
    auto missing = store->Missing(digests);
    return missing.ok() && missing->empty();
  }

  // SkipUpToDate for one item: true when the store holds what PullOne would store. Reads
  // only; anything unusual (a filtered-out image, a nested index) is left to PullOne.
  Result<bool> UpToDate(PullItem& item) {
    const index::Reference& r = item.reference;
    RegistryClient& client = Client(r.registry);
    SILO_ASSIGN_OR_RETURN(FetchedManifest top, client.GetManifest(r.repository, r.Identifier()));
    item.digest = top.digest;
    const FetchedManifest& m = item.resolved.emplace(std::move(top));
    SILO_ASSIGN_OR_RETURN(store::Digest top_digest, ParseDigest(m.digest));
    auto current = store->GetRef(index::ImageRefName(r));
    if (!current.ok() || !*current || **current != top_digest) return false;
    auto parsed = index::ParseManifest(m.bytes, m.media_type);
    if (!parsed.ok()) return false;
    std::vector<std::string> platforms;
    uint64_t blobs = 0;
    if (!parsed->is_index()) {
      if (!options.platforms.empty()) {
        auto d = ParseDigest(parsed->config.digest);
        if (!d.ok()) return false;
        auto config = store->ReadAll(*d, 16 << 20);
        if (!config.ok()) return false;
        auto p = index::ParseConfigPlatform(*config);
        if (!p.ok() || !Wanted(*p)) return false;
        platforms.push_back(p->ToString());
      }
      if (!BlobsStored(*parsed)) return false;
      blobs += parsed->References().size();
    } else {
      std::string had;
      auto selected = SelectChildren(*parsed, had);
      if (selected.empty()) return false;
      for (const auto* child : selected) {
        auto d = ParseDigest(child->digest);
        if (!d.ok()) return false;
        auto bytes = store->ReadAll(*d, index::kMaxManifestSize);
        if (!bytes.ok()) return false;
        auto cp = index::ParseManifest(*bytes, child->media_type);
        if (!cp.ok() || cp->is_index() || !BlobsStored(*cp)) return false;
        blobs += cp->References().size();
        if (child->platform && !IsAttestationOrUnknown(*child)) platforms.push_back(child->platform->ToString());
      }
    }
    item.platforms = std::move(platforms);
    item.resolved.reset();
    counters.blobs_present += blobs;
    return true;
  }

  Status PullOne(PullItem& item) {
    const index::Reference& r = item.reference;
    RegistryClient& client = Client(r.registry);
    FetchedManifest top;
    if (item.resolved) {
      top = std::move(*item.resolved);
      item.resolved.reset();
    } else {
      SILO_ASSIGN_OR_RETURN(top, client.GetManifest(r.repository, r.Identifier()));
    }
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
    std::vector<const index::Descriptor*> selected = SelectChildren(parsed, had);
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

size_t Puller::SkipUpToDate(std::vector<PullItem>& items) {
  // Light requests: more of them at a time than images are pulled at a time.
  int jobs = std::clamp(impl_->options.jobs * impl_->options.blob_jobs, 1, 16);
  PullCounters check;
  std::atomic<size_t> up_to_date{0};
  RunImageJobs(items, jobs, check, [&](PullItem& item) -> Status {
    auto done = impl_->UpToDate(item);
    if (!done.ok()) return std::move(done).take_status().WithContext("pull " + item.reference.ToString());
    item.up_to_date = *done;
    if (*done) up_to_date++;
    return Status::Ok();
  });
  counters_.images_total += up_to_date + check.images_failed;
  counters_.images_done += up_to_date;
  counters_.images_failed += check.images_failed;
  return up_to_date;
}

void Puller::UseStore(store::Store& store) {
  impl_->store = &store;
}

void Puller::Pull(std::vector<PullItem>& items) {
  RunImageJobs(items, impl_->options.jobs, counters_,
               [&](PullItem& item) { return impl_->PullOne(item).WithContext("pull " + item.reference.ToString()); });
}

}  // namespace silo::transfer
