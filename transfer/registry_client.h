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
#include <optional>
#include <span>
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
  // Where requests go instead of the registry's own host: "http://HOST:PORT" or
  // "https://HOST[:PORT]" (a pull-through cache's upstream mirror). Empty: the registry.
  std::string endpoint;
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

  // --- Write side (push). Push requests ask for a "pull,push" token on `repo`. ---

  // HEAD a blob: its size when the repository has it, nullopt when not. `for_push` asks
  // for a pull,push token, else pull (a read-only client such as a pull-through cache).
  Result<std::optional<uint64_t>> BlobSize(const std::string& repo, const std::string& digest, bool for_push = true);
  // HEAD a manifest by tag or digest: the digest the registry serves for it (its
  // Docker-Content-Digest header), nullopt when the repository does not know it.
  // `for_push` asks for a pull,push token (one token serves the whole push), else pull.
  Result<std::optional<std::string>> ManifestDigest(const std::string& repo, const std::string& reference,
                                                    bool for_push = true);
  // Cross-repository mount of `digest` from `from` (same registry) into `repo`. True when
  // mounted (201); false when the registry would rather have the bytes (202; the upload
  // session it opened is abandoned).
  Result<bool> MountBlob(const std::string& repo, const std::string& digest, const std::string& from);

  // Opens the blob's bytes from the start; called again for each attempt.
  using BlobOpener = std::function<Result<std::function<Result<size_t>(std::span<uint8_t>)>>()>;
  struct UploadOptions {
    uint64_t monolithic_max = 32ull << 20;  // blobs up to this size go up in one PUT
    uint64_t chunk_size = 32ull << 20;      // larger ones in PATCH chunks of this size
  };
  // Uploads blob `digest` of `size` bytes into `repo`, streaming what `open` yields: one
  // POST then one PUT for small blobs, POST, PATCH chunks with Content-Range, then PUT for
  // large ones. A transient failure restarts the upload in a new session (up to
  // `retries` times). The registry checks the digest when the upload completes.
  Status UploadBlob(const std::string& repo, const std::string& digest, uint64_t size, const BlobOpener& open,
                    const UploadOptions& options);
  // PUTs a manifest or index with its exact bytes and media type under `reference` (a tag
  // or its digest). Integrity error when the registry records another digest.
  Status PutManifest(const std::string& repo, const std::string& reference, const std::string& bytes,
                     const std::string& media_type);

  uint64_t bytes_uploaded() const { return bytes_uploaded_.load(); }
  uint64_t bytes_fetched() const { return bytes_fetched_.load(); }
  uint64_t requests() const { return requests_.load(); }
  // Requests sent again after a transient failure.
  uint64_t retries() const { return retries_.load(); }

 private:
  struct Auth;
  // Sends a request with auth and retries; `prepare` (optional) adjusts it before each
  // attempt (e.g. the Range start).
  // `scope` may name several scopes separated by spaces. `retries` < 0: the options'.
  Result<HttpResponse> Send(HttpRequest request, const std::string& scope,
                            const std::function<void(HttpRequest&)>& prepare = nullptr, int retries = -1);
  Result<std::string> AuthHeader(const std::string& scope);
  Status LearnChallenge(const std::string& www_authenticate);
  std::string Url(const std::string& path) const;

  std::string registry_;
  std::string host_;  // where requests go (registry-1.docker.io for docker.io)
  RegistryOptions options_;
  HttpClient http_;
  std::unique_ptr<Auth> auth_;
  Status UploadOnce(const std::string& repo, const std::string& digest, uint64_t size, const BlobOpener& open,
                    const UploadOptions& options);
  // An upload Location made absolute.
  std::string AbsoluteLocation(const std::string& location) const;

  std::atomic<uint64_t> bytes_fetched_{0};
  std::atomic<uint64_t> bytes_uploaded_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> retries_{0};
};

// The message of a registry's JSON error body ({"errors":[{"code","message"}]}), or a
// short excerpt of the body.
std::string RegistryErrorMessage(const HttpResponse& response);

}  // namespace silo::transfer
