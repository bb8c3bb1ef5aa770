#include "transfer/mirror.h"

#include <algorithm>
#include <thread>

#include "index/image.h"
#include "transfer/blob_pipe.h"
#include "transfer/release.h"
#include "util/interrupt.h"

namespace silo::transfer {
namespace {

// Bytes buffered between a blob's download and its upload.
constexpr size_t kTeeBytes = 2 << 20;

// Streams a blob being pulled into the destination repository (Pusher::PushBlobStream) on a
// thread of its own, fed through a bounded pipe. When the upload fails or is not needed
// the pipe drops the rest and the pull goes on; the image's push then finds the blob at
// the destination, or sends it from the store.
class UploadTee : public BlobTee {
 public:
  UploadTee(Pusher& pusher, std::string repo, index::Descriptor d) : pipe_(kTeeBytes) {
    thread_ = std::thread([this, &pusher, repo = std::move(repo), d = std::move(d)] {
      pusher.PushBlobStream(repo, d, [this](std::span<uint8_t> buf) { return pipe_.Read(buf); }).IgnoreError();
      pipe_.CloseRead();
    });
  }
  ~UploadTee() override { Finish(Status::Interrupted("the blob's download ended")); }
  void Write(ByteSpan data) override { pipe_.Write(data); }
  void Finish(Status fetch_status) override {
    pipe_.CloseWrite(std::move(fetch_status));
    if (thread_.joinable()) thread_.join();
  }

 private:
  BlobPipe pipe_;
  std::thread thread_;
};

}  // namespace

Mirrorer::Mirrorer(store::Store& store, MirrorOptions options)
    : store_(store),
      options_(std::move(options)),
      puller_(store, options_.pull),
      pusher_(store, options_.dest, options_.push) {}

Mirrorer::~Mirrorer() = default;

uint64_t Mirrorer::requests() const {
  std::lock_guard lock(clients_mu_);
  uint64_t n = puller_.requests() + pusher_.requests();
  for (const auto& [name, c] : sources_) n += c->requests();
  return n;
}

RegistryClient& Mirrorer::SourceClient(const std::string& registry) {
  std::lock_guard lock(clients_mu_);
  auto& c = sources_[registry];
  if (!c) {
    RegistryOptions o = options_.pull.registry;
    const auto& plain = options_.pull.plain_http_registries;
    o.plain_http = o.plain_http || std::find(plain.begin(), plain.end(), registry) != plain.end();
    c = std::make_unique<RegistryClient>(registry, o);
  }
  return *c;
}

Status Mirrorer::Check(MirrorItem& item) {
  item.dest = DestinationReference(item.source, options_.dest);
  std::string source_digest = item.source.digest;
  if (source_digest.empty()) {
    SILO_ASSIGN_OR_RETURN(
        auto d,
        SourceClient(item.source.registry).ManifestDigest(item.source.repository, item.source.tag, /*for_push=*/false));
    if (!d) return Status::NotFound(item.source.ToString() + ": manifest unknown at the source");
    source_digest = *d;
  }
  // A platform filter may rebuild the index, so the digests would differ: no shortcut then.
  if (!options_.push.platforms.empty()) return Status::Ok();
  SILO_ASSIGN_OR_RETURN(auto there,
                        pusher_.client().ManifestDigest(item.dest.repository, item.dest.Identifier(), true));
  if (there && *there == source_digest) {
    item.skipped = true;
    item.digest = source_digest;
    skipped_++;
  } else {
    item.dest_lacks = true;
  }
  return Status::Ok();
}

void Mirrorer::Mirror(std::vector<MirrorItem>& items) {
  // 1. Check every destination (in parallel: these are small requests).
  std::atomic<size_t> next{0};
  auto checker = [&] {
    for (size_t i; (i = next++) < items.size();) {
      if (Interrupted()) return;
      items[i].status = Check(items[i]).WithContext("mirror " + items[i].source.ToString());
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::clamp(options_.pull.jobs * 2, 1, 32); ++t) threads.emplace_back(checker);
  for (auto& t : threads) t.join();
  threads.clear();
  // 2. Each image the destination lacks, -j at a time: pulled (its blobs streamed to the
  // destination while they are stored), then pushed at once (manifests, and the blobs the
  // store already had).
  std::vector<MirrorItem*> todo;
  for (auto& item : items) {
    if (item.status.ok() && !item.skipped) todo.push_back(&item);
  }
  next = 0;
  auto worker = [&] {
    for (size_t i; (i = next++) < todo.size();) MirrorOne(*todo[i]);
  };
  size_t n = std::min<size_t>(static_cast<size_t>(std::clamp(options_.pull.jobs, 1, 64)), todo.size());
  for (size_t t = 0; t < n; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
}

void Mirrorer::MirrorOne(MirrorItem& item) {
  if (Interrupted()) {
    item.status = Status::Interrupted("not started: interrupted");
    return;
  }
  std::vector<PullItem> pull(1);
  pull[0].input = item.input;
  pull[0].reference = item.source;
  pull[0].tee = [this, repo = item.dest.repository](const index::Descriptor& d) -> std::unique_ptr<BlobTee> {
    return std::make_unique<UploadTee>(pusher_, repo, d);
  };
  puller_.Pull(pull);
  for (auto& w : pull[0].warnings) item.warnings.push_back(w);
  if (!pull[0].status.ok()) {
    item.status = pull[0].status;
    return;
  }
  auto top = store::Digest::Parse(pull[0].digest);
  if (!top.ok()) {
    item.status = top.status();
    return;
  }
  std::vector<PushItem> push(1);
  push[0].input = item.input;
  push[0].source = item.source;
  push[0].top = *top;
  push[0].dest = item.dest;
  // (Had the source tag moved since to what the destination serves, the PUT is repeated:
  // harmless.)
  push[0].dest_lacks_top = item.dest_lacks;
  pusher_.Push(push);
  item.status = push[0].status;
  item.digest = push[0].digest;
  item.rebuilt = push[0].rebuilt;
  for (auto& w : push[0].warnings) item.warnings.push_back(w);
}

std::vector<MirrorItem> Mirrorer::MirrorRelease(const index::Reference& release, const std::string& input) {
  std::vector<MirrorItem> items(1);
  items[0].input = input;
  items[0].source = release;
  // The release image itself always comes into the store: its layers name the components.
  std::vector<PullItem> pull{{input, release, Status::Ok(), "", {}, {}, {}}};
  puller_.Pull(pull);
  if (!pull[0].status.ok()) {
    items[0].status = pull[0].status;
    return items;
  }
  auto top = store::Digest::Parse(pull[0].digest);
  auto components = top.ok() ? ReleaseComponents(store_, *top) : Result<std::vector<std::string>>(top.status());
  if (!components.ok()) {
    items[0].status = components.status().WithContext("release " + input);
    return items;
  }
  for (const auto& c : *components) {
    MirrorItem m;
    m.input = c;
    auto r = index::ParseReference(c);
    if (!r.ok()) {
      m.status = r.status();
    } else {
      m.source = *r;
    }
    items.push_back(std::move(m));
  }
  std::vector<MirrorItem> rest;
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].status.ok()) rest.push_back(items[i]);
  }
  Mirror(rest);
  for (auto& item : items) {
    if (!item.status.ok()) rest.push_back(std::move(item));
  }
  return rest;
}

}  // namespace silo::transfer
