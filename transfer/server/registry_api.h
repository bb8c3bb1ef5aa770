// The OCI Distribution API served from the store under /v2/: manifests by tag and digest,
// blobs (with Range), tags list and catalog with paging, blob uploads (monolithic,
// chunked, cross-repository mount), manifest PUT, DELETE of manifests and tags, and the
// referrers API. Errors in the spec's JSON form ({"errors":[{"code":...}]}).
//
// Naming: repository names map to image refs as repo_map.h describes. Blobs and
// manifests by digest come from the whole store (one content pool: a blob pushed or
// pulled for one repository is there for every other, so a mount always succeeds when
// the blob exists). A manifest pushed by tag sets the tag's ref; one pushed by digest sets
// "image/<registry>/<repo>@<digest>" so it stays until deleted. A manifest links to its
// config, layers or children (gc keeps them). Referrers are indexed in the store's index
// space "referrers" (subject digest + referrer digest -> descriptor JSON); manifest media
// types in "mediatype".
//
// Thread-safe: handlers run concurrently on the server's pool.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "store/store.h"
#include "transfer/server/router.h"

namespace silo::server {

class ProxyCache;

// Index space of manifest media types as pushed or fetched (manifest digest -> type).
inline constexpr std::string_view kMediaTypeIndex = "mediatype";

struct RegistryApiOptions {
  // Registry part of the refs for names without one (see repo_map.h).
  std::string default_registry = "localhost";
  // Refuse pushes and deletes (405 UNSUPPORTED).
  bool read_only = false;
  // Upload sessions idle this long are dropped.
  std::chrono::seconds upload_expiry{3600};
  // Catalog and tag lists return at most this many entries per page.
  size_t max_page = 10000;
  // The pull-through cache (proxy_cache.h), or null: misses in repositories whose registry
  // is an upstream are filled through it. Not owned; must outlive the API.
  ProxyCache* proxy = nullptr;
};

class RegistryApi {
 public:
  // `store` must outlive the API and every response it returned.
  RegistryApi(store::Store& store, RegistryApiOptions options);
  ~RegistryApi();

  // Registers the /v2/ handler.
  void Register(Router& router);
  // Prometheus lines: uploads in progress, pushes and mounts counted.
  std::string MetricsText() const;

  // One request (exposed for tests that skip HTTP).
  Response Handle(Request& req);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace silo::server
