#include "transfer/push.h"

#include <algorithm>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "store/digest.h"
#include "transfer/image_jobs.h"
#include "util/hash.h"
#include "util/interrupt.h"
#include "util/single_flight.h"
#include "util/thread_pool.h"

namespace silo::transfer {

Result<PushDestination> ParsePushDestination(std::string_view text) {
  std::string t(text);
  while (t.ends_with('/')) t.pop_back();
  size_t slash = t.find('/');
  PushDestination d;
  d.registry = t.substr(0, slash);
  if (slash != std::string::npos) d.prefix = t.substr(slash + 1);
  bool looks_like_registry = d.registry.find('.') != std::string::npos || d.registry.find(':') != std::string::npos ||
                             d.registry == "localhost";
  if (d.registry.empty() || !looks_like_registry) {
    return Status::InvalidArgument("destination '" + std::string(text) +
                                   "': expected REGISTRY[/PREFIX] with a registry host (a '.' or ':port', or "
                                   "localhost), e.g. 127.0.0.1:5000/mirror");
  }
  for (char c : d.prefix) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' || c == '.' || c == '_' || c == '-';
    if (!ok) return Status::InvalidArgument("destination '" + std::string(text) + "': prefix must be lowercase");
  }
  return d;
}

index::Reference DestinationReference(const index::Reference& source, const PushDestination& dest) {
  index::Reference r = source;
  r.registry = dest.registry;
  r.repository = dest.prefix.empty() ? source.repository : dest.prefix + "/" + source.repository;
  return r;
}

namespace {

std::string Json(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

}  // namespace

std::string BuildIndex(std::string_view media_type, const std::vector<index::Descriptor>& children) {
  std::string out = "{\"schemaVersion\":2,\"mediaType\":" + Json(media_type) + ",\"manifests\":[";
  for (size_t i = 0; i < children.size(); ++i) {
    const auto& c = children[i];
    if (i) out += ",";
    out += "{\"mediaType\":" + Json(c.media_type) + ",\"digest\":" + Json(c.digest) +
           ",\"size\":" + std::to_string(c.size);
    if (c.platform) {
      out += ",\"platform\":{\"architecture\":" + Json(c.platform->architecture) + ",\"os\":" + Json(c.platform->os);
      if (!c.platform->variant.empty()) out += ",\"variant\":" + Json(c.platform->variant);
      out += "}";
    }
    out += "}";
  }
  return out + "]}";
}

struct Pusher::Impl {
  store::Store& store;
  PushDestination dest;
  PushOptions options;
  PushCounters& counters;
  RegistryClient client;
  std::unique_ptr<ThreadPool> blob_pool;
  // Repositories of the destination known to hold a blob (put or seen by this push).
  std::mutex known_mu;
  std::map<std::string, std::set<std::string>> known;
  // Blobs being uploaded right now, so concurrent images share one upload.
  SingleFlight inflight;  // blob digests being uploaded
  // Manifest PUTs go one at a time per repository, and a manifest known to be in a
  // repository (put or found by this push) is not put again. The CNCF registry rewrites a
  // manifest's link file in place (truncate, then write) on every PUT of it, and an index
  // PUT reads its children's links to check they exist: a child PUT racing its index's PUT
  // in one repository (the same image under two tags, pushed at once) made the registry
  // read an empty link and answer 400 DIGEST_INVALID. Manifests are small; serializing
  // them per repository costs little, and repositories still go in parallel.
  std::map<std::string, std::unique_ptr<std::mutex>> manifest_locks;  // under known_mu
  std::set<std::string> known_manifests;                              // "repo@digest", under known_mu

  Impl(store::Store& s, PushDestination d, PushOptions o, PushCounters& c)
      : store(s), dest(std::move(d)), options(std::move(o)), counters(c), client(dest.registry, [&] {
          RegistryOptions r = options.registry;
          r.plain_http = r.plain_http || options.plain_http;
          return r;
        }()) {
    size_t threads = static_cast<size_t>(std::clamp(options.jobs * options.blob_jobs, 1, 64));
    blob_pool = std::make_unique<ThreadPool>(threads);
  }

  void Remember(const std::string& digest, const std::string& repo) {
    std::lock_guard lock(known_mu);
    known[digest].insert(repo);
  }
  // Whether `repo` holds the blob, else another repository that does ("" if none).
  std::pair<bool, std::string> Where(const std::string& digest, const std::string& repo) {
    std::lock_guard lock(known_mu);
    auto it = known.find(digest);
    if (it == known.end() || it->second.empty()) return {false, ""};
    if (it->second.contains(repo)) return {true, ""};
    return {false, *it->second.begin()};
  }

  // The blob's bytes from the store. The store reader verifies every chunk's checksum as
  // it reads (a corrupted blob fails its read, so curl aborts the upload before the
  // registry commits it), the size is checked here, and the registry checks the digest
  // when the upload completes: no second SHA-256 pass on this side.
  RegistryClient::BlobOpener Opener(const index::Descriptor& d) {
    return [this, d]() -> Result<std::function<Result<size_t>(std::span<uint8_t>)>> {
      SILO_ASSIGN_OR_RETURN(store::Digest digest, store::Digest::Parse(d.digest));
      SILO_ASSIGN_OR_RETURN(auto reader, store.NewReader(digest));
      if (reader->info().size != d.size) {
        return Status::Integrity("blob " + d.digest + " in the store has " + std::to_string(reader->info().size) +
                                 " bytes, its manifest says " + std::to_string(d.size) + "; not pushed");
      }
      std::shared_ptr<store::ObjectReader> shared = std::move(reader);
      std::function<Result<size_t>(std::span<uint8_t>)> source = [this, d,
                                                                  shared](std::span<uint8_t> buf) -> Result<size_t> {
        auto n = shared->Read(buf);
        if (!n.ok()) return n.status().WithContext("blob " + d.digest + " in the store; not pushed");
        counters.bytes_uploaded += *n;
        return *n;
      };
      return source;
    };
  }

  // Skips the blob when `repo` has it or a mount from another repository works. True when
  // nothing is left to upload.
  Result<bool> PresentOrMounted(const std::string& repo, const index::Descriptor& d) {
    auto [here, elsewhere] = Where(d.digest, repo);
    if (here) {
      counters.blobs_present++;
      return true;
    }
    // Known in another repository: mount at once, no HEAD first (a mount of a blob the
    // repository already has answers 201 as well; each request costs docker-registry about
    // as much CPU as 0.4 MiB of upload). A mount refused (202) or failed (an error: the
    // mount is only a shortcut) falls back to asking whether the blob is there, then to an
    // upload.
    if (!elsewhere.empty()) {
      auto mounted = client.MountBlob(repo, d.digest, elsewhere);
      if (Interrupted()) return Status::Interrupted("interrupted");
      if (mounted.ok() && *mounted) {
        counters.blobs_mounted++;
        Remember(d.digest, repo);
        return true;
      }
    }
    SILO_ASSIGN_OR_RETURN(auto size, client.BlobSize(repo, d.digest));
    if (size) {
      counters.blobs_present++;
      Remember(d.digest, repo);
      return true;
    }
    if (!d.urls.empty()) {
      return Status::Unsupported("blob " + d.digest + " is a foreign layer (" + d.urls.front() + "); not pushed");
    }
    return false;
  }

  Status PushBlobStream(const std::string& repo, const index::Descriptor& d,
                        const std::function<Result<size_t>(std::span<uint8_t>)>& source) {
    auto run = inflight.Do(d.digest, [&]() -> Status {
      SILO_ASSIGN_OR_RETURN(bool done, PresentOrMounted(repo, d));
      if (done) return Status::Ok();
      bool opened = false;
      RegistryClient::BlobOpener open = [&]() -> Result<std::function<Result<size_t>(std::span<uint8_t>)>> {
        if (opened) return Status::Unsupported("blob " + d.digest + ": a streamed upload cannot restart");
        opened = true;
        return std::function<Result<size_t>(std::span<uint8_t>)>([&](std::span<uint8_t> buf) -> Result<size_t> {
          SILO_ASSIGN_OR_RETURN(size_t n, source(buf));
          counters.bytes_uploaded += n;
          return n;
        });
      };
      counters.bytes_planned += d.size;
      // A retry finds the stream spent: `open` refuses a second time, which ends the upload.
      SILO_TRY(client.UploadBlob(repo, d.digest, d.size, open, options.upload));
      counters.blobs_uploaded++;
      Remember(d.digest, repo);
      return Status::Ok();
    });
    return run.status;
  }

  Status PushBlobNow(const std::string& repo, const index::Descriptor& d) {
    SILO_ASSIGN_OR_RETURN(bool done, PresentOrMounted(repo, d));
    if (done) return Status::Ok();
    counters.bytes_planned += d.size;
    SILO_TRY(client.UploadBlob(repo, d.digest, d.size, Opener(d), options.upload));
    counters.blobs_uploaded++;
    Remember(d.digest, repo);
    return Status::Ok();
  }

  // Uploads a blob unless another image is uploading it right now (then waits, and mounts
  // or finds it).
  Status PushBlobShared(const std::string& repo, const index::Descriptor& d) {
    auto run = inflight.Do(d.digest, [&] { return PushBlobNow(repo, d); });
    if (run.ran) return run.status;
    counters.blobs_shared++;
    return PushBlobShared(repo, d);  // now known somewhere (or failed there: try ours)
  }

  Status PushBlobs(const std::string& repo, const std::vector<index::Descriptor>& blobs) {
    WaitGroup wg;
    std::mutex mu;
    Status first;
    for (const auto& b : blobs) {
      if (Interrupted()) break;
      wg.WaitBelow(static_cast<size_t>(std::max(1, options.blob_jobs)));
      {
        std::lock_guard lock(mu);
        if (!first.ok()) break;
      }
      wg.Add();
      blob_pool->Submit([&, b] {
        Status s = PushBlobShared(repo, b);
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

  std::mutex& ManifestLock(const std::string& repo) {
    std::lock_guard lock(known_mu);
    auto& m = manifest_locks[repo];
    if (!m) m = std::make_unique<std::mutex>();
    return *m;
  }
  bool KnownManifest(const std::string& repo, const std::string& digest) {
    std::lock_guard lock(known_mu);
    return known_manifests.contains(repo + "@" + digest);
  }
  void RememberManifest(const std::string& repo, const std::string& digest) {
    std::lock_guard lock(known_mu);
    known_manifests.insert(repo + "@" + digest);
  }

  // PUTs a manifest unless the repository already has it under `reference` (a child put by
  // digest that this push already put or found is not asked about again).
  // `known_absent`: the caller has just seen the destination lack it (no check again).
  Status PutManifest(const std::string& repo, const std::string& reference, const std::string& digest,
                     const std::string& bytes, const std::string& media_type, bool known_absent = false) {
    std::lock_guard put_lock(ManifestLock(repo));
    if (!known_absent) {
      if (reference == digest && KnownManifest(repo, digest)) {
        counters.manifests_present++;
        return Status::Ok();
      }
      SILO_ASSIGN_OR_RETURN(auto there, client.ManifestDigest(repo, reference));
      if (there && *there == digest) {
        counters.manifests_present++;
        RememberManifest(repo, digest);
        return Status::Ok();
      }
    }
    SILO_TRY(client.PutManifest(repo, reference, bytes, media_type));
    counters.manifests_put++;
    RememberManifest(repo, digest);
    return Status::Ok();
  }
  // A PUT without the check, in the repository's turn (the sparse-index fallbacks).
  Status PutManifestNow(const std::string& repo, const std::string& reference, const std::string& bytes,
                        const std::string& media_type) {
    std::lock_guard put_lock(ManifestLock(repo));
    return client.PutManifest(repo, reference, bytes, media_type);
  }

  Status PushOne(PushItem& item) {
    const std::string& repo = item.dest.repository;
    const std::string top_ref = item.dest.Identifier();
    const std::string top_digest = item.top.ToString();
    // The destination already serves this exact image: nothing to do.
    if (!item.dest_lacks_top) {
      SILO_ASSIGN_OR_RETURN(auto there, client.ManifestDigest(repo, top_ref));
      if (there && *there == top_digest && options.platforms.empty()) {
        item.digest = top_digest;
        item.already_present = true;
        counters.images_present++;
        return Status::Ok();
      }
    }
    index::GraphOptions go;
    go.platforms = options.platforms;
    SILO_ASSIGN_OR_RETURN(index::ImageGraph graph, index::LoadImageGraph(store, item.top, go));
    if (!graph.missing_blobs.empty()) {
      std::string list;
      for (const auto& b : graph.missing_blobs) list += (list.empty() ? "" : ", ") + b.digest;
      return Status::NotFound("the store lacks " + std::to_string(graph.missing_blobs.size()) +
                              " blob(s) of this image: " + list);
    }
    if (graph.manifests.size() == 1 && graph.manifests.back().parsed.is_index()) {
      return Status::NotFound("none of the platforms asked for is in the store for this image");
    }
    SILO_TRY(PushBlobs(repo, graph.blobs));
    if (Interrupted()) return Status::Interrupted("interrupted");
    for (size_t i = 0; i + 1 < graph.manifests.size(); ++i) {
      const auto& m = graph.manifests[i];
      SILO_TRY(PutManifest(repo, m.digest.ToString(), m.digest.ToString(), m.bytes, m.media_type));
    }
    const auto& top = graph.manifests.back();
    item.digest = top_digest;
    if (!graph.partial()) {
      return PutManifest(repo, top_ref, top_digest, top.bytes, top.media_type, item.dest_lacks_top);
    }
    // A partial index: the original when the registry accepts it sparse, else one rebuilt
    // from the children present.
    Status s = PutManifestNow(repo, top_ref, top.bytes, top.media_type);
    if (s.ok()) {
      counters.manifests_put++;
      item.warnings.push_back("pushed the original index with " + std::to_string(graph.absent_children.size()) +
                              " child manifest(s) absent (the registry accepts a sparse index)");
      return Status::Ok();
    }
    if (s.code() != Code::kInvalidArgument) return s;
    std::vector<index::Descriptor> present;
    std::set<std::string> absent;
    for (const auto& a : graph.absent_children) absent.insert(a.digest);
    for (const auto& c : top.parsed.manifests) {
      if (!absent.contains(c.digest)) present.push_back(c);
    }
    std::string rebuilt = BuildIndex(top.media_type, present);
    std::string digest = "sha256:" + ToHex(Sha256::Of(AsBytes(rebuilt)));
    SILO_TRY(PutManifestNow(repo, top_ref, rebuilt, top.media_type));
    counters.manifests_put++;
    item.digest = digest;
    item.rebuilt = true;
    item.warnings.push_back("the registry refused the sparse index (" + s.message() + "); pushed a rebuilt index of " +
                            std::to_string(present.size()) + " platform(s) with digest " + digest);
    return Status::Ok();
  }
};

Pusher::Pusher(store::Store& store, PushDestination dest, PushOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(dest), std::move(options), counters_)) {}

Pusher::~Pusher() = default;

uint64_t Pusher::requests() const {
  return impl_->client.requests();
}
uint64_t Pusher::retries() const {
  return impl_->client.retries();
}
RegistryClient& Pusher::client() {
  return impl_->client;
}
Status Pusher::PushBlobStream(const std::string& repo, const index::Descriptor& d,
                              const std::function<Result<size_t>(std::span<uint8_t>)>& source) {
  return impl_->PushBlobStream(repo, d, source);
}

void Pusher::Push(std::vector<PushItem>& items) {
  RunImageJobs(items, impl_->options.jobs, counters_, [&](PushItem& item) {
    return impl_->PushOne(item).WithContext("push " + item.source.ToString() + " to " + item.dest.ToString());
  });
}

}  // namespace silo::transfer
