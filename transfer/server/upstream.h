// The upstream registries of a pull-through cache (`silo serve --upstream`): which served
// registries are filled from where, and the registry clients that do it.
//
//   --upstream docker.io=http://127.0.0.1:5001   docker.io's images, fetched from that URL
//   --upstream 127.0.0.1:5001                     that registry by its own name (https unless
//                                                 --plain-http names it)
//
// Thread-safe once built: lookups and the clients serve every thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "transfer/registry_client.h"
#include "util/result.h"

namespace silo::server {

struct UpstreamSpec {
  std::string registry;  // as refs name it: "docker.io", "127.0.0.1:5001"
  std::string endpoint;  // "http://127.0.0.1:5001"; empty: the registry itself
};

// Parses "REGISTRY[=URL]". InvalidArgument naming the input for an empty or malformed
// registry, or a URL that is not http(s)://HOST[:PORT] without a path.
Result<UpstreamSpec> ParseUpstreamSpec(std::string_view text);

class Upstreams {
 public:
  // The two clients of one upstream: `fetch` with the configured retries (manifests and
  // blobs the cache lacks), `check` without retries and with short timeouts (freshness
  // checks of cached tags, which fall back to the cached copy at once).
  struct Clients {
    Clients(const std::string& registry, const transfer::RegistryOptions& fetch_options,
            const transfer::RegistryOptions& check_options)
        : fetch(registry, fetch_options), check(registry, check_options) {}
    transfer::RegistryClient fetch;
    transfer::RegistryClient check;
  };

  // Adds `spec` with `options` (TLS, credentials, retries; its endpoint is set from the
  // spec). A second spec for the same registry replaces the first. Call before serving.
  void Add(const UpstreamSpec& spec, transfer::RegistryOptions options);

  // The clients for `registry`, or null when it is not an upstream. The pointer stays
  // valid as long as this object.
  Clients* Find(std::string_view registry) const;
  bool empty() const { return clients_.empty(); }

 private:
  std::map<std::string, std::unique_ptr<Clients>, std::less<>> clients_;
};

}  // namespace silo::server
