// Pushing images from the store into a registry: destination naming, blobs the destination
// has skipped (HEAD), cross-repository mounts of blobs this push already put elsewhere in the
// same registry, monolithic or chunked uploads streamed from the store, manifests byte-exact
// (children before their index) so digests are preserved, and platform-filtered indexes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "index/image.h"
#include "index/manifest.h"
#include "index/reference.h"
#include "store/store.h"
#include "transfer/registry_client.h"

namespace silo::transfer {

// Where images go: a registry and an optional repository prefix ("dest:5000/mirror").
struct PushDestination {
  std::string registry;  // "dest:5000"
  std::string prefix;    // "mirror" or empty
};
// Parses "REGISTRY[/PREFIX]"; the error names the input.
Result<PushDestination> ParsePushDestination(std::string_view text);
// The destination reference of a source image: its repository (without the source
// registry) under the prefix, same tag and digest. "src/team/app:1.0" to "dest:5000/mirror"
// gives "dest:5000/mirror/team/app:1.0".
index::Reference DestinationReference(const index::Reference& source, const PushDestination& dest);

struct PushOptions {
  std::vector<index::Platform> platforms;  // empty: every platform the store holds
  int jobs = 4;                            // images at a time
  int blob_jobs = 4;                       // blobs at a time per image
  RegistryOptions registry;                // TLS, credentials, retries
  bool plain_http = false;                 // http:// to the destination
  RegistryClient::UploadOptions upload;    // monolithic / chunk sizes
};

struct PushCounters {
  std::atomic<uint64_t> images_total{0}, images_done{0}, images_failed{0}, images_active{0}, images_present{0};
  std::atomic<uint64_t> blobs_uploaded{0}, blobs_present{0}, blobs_mounted{0}, blobs_shared{0};
  std::atomic<uint64_t> manifests_put{0}, manifests_present{0};
  std::atomic<uint64_t> bytes_uploaded{0}, bytes_planned{0};
};

struct PushItem {
  std::string input;        // as given (goes to the failed list)
  index::Reference source;  // the image in the store (its ref)
  store::Digest top;        // the manifest or index the ref points at
  index::Reference dest;    // where it goes
  Status status;
  std::string digest;  // the digest pushed (differs from top's when an index was rebuilt)
  bool rebuilt = false;
  bool already_present = false;  // the destination tag already had this digest
  // Set by a caller that has just seen dest not serving `top` (mirror's check): the push
  // neither asks again nor HEADs the top manifest before its PUT.
  bool dest_lacks_top = false;
  std::vector<std::string> warnings;
};

class Pusher {
 public:
  Pusher(store::Store& store, PushDestination dest, PushOptions options);
  ~Pusher();

  // Pushes every item (source, top and dest set); fills in status, digest and flags.
  void Push(std::vector<PushItem>& items);

  // Puts one blob into `repo` (a destination repository) from `source`, a stream of the
  // blob's d.size bytes that can be read only once (mirror streams a blob being pulled).
  // Nothing is sent when the repository has it (known to this push, or HEAD), or when it
  // mounts from another repository this push put it in; a blob being pushed by another
  // image right now is left to that push. One upload session, no retry (the stream cannot
  // be replayed): on failure the caller pushes it from the store later. The registry checks
  // the digest. Thread-safe.
  Status PushBlobStream(const std::string& repo, const index::Descriptor& d,
                        const std::function<Result<size_t>(std::span<uint8_t>)>& source);

  const PushCounters& counters() const { return counters_; }
  uint64_t requests() const;
  uint64_t retries() const;
  RegistryClient& client();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  PushCounters counters_;
};

// The index JSON listing `children` (media type `media_type`), for a platform-filtered
// push whose registry refuses the sparse original. Annotations of the entries are dropped.
std::string BuildIndex(std::string_view media_type, const std::vector<index::Descriptor>& children);

}  // namespace silo::transfer
