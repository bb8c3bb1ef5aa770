// A client of the OCI Distribution API: manifests and blobs, with the bearer-token flow
// (realm, service, scope; tokens cached per scope until expiry), basic auth, anonymous
// access, and retries with exponential backoff and jitter on connection errors, timeouts,
// 408, 429 and 5xx (honouring Retry-After). Thread-safe: one client per registry serves
// every thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "transfer/credentials.h"
#include "transfer/http.h"
#include "util/result.h"

namespace silo::transfer {

struct RegistryOptions {
  HttpOptions http;                        // TLS verification and CA file
  bool plain_http = false;                 // http:// instead of https:// (only when asked)
  int retries = 5;                         // further attempts after the first
  std::chrono::milliseconds backoff{250};  // first retry delay; doubles, with jitter
  std::chrono::seconds max_backoff{30};
  std::shared_ptr<const CredentialStore> credentials;  // may be null (anonymous)
};

struct FetchedManifest {
  std::string bytes;       // exactly as served
  std::string media_type;  // Content-Type
  std::string digest;      // sha256 of bytes (checked against the reference and header)
};

class RegistryClient {
 public:
  RegistryClient(std::string registry, RegistryOptions options);
  ~RegistryClient();

  const std::string& registry() const { return registry_; }

  // GET a manifest or index by tag or digest. NotFound when the registry does not know it;
  // Integrity when its bytes do not match the requested digest.
  Result<FetchedManifest> GetManifest(const std::string& repo, const std::string& reference);

  // Streams blob `digest` (of `size` bytes) from byte `offset` on to `sink`, resuming with
  // a Range request after a transient failure or a short response (or skipping what was
  // already delivered when the registry ignores Range). The sink sees every byte once, in
  // order; it checks the digest (a store writer does).
  Status FetchBlob(const std::string& repo, const std::string& digest, uint64_t size, uint64_t offset,
                   const std::function<Status(ByteSpan)>& sink);

  uint64_t bytes_fetched() const { return bytes_fetched_.load(); }
  uint64_t requests() const { return requests_.load(); }
  // Requests sent again after a transient failure.
  uint64_t retries() const { return retries_.load(); }

 private:
  struct Auth;
  // Sends a request with auth and retries; `prepare` (optional) adjusts it before each
  // attempt (e.g. the Range start).
  Result<HttpResponse> Send(HttpRequest request, const std::string& scope,
                            const std::function<void(HttpRequest&)>& prepare = nullptr);
  Result<std::string> AuthHeader(const std::string& scope);
  Status LearnChallenge(const std::string& www_authenticate);
  std::string Url(const std::string& path) const;

  std::string registry_;
  std::string host_;  // where requests go (registry-1.docker.io for docker.io)
  RegistryOptions options_;
  HttpClient http_;
  std::unique_ptr<Auth> auth_;
  std::atomic<uint64_t> bytes_fetched_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> retries_{0};
};

// The message of a registry's JSON error body ({"errors":[{"code","message"}]}), or a
// short excerpt of the body.
std::string RegistryErrorMessage(const HttpResponse& response);

}  // namespace silo::transfer
