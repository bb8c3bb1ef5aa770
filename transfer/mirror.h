// Registry to registry through the store (FastSync's mirror): each image's destination is
// checked first (HEAD by tag or digest, compared with the source's digest), so an image
// already there is neither pulled nor pushed; the others are pulled into the store, each
// blob streamed to the destination while it is stored, and each image pushed (manifests,
// blobs the store already had) as soon as its pull ends, -j images at a time. A release
// mode mirrors an OpenShift release image and every component it names.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "index/reference.h"
#include "store/store.h"
#include "transfer/pull.h"
#include "transfer/push.h"

namespace silo::transfer {

struct MirrorOptions {
  PullOptions pull;  // platforms, jobs, source registries' TLS and credentials
  PushOptions push;  // destination side (same platforms)
  PushDestination dest;
};

struct MirrorItem {
  std::string input;
  index::Reference source;
  index::Reference dest;
  Status status;
  std::string digest;       // what the destination serves now
  bool skipped = false;     // the destination already had it
  bool dest_lacks = false;  // the check found the destination without it (no second HEAD)
  bool rebuilt = false;
  std::vector<std::string> warnings;
};

class Mirrorer {
 public:
  Mirrorer(store::Store& store, MirrorOptions options);
  ~Mirrorer();

  // Mirrors every item (source set; dest is filled in).
  void Mirror(std::vector<MirrorItem>& items);
  // Release mode: mirrors `release` (a reference), then every component it names.
  // Returns the items (the release first).
  std::vector<MirrorItem> MirrorRelease(const index::Reference& release, const std::string& input);

  const PullCounters& pull_counters() const { return puller_.counters(); }
  const PushCounters& push_counters() const { return pusher_.counters(); }
  uint64_t requests() const;
  uint64_t images_skipped() const { return skipped_.load(); }

 private:
  // The source digest (HEAD at the source) and whether the destination serves it.
  Status Check(MirrorItem& item);
  // Pulls one image the destination lacks (blobs teed to the destination), then pushes it.
  void MirrorOne(MirrorItem& item);
  RegistryClient& SourceClient(const std::string& registry);

  store::Store& store_;
  MirrorOptions options_;
  Puller puller_;
  Pusher pusher_;
  mutable std::mutex clients_mu_;
  std::map<std::string, std::unique_ptr<RegistryClient>> sources_;
  std::atomic<uint64_t> skipped_{0};
};

}  // namespace silo::transfer
