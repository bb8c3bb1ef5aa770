// Pulling images from registries into the store: references resolved to manifests,
// platform filtering, blobs fetched in parallel (a blob shared by images being pulled at
// the same moment is fetched once), resumable blob downloads, and a ref per tag.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "index/image.h"
#include "index/manifest.h"
#include "index/reference.h"
#include "store/store.h"
#include "transfer/registry_client.h"

namespace silo::transfer {

struct PullOptions {
  std::vector<index::Platform> platforms;          // empty: every platform of an index
  bool fail_without_platform = false;              // an image with none of them fails (else warns)
  int jobs = 4;                                    // images at a time
  int blob_jobs = 4;                               // blobs at a time per image
  bool dry_run = false;                            // resolve manifests, fetch no blob, store nothing
  RegistryOptions registry;                        // TLS, credentials, retries for every registry
  std::vector<std::string> plain_http_registries;  // registries spoken to over http://
};

// Live counters, readable from any thread while a pull runs.
struct PullCounters {
  std::atomic<uint64_t> images_total{0}, images_done{0}, images_failed{0}, images_active{0};
  std::atomic<uint64_t> blobs_fetched{0}, blobs_present{0}, blobs_shared{0};
  std::atomic<uint64_t> bytes_fetched{0}, bytes_planned{0};
};

// Sees the bytes of a blob as they are fetched, in order, each byte once (mirror streams
// them to the destination at the same time). Write never fails the fetch; Finish is called
// once, after the blob is committed to the store (ok) or when the fetch failed (the error).
class BlobTee {
 public:
  virtual ~BlobTee() = default;
  virtual void Write(ByteSpan data) = 0;
  virtual void Finish(Status fetch_status) = 0;
};

struct PullItem {
  std::string input;           // as given (goes to the failed list)
  index::Reference reference;  // parsed
  Status status;
  std::string digest;                  // of the top-level manifest or index
  std::vector<std::string> platforms;  // pulled platforms ("linux/amd64"), empty for single images without one
  std::vector<std::string> warnings;
  // --dry-run: blobs that would be fetched ("sha256:… size").
  std::vector<std::string> would_fetch;
  // Optional: a tee for each blob this item fetches from its first byte (null: none). A
  // blob already stored, shared with another image's download or resumed from a
  // checkpoint is not teed.
  std::function<std::unique_ptr<BlobTee>(const index::Descriptor&)> tee = nullptr;
  // Set by Puller::SkipUpToDate: the store already held everything (nothing was written).
  bool up_to_date = false;
  // The top-level manifest SkipUpToDate fetched; Pull uses it instead of a second GET.
  std::optional<FetchedManifest> resolved = std::nullopt;
};

class Puller {
 public:
  Puller(store::Store& store, PullOptions options);
  ~Puller();

  // Pulls every item (its `reference` set); fills in status, digest, platforms and warnings.
  // Thread-safe counters in counters() show progress meanwhile.
  void Pull(std::vector<PullItem>& items);

  // The no-op check, which only reads the store (it may be open read-only): resolves each
  // item's reference with one manifest GET and marks it up_to_date (status Ok, digest and
  // platforms filled in) when the store already holds what Pull would store: the tag's ref
  // names the digest the registry serves now, and every selected manifest and blob is
  // present. A failed GET sets the item's status (Pull need not try again); any other
  // item keeps its manifest in `resolved` for Pull. Returns how many are up to date.
  size_t SkipUpToDate(std::vector<PullItem>& items);

  // Goes on with another handle of the same store (reopened for writing after
  // SkipUpToDate found work). Not while Pull or SkipUpToDate runs; `store` must outlive
  // the Puller's use of it.
  void UseStore(store::Store& store);

  const PullCounters& counters() const { return counters_; }
  // Requests, and requests retried after transient failures, over all registries.
  uint64_t requests() const;
  uint64_t retries() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  PullCounters counters_;
};

}  // namespace silo::transfer
