#include "transfer/server/upstream.h"

#include <algorithm>
#include <cctype>

namespace silo::server {

Result<UpstreamSpec> ParseUpstreamSpec(std::string_view text) {
  UpstreamSpec spec;
  size_t eq = text.find('=');
  spec.registry = std::string(text.substr(0, eq));
  std::string where = "--upstream \"" + std::string(text) + "\": ";
  auto bad_host = [](std::string_view h) {
    return h.empty() || std::any_of(h.begin(), h.end(), [](char c) {
             return !(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '[' ||
                      c == ']');
           });
  };
  if (bad_host(spec.registry)) {
    return Status::InvalidArgument(where + "expected REGISTRY[=URL], a registry such as docker.io or 127.0.0.1:5001");
  }
  if (eq == std::string_view::npos) return spec;
  std::string_view url = text.substr(eq + 1);
  std::string_view host;
  if (url.starts_with("http://")) {
    host = url.substr(7);
  } else if (url.starts_with("https://")) {
    host = url.substr(8);
  } else {
    return Status::InvalidArgument(where + "the URL must start with http:// or https://");
  }
  while (host.ends_with('/')) host.remove_suffix(1);
  if (bad_host(host)) return Status::InvalidArgument(where + "the URL must be http(s)://HOST[:PORT] without a path");
  spec.endpoint = std::string(url.substr(0, url.find("://") + 3)) + std::string(host);
  return spec;
}

void Upstreams::Add(const UpstreamSpec& spec, transfer::RegistryOptions options) {
  if (!spec.endpoint.empty()) {
    options.endpoint = spec.endpoint;
    options.plain_http = spec.endpoint.starts_with("http://");
  }
  transfer::RegistryOptions check = options;
  check.retries = 0;
  check.http.connect_timeout_s = std::min<long>(check.http.connect_timeout_s, 5);
  check.http.low_speed_time_s = std::min<long>(check.http.low_speed_time_s, 10);
  clients_[spec.registry] = std::make_unique<Clients>(spec.registry, options, check);
}

Upstreams::Clients* Upstreams::Find(std::string_view registry) const {
  auto it = clients_.find(registry);
  return it == clients_.end() ? nullptr : it->second.get();
}

}  // namespace silo::server
