#include "transfer/registry_client.h"

#include <simdjson.h>

#include <map>
#include <random>
#include <thread>

#include "index/manifest.h"
#include "store/digest.h"
#include "util/interrupt.h"

namespace silo::transfer {
namespace {

using Clock = std::chrono::steady_clock;

bool Retryable(long status) {
  return status == 408 || status == 429 || status >= 500;
}

// Parses `Bearer realm="…",service="…",scope="…"` into its scheme and parameters.
std::pair<std::string, std::map<std::string, std::string>> ParseChallenge(std::string_view h) {
  std::map<std::string, std::string> params;
  auto space = h.find(' ');
  std::string scheme(h.substr(0, space));
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (space == std::string_view::npos) return {scheme, params};
  std::string_view rest = h.substr(space + 1);
  while (!rest.empty()) {
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == ',')) rest.remove_prefix(1);
    auto eq = rest.find('=');
    if (eq == std::string_view::npos) break;
    std::string key(rest.substr(0, eq));
    for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    rest.remove_prefix(eq + 1);
    std::string value;
    if (!rest.empty() && rest.front() == '"') {
      rest.remove_prefix(1);
      while (!rest.empty() && rest.front() != '"') {
        if (rest.front() == '\\' && rest.size() > 1) rest.remove_prefix(1);
        value.push_back(rest.front());
        rest.remove_prefix(1);
      }
      if (!rest.empty()) rest.remove_prefix(1);
    } else {
      auto comma = rest.find(',');
      value = std::string(rest.substr(0, comma));
      rest.remove_prefix(comma == std::string_view::npos ? rest.size() : comma);
    }
    params[key] = value;
  }
  return {scheme, params};
}

std::string UrlEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// Retry-After in seconds (delta form; an HTTP date counts as a few seconds).
std::optional<std::chrono::milliseconds> RetryAfter(const HttpResponse& r) {
  std::string v = r.header("retry-after");
  if (v.empty()) return std::nullopt;
  char* end = nullptr;
  long secs = std::strtol(v.c_str(), &end, 10);
  if (end != v.c_str() && secs >= 0) return std::chrono::seconds(std::min(secs, 120L));
  return std::chrono::seconds(5);
}

void SleepInterruptibly(std::chrono::milliseconds d) {
  auto until = Clock::now() + d;
  while (Clock::now() < until && !Interrupted()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

}  // namespace

std::string RegistryErrorMessage(const HttpResponse& r) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(r.body);
  simdjson::dom::element root;
  simdjson::dom::array errors;
  if (parser.parse(padded).get(root) == simdjson::SUCCESS && root["errors"].get(errors) == simdjson::SUCCESS) {
    for (auto e : errors) {
      std::string_view code, message;
      if (e["code"].get(code) != simdjson::SUCCESS) code = "error";
      if (e["message"].get(message) != simdjson::SUCCESS) message = {};
      return std::string(code) + (message.empty() ? "" : ": " + std::string(message));
    }
  }
  std::string body = r.body.substr(0, 200);
  for (auto& c : body) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return body;
}

struct RegistryClient::Auth {
  std::mutex mu;
  enum class Scheme { kUnknown, kNone, kBasic, kBearer } scheme = Scheme::kUnknown;
  std::string realm, service;
  struct Token {
    std::string value;
    Clock::time_point expires;
  };
  std::map<std::string, Token> tokens;  // by scope
  std::optional<Credential> credential;
  bool credential_loaded = false;
};

RegistryClient::RegistryClient(std::string registry, RegistryOptions options)
    : registry_(std::move(registry)),
      options_(std::move(options)),
      http_(options_.http),
      auth_(std::make_unique<Auth>()) {
  host_ = registry_ == "docker.io" ? "registry-1.docker.io" : registry_;
}

RegistryClient::~RegistryClient() = default;

std::string RegistryClient::Url(const std::string& path) const {
  if (!options_.endpoint.empty()) return options_.endpoint + path;
  return (options_.plain_http ? "http://" : "https://") + host_ + path;
}

Status RegistryClient::LearnChallenge(const std::string& www_authenticate) {
  auto [scheme, params] = ParseChallenge(www_authenticate);
  std::lock_guard lock(auth_->mu);
  if (scheme == "bearer") {
    if (params["realm"].empty()) return Status::Network(registry_ + ": bearer challenge without a realm");
    auth_->scheme = Auth::Scheme::kBearer;
    auth_->realm = params["realm"];
    auth_->service = params["service"];
  } else if (scheme == "basic") {
    auth_->scheme = Auth::Scheme::kBasic;
  } else {
    return Status::Unsupported(registry_ + ": unsupported authentication scheme '" + scheme + "'");
  }
  return Status::Ok();
}

Result<std::string> RegistryClient::AuthHeader(const std::string& scope) {
  std::unique_lock lock(auth_->mu);
  if (!auth_->credential_loaded) {
    if (options_.credentials) {
      auto c = options_.credentials->Lookup(registry_);
      if (!c.ok()) return std::move(c).take_status();  // asked again next time
      auth_->credential = *c;
    }
    auth_->credential_loaded = true;
  }
  const auto& cred = auth_->credential;
  switch (auth_->scheme) {
    case Auth::Scheme::kUnknown:
    case Auth::Scheme::kNone:
      return std::string();
    case Auth::Scheme::kBasic:
      if (!cred) return Status::Conflict(registry_ + ": the registry requires a login (no credentials found)");
      return "Authorization: Basic " + Base64Encode(cred->username + ":" + cred->password);
    case Auth::Scheme::kBearer:
      break;
  }
  if (auto it = auth_->tokens.find(scope); it != auth_->tokens.end() && Clock::now() < it->second.expires) {
    return "Authorization: Bearer " + it->second.value;
  }
  // Fetch a token for this scope (outside the lock: other scopes need not wait).
  std::string realm = auth_->realm, service = auth_->service;
  std::optional<Credential> c = cred;
  lock.unlock();
  HttpRequest req;
  // Several scopes (a push that mounts from another repository) go as repeated parameters.
  std::string scope_query;
  for (size_t start = 0; start < scope.size();) {
    size_t space = scope.find(' ', start);
    if (space == std::string::npos) space = scope.size();
    if (space > start) scope_query += "&scope=" + UrlEncode(scope.substr(start, space - start));
    start = space + 1;
  }
  std::string query = "?service=" + UrlEncode(service) + scope_query;
  if (c && !c->identity_token.empty()) {
    req.method = "POST";
    req.url = realm;
    req.headers.push_back("Content-Type: application/x-www-form-urlencoded");
    req.body = "grant_type=refresh_token&client_id=silo&service=" + UrlEncode(service) + scope_query +
               "&refresh_token=" + UrlEncode(c->identity_token);
  } else {
    req.url = realm + query;
    if (c) req.headers.push_back("Authorization: Basic " + Base64Encode(c->username + ":" + c->password));
  }
  HttpResponse resp;
  for (int attempt = 0;; ++attempt) {
    ++requests_;
    auto r = http_.Do(req);
    bool transient = !r.ok() ? r.status().code() == Code::kNetwork : Retryable(r->status);
    if (!transient || attempt >= options_.retries) {
      if (!r.ok()) return std::move(r).take_status().WithContext(registry_ + ": token");
      resp = std::move(*r);
      break;
    }
    SleepInterruptibly(options_.backoff * (1 << std::min(attempt, 6)));
  }
  if (resp.status == 401 || resp.status == 403) {
    return Status::Conflict(registry_ + ": authentication failed at " + realm + " (" + std::to_string(resp.status) +
                            (c ? "; check the credentials" : "; no credentials found for this registry") + ")");
  }
  if (resp.status != 200) {
    return Status::Network(registry_ + ": token endpoint " + realm + " answered " + std::to_string(resp.status));
  }
  simdjson::dom::parser parser;
  simdjson::padded_string padded(resp.body);
  simdjson::dom::element root;
  std::string_view token;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS ||
      (root["token"].get(token) != simdjson::SUCCESS && root["access_token"].get(token) != simdjson::SUCCESS)) {
    return Status::Network(registry_ + ": token endpoint " + realm + " sent no token");
  }
  int64_t expires_in = 60;
  if (root["expires_in"].get(expires_in) != simdjson::SUCCESS || expires_in < 10) expires_in = 60;
  lock.lock();
  auth_->tokens[scope] = {std::string(token), Clock::now() + std::chrono::seconds(expires_in - 5)};
  return "Authorization: Bearer " + std::string(token);
}

Result<HttpResponse> RegistryClient::Send(HttpRequest base, const std::string& scope,
                                          const std::function<void(HttpRequest&)>& prepare, int retries) {
  if (retries < 0) retries = options_.retries;
  bool answered_challenge = false;
  std::optional<std::mt19937> rng;  // seeded on the first retry (random_device costs a syscall)
  std::string last_problem;
  for (int attempt = 0;;) {
    if (Interrupted()) return Status::Interrupted(base.method + " " + base.url + ": interrupted");
    HttpRequest req = base;
    if (prepare) prepare(req);
    SILO_ASSIGN_OR_RETURN(std::string auth, AuthHeader(scope));
    if (!auth.empty()) req.headers.push_back(auth);
    ++requests_;
    auto r = http_.Do(req);
    std::optional<std::chrono::milliseconds> wait;
    if (r.ok() && r->status == 401 && !answered_challenge) {
      std::string challenge = r->header("www-authenticate");
      if (challenge.empty()) return Status::Conflict(registry_ + ": 401 without a challenge for " + req.url);
      SILO_TRY(LearnChallenge(challenge));
      {
        std::lock_guard lock(auth_->mu);
        auth_->tokens.erase(scope);
      }
      answered_challenge = true;
      continue;
    }
    if (r.ok() && !Retryable(r->status)) {
      if (r->status == 401 || r->status == 403) {
        return Status::Conflict(registry_ + ": access denied to " + req.url + " (" + RegistryErrorMessage(*r) + ")");
      }
      return r;
    }
    if (!r.ok() && r.status().code() != Code::kNetwork) return r;  // interrupted, sink error
    last_problem = r.ok() ? base.method + " " + base.url + ": HTTP " + std::to_string(r->status) : r.status().message();
    if (r.ok()) wait = RetryAfter(*r);
    if (attempt >= retries) {
      return Status::Network("giving up after " + std::to_string(attempt + 1) + " attempt(s): " + last_problem);
    }
    if (!wait) {
      auto base_ms = options_.backoff.count() * (1LL << std::min(attempt, 10));
      base_ms = std::min<long long>(base_ms, std::chrono::milliseconds(options_.max_backoff).count());
      std::uniform_real_distribution<double> jitter(0.5, 1.5);
      if (!rng) rng.emplace(std::random_device{}());
      wait = std::chrono::milliseconds(static_cast<long long>(static_cast<double>(base_ms) * jitter(*rng)));
    }
    SleepInterruptibly(*wait);
    ++attempt;
    ++retries_;
  }
}

Result<FetchedManifest> RegistryClient::GetManifest(const std::string& repo, const std::string& reference) {
  std::string ctx = registry_ + "/" + repo + (reference.starts_with("sha256:") ? "@" : ":") + reference;
  HttpRequest req;
  req.url = Url("/v2/" + repo + "/manifests/" + reference);
  req.headers.push_back("Accept: " + index::media::AcceptHeader());
  req.max_body = index::kMaxManifestSize;
  auto r = Send(req, "repository:" + repo + ":pull");
  if (!r.ok()) return std::move(r).take_status();
  if (r->status == 404) return Status::NotFound(ctx + ": manifest unknown (" + RegistryErrorMessage(*r) + ")");
  if (r->status != 200) {
    return Status::Network(ctx + ": registry answered " + std::to_string(r->status) + " (" + RegistryErrorMessage(*r) +
                           ")");
  }
  FetchedManifest m;
  m.bytes = std::move(r->body);
  m.media_type = r->header("content-type");
  m.digest = "sha256:" + ToHex(Sha256::Of(AsBytes(m.bytes)));
  if (reference.starts_with("sha256:") && reference != m.digest) {
    return Status::Integrity(ctx + ": manifest bytes have digest " + m.digest);
  }
  std::string header = r->header("docker-content-digest");
  if (!header.empty() && header.starts_with("sha256:") && header != m.digest) {
    return Status::Integrity(ctx + ": manifest bytes have digest " + m.digest + ", the registry says " + header);
  }
  bytes_fetched_ += m.bytes.size();
  return m;
}

Status RegistryClient::FetchBlob(const std::string& repo, const std::string& digest, uint64_t size, uint64_t offset,
                                 const std::function<Status(ByteSpan)>& sink) {
  std::string ctx = registry_ + "/" + repo + "@" + digest;
  if (offset >= size) return Status::Ok();  // a checkpoint already holds every byte
  uint64_t delivered = offset;              // bytes the sink has, across attempts
  uint64_t requested = 0;                   // Range start of the current attempt
  uint64_t stream_pos = 0;                  // position in the blob of the next byte received
  bool first = true;
  HttpRequest req;
  req.url = Url("/v2/" + repo + "/blobs/" + digest);
  req.on_body = [&](long status, ByteSpan data) -> Status {
    if (first) {
      // 206 continues where we asked; 200 (a registry ignoring Range) starts at 0.
      first = false;
      stream_pos = status == 206 ? requested : 0;
    }
    if (stream_pos < delivered) {
      uint64_t skip = std::min<uint64_t>(delivered - stream_pos, data.size());
      stream_pos += skip;
      data = data.subspan(skip);
      if (data.empty()) return Status::Ok();
    }
    stream_pos += data.size();
    delivered += data.size();
    bytes_fetched_ += data.size();
    return sink(data);
  };
  auto prepare = [&](HttpRequest& r) {
    first = true;
    requested = delivered;
    r.range_start.reset();
    if (delivered > 0) r.range_start = delivered;
  };
  // A response that ends early without a transport error (a connection closed cleanly)
  // is retried too, from where it stopped.
  for (int round = 0;; ++round) {
    auto r = Send(req, "repository:" + repo + ":pull", prepare);
    if (!r.ok()) return std::move(r).take_status().WithContext(ctx);
    if (r->status == 404) return Status::NotFound(ctx + ": blob unknown (" + RegistryErrorMessage(*r) + ")");
    if (r->status == 416) return Status::Integrity(ctx + ": the registry has fewer bytes than the manifest says");
    if (r->status != 200 && r->status != 206) {
      return Status::Network(ctx + ": registry answered " + std::to_string(r->status) + " (" +
                             RegistryErrorMessage(*r) + ")");
    }
    if (delivered >= size) return Status::Ok();
    ++retries_;
    if (round >= options_.retries) {
      return Status::Network(ctx + ": the registry sent " + std::to_string(delivered) + " of " + std::to_string(size) +
                             " bytes, " + std::to_string(round + 1) + " times");
    }
  }
}

// --- Write side ---

namespace {

std::string PushScope(const std::string& repo) {
  return "repository:" + repo + ":pull,push";
}

std::string WithQuery(const std::string& url, const std::string& param) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + param;
}

}  // namespace

std::string RegistryClient::AbsoluteLocation(const std::string& location) const {
  if (location.starts_with("http://") || location.starts_with("https://")) return location;
  return Url(location.starts_with("/") ? location : "/" + location);
}

Result<std::optional<uint64_t>> RegistryClient::BlobSize(const std::string& repo, const std::string& digest,
                                                         bool for_push) {
  HttpRequest req;
  req.method = "HEAD";
  req.url = Url("/v2/" + repo + "/blobs/" + digest);
  auto r = Send(req, for_push ? PushScope(repo) : "repository:" + repo + ":pull");
  if (!r.ok()) return std::move(r).take_status().WithContext(registry_ + "/" + repo + "@" + digest);
  if (r->status == 404) return std::optional<uint64_t>();
  if (r->status != 200) {
    return Status::Network(registry_ + "/" + repo + "@" + digest + ": HEAD answered " + std::to_string(r->status));
  }
  std::string length = r->header("content-length");
  return std::optional<uint64_t>(length.empty() ? 0 : std::strtoull(length.c_str(), nullptr, 10));
}

Result<std::optional<std::string>> RegistryClient::ManifestDigest(const std::string& repo, const std::string& reference,
                                                                  bool for_push) {
  std::string ctx = registry_ + "/" + repo + (reference.starts_with("sha256:") ? "@" : ":") + reference;
  HttpRequest req;
  req.method = "HEAD";
  req.url = Url("/v2/" + repo + "/manifests/" + reference);
  req.headers.push_back("Accept: " + index::media::AcceptHeader());
  auto r = Send(req, for_push ? PushScope(repo) : "repository:" + repo + ":pull");
  if (!r.ok()) return std::move(r).take_status().WithContext(ctx);
  if (r->status == 404) return std::optional<std::string>();
  if (r->status != 200) return Status::Network(ctx + ": HEAD answered " + std::to_string(r->status));
  std::string digest = r->header("docker-content-digest");
  if (digest.empty() && reference.starts_with("sha256:")) digest = reference;
  if (digest.empty()) {
    // A registry that does not say: fetch the bytes and hash them.
    SILO_ASSIGN_OR_RETURN(auto m, GetManifest(repo, reference));
    digest = m.digest;
  }
  return std::optional<std::string>(digest);
}

Result<bool> RegistryClient::MountBlob(const std::string& repo, const std::string& digest, const std::string& from) {
  HttpRequest req;
  req.method = "POST";
  req.url = Url("/v2/" + repo + "/blobs/uploads/?mount=" + UrlEncode(digest) + "&from=" + UrlEncode(from));
  auto r = Send(req, PushScope(repo) + " repository:" + from + ":pull");
  std::string ctx = registry_ + "/" + repo + "@" + digest + " (mount from " + from + ")";
  if (!r.ok()) return std::move(r).take_status().WithContext(ctx);
  if (r->status == 201) return true;
  if (r->status == 202) return false;
  return Status::Network(ctx + ": registry answered " + std::to_string(r->status) + " (" + RegistryErrorMessage(*r) +
                         ")");
}

Status RegistryClient::UploadOnce(const std::string& repo, const std::string& digest, uint64_t size,
                                  const BlobOpener& open, const UploadOptions& options) {
  const std::string scope = PushScope(repo);
  auto bad = [&](const char* step, const HttpResponse& r) {
    std::string what =
        step + std::string(" answered ") + std::to_string(r.status) + " (" + RegistryErrorMessage(r) + ")";
    // 5xx and 408/429 are worth a new session; others (digest invalid, denied) are not.
    return Retryable(r.status) ? Status::Network(what) : Status::InvalidArgument(what);
  };
  HttpRequest start;
  start.method = "POST";
  start.url = Url("/v2/" + repo + "/blobs/uploads/");
  SILO_ASSIGN_OR_RETURN(HttpResponse started, Send(start, scope));
  if (started.status != 202) return bad("POST upload", started);
  std::string location = AbsoluteLocation(started.header("location"));
  if (started.header("location").empty()) return Status::Network("POST upload: no Location in the answer");
  SILO_ASSIGN_OR_RETURN(auto source, open());
  uint64_t sent = 0;
  auto limited = [&](uint64_t limit) {
    // Yields at most `limit` more bytes of the source; a short source is an error.
    return [&, limit, given = uint64_t{0}](std::span<uint8_t> buf) mutable -> Result<size_t> {
      if (given >= limit) return size_t{0};
      buf = buf.first(static_cast<size_t>(std::min<uint64_t>(buf.size(), limit - given)));
      SILO_ASSIGN_OR_RETURN(size_t n, source(buf));
      if (n == 0) {
        return Status::Integrity("blob " + digest + " in the store has " + std::to_string(sent + given) +
                                 " bytes, its manifest says " + std::to_string(size));
      }
      given += n;
      bytes_uploaded_ += n;
      return n;
    };
  };
  if (size > options.monolithic_max) {
    while (sent < size) {
      uint64_t n = std::min(options.chunk_size, size - sent);
      HttpRequest patch;
      patch.method = "PATCH";
      patch.url = location;
      patch.headers = {"Content-Type: application/octet-stream",
                       "Content-Range: " + std::to_string(sent) + "-" + std::to_string(sent + n - 1)};
      patch.body_source = limited(n);
      patch.body_size = n;
      SILO_ASSIGN_OR_RETURN(HttpResponse r, Send(patch, scope, nullptr, 0));
      if (r.status != 202) return bad("PATCH chunk", r);
      sent += n;
      if (!r.header("location").empty()) location = AbsoluteLocation(r.header("location"));
    }
  }
  HttpRequest put;
  put.method = "PUT";
  put.url = WithQuery(location, "digest=" + UrlEncode(digest));
  put.headers = {"Content-Type: application/octet-stream"};
  if (sent < size) {
    put.body_source = limited(size - sent);
    put.body_size = size - sent;
  }
  SILO_ASSIGN_OR_RETURN(HttpResponse done, Send(put, scope, nullptr, 0));
  if (done.status != 201) return bad("PUT upload", done);
  // The source must be exhausted: a store object longer than the manifest says is wrong.
  uint8_t extra[1];
  SILO_ASSIGN_OR_RETURN(size_t more, source({extra, 1}));
  if (more != 0) return Status::Integrity("blob " + digest + " in the store is longer than its manifest says");
  return Status::Ok();
}

Status RegistryClient::UploadBlob(const std::string& repo, const std::string& digest, uint64_t size,
                                  const BlobOpener& open, const UploadOptions& options) {
  std::string ctx = registry_ + "/" + repo + "@" + digest + ": upload";
  for (int attempt = 0;; ++attempt) {
    Status s = UploadOnce(repo, digest, size, open, options);
    if (s.ok() || s.code() != Code::kNetwork || attempt >= options_.retries) return s.WithContext(ctx);
    ++retries_;
    SleepInterruptibly(options_.backoff * (1 << std::min(attempt, 6)));
    if (Interrupted()) return Status::Interrupted(ctx + ": interrupted");
  }
}

Status RegistryClient::PutManifest(const std::string& repo, const std::string& reference, const std::string& bytes,
                                   const std::string& media_type) {
  std::string ctx = registry_ + "/" + repo + (reference.starts_with("sha256:") ? "@" : ":") + reference;
  HttpRequest req;
  req.method = "PUT";
  req.url = Url("/v2/" + repo + "/manifests/" + reference);
  req.headers.push_back("Content-Type: " + media_type);
  req.body = bytes;
  auto r = Send(req, PushScope(repo));
  if (!r.ok()) return std::move(r).take_status().WithContext(ctx);
  if (r->status != 201 && r->status != 200) {
    std::string msg =
        ctx + ": manifest PUT answered " + std::to_string(r->status) + " (" + RegistryErrorMessage(*r) + ")";
    return r->status == 400 || r->status == 404 ? Status::InvalidArgument(msg) : Status::Network(msg);
  }
  bytes_uploaded_ += bytes.size();
  std::string digest = "sha256:" + ToHex(Sha256::Of(AsBytes(bytes)));
  std::string header = r->header("docker-content-digest");
  if (!header.empty() && header != digest) {
    return Status::Integrity(ctx + ": the registry recorded digest " + header + " for a manifest of digest " + digest);
  }
  return Status::Ok();
}

}  // namespace silo::transfer
