#include "transfer/mirror.h"

#include <algorithm>
#include <thread>

#include "index/image.h"
#include "transfer/release.h"
#include "util/interrupt.h"

namespace silo::transfer {

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
  // 2. Pull what the destination lacks.
  std::vector<PullItem> pulls;
  std::vector<MirrorItem*> todo;
  for (auto& item : items) {
    if (!item.status.ok() || item.skipped) continue;
    if (Interrupted()) {
      item.status = Status::Interrupted("not started: interrupted");
      continue;
    }
    pulls.push_back({item.input, item.source, Status::Ok(), "", {}, {}, {}});
    todo.push_back(&item);
  }
  puller_.Pull(pulls);
  // 3. Push what was pulled.
  std::vector<PushItem> pushes;
  std::vector<MirrorItem*> pushed;
  for (size_t i = 0; i < todo.size(); ++i) {
    MirrorItem& item = *todo[i];
    for (auto& w : pulls[i].warnings) item.warnings.push_back(w);
    if (!pulls[i].status.ok()) {
      item.status = pulls[i].status;
      continue;
    }
    auto top = store::Digest::Parse(pulls[i].digest);
    if (!top.ok()) {
      item.status = top.status();
      continue;
    }
    PushItem p;
    p.input = item.input;
    p.source = item.source;
    p.top = *top;
    p.dest = item.dest;
    pushes.push_back(std::move(p));
    pushed.push_back(&item);
  }
  pusher_.Push(pushes);
  for (size_t i = 0; i < pushes.size(); ++i) {
    MirrorItem& item = *pushed[i];
    item.status = pushes[i].status;
    item.digest = pushes[i].digest;
    item.rebuilt = pushes[i].rebuilt;
    for (auto& w : pushes[i].warnings) item.warnings.push_back(w);
  }
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
