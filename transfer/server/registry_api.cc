#include "transfer/server/registry_api.h"

#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <set>

#include "index/manifest.h"
#include "transfer/server/metrics.h"
#include "transfer/server/proxy_cache.h"
#include "transfer/server/repo_map.h"
#include "transfer/server/uploads.h"
#include "util/hash.h"
#include "util/json.h"

namespace silo::server {
namespace {

constexpr std::string_view kMediaTypeSpace = kMediaTypeIndex;
constexpr std::string_view kReferrersSpace = "referrers";
constexpr size_t kBodyBuffer = 1 << 20;

Response Json(int status, std::string body, std::string content_type = "application/json") {
  return Response::Text(status, std::move(body), std::move(content_type));
}

// The spec's error body: {"errors":[{"code":"...","message":"...","detail":{}}]}.
Response Error(int status, std::string_view code, std::string_view message) {
  return Json(status, "{\"errors\":[{\"code\":" + JsonQuote(code) + ",\"message\":" + JsonQuote(message) +
                          ",\"detail\":{}}]}\n");
}

Response FromStatus(const Status& s, std::string_view not_found_code) {
  switch (s.code()) {
    case Code::kNotFound:
      return Error(404, not_found_code, s.message());
    case Code::kInvalidArgument:
      return Error(400, "UNSUPPORTED", s.message());
    case Code::kIntegrity:
      return Error(400, "DIGEST_INVALID", s.message());
    case Code::kConflict:
      return Error(409, "DENIED", s.message());
    case Code::kNetwork:
      return Error(400, "BLOB_UPLOAD_INVALID", s.message());
    default:
      return Error(500, "UNKNOWN", s.message());
  }
}

// A failure of the pull-through cache: the upstream lacks it (404), or it failed (502).
Response UpstreamError(const Status& s, std::string_view not_found_code) {
  if (s.IsNotFound()) return Error(404, not_found_code, s.message());
  if (s.code() == Code::kInterrupted) return Error(503, "UNAVAILABLE", s.message());
  return Error(502, "UNKNOWN", "upstream: " + s.message());
}

// A digest in a URL or query: sha256 only.
Result<store::Digest> ParseSha256(std::string_view text) {
  auto d = store::Digest::Parse(text);
  if (!d.ok()) return d;
  if (!d->is_sha256()) return Status::InvalidArgument("digest " + std::string(text) + ": only sha256 is supported");
  return d;
}

bool ParseCount(std::string_view s, size_t* out) {
  if (s.empty() || s.size() > 9) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Fields of a manifest the registry needs beyond index::Manifest: the referrers API's.
struct Extras {
  std::string subject;  // "sha256:…", empty when none
  std::string artifact_type;
  std::string config_media_type;
  std::string annotations;  // the raw JSON object, empty when none
};

Extras ParseExtras(std::string_view bytes) {
  Extras e;
  simdjson::dom::parser parser;
  simdjson::padded_string padded(bytes);
  simdjson::dom::object root;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS) return e;
  std::string_view s;
  simdjson::dom::object sub;
  if (root["subject"].get(sub) == simdjson::SUCCESS && sub["digest"].get(s) == simdjson::SUCCESS) e.subject = s;
  if (root["artifactType"].get(s) == simdjson::SUCCESS) e.artifact_type = s;
  simdjson::dom::object cfg;
  if (root["config"].get(cfg) == simdjson::SUCCESS && cfg["mediaType"].get(s) == simdjson::SUCCESS) {
    e.config_media_type = s;
  }
  simdjson::dom::object ann;
  if (root["annotations"].get(ann) == simdjson::SUCCESS) e.annotations = simdjson::to_string(ann);
  return e;
}

struct Route {
  enum Kind { kTags, kUploads, kManifest, kBlob, kReferrers, kUnknown } kind = kUnknown;
  std::string name;
  std::string arg;  // reference, digest or upload id
};

Route Classify(std::string_view rest) {
  Route r;
  if (rest.ends_with("/tags/list")) {
    r.kind = Route::kTags;
    r.name = std::string(rest.substr(0, rest.size() - 10));
    return r;
  }
  if (size_t p = rest.rfind("/blobs/uploads"); p != std::string_view::npos) {
    std::string_view after = rest.substr(p + 14);
    if (after.empty() || after.front() == '/') {
      r.kind = Route::kUploads;
      r.name = std::string(rest.substr(0, p));
      r.arg = std::string(after.empty() ? after : after.substr(1));
      return r;
    }
  }
  struct {
    std::string_view marker;
    Route::Kind kind;
  } const kinds[] = {{"/manifests/", Route::kManifest}, {"/blobs/", Route::kBlob}, {"/referrers/", Route::kReferrers}};
  for (const auto& k : kinds) {
    if (size_t p = rest.rfind(k.marker); p != std::string_view::npos) {
      r.kind = k.kind;
      r.name = std::string(rest.substr(0, p));
      r.arg = std::string(rest.substr(p + k.marker.size()));
      return r;
    }
  }
  return r;
}

}  // namespace

struct RegistryApi::Impl {
  store::Store& store;
  RegistryApiOptions options;
  Uploads uploads;
  std::atomic<uint64_t> blobs_pushed{0}, manifests_pushed{0}, mounts{0}, bytes_pushed{0};

  Impl(store::Store& s, RegistryApiOptions o) : store(s), options(std::move(o)), uploads(s, options.upload_expiry) {}

  Response Handle(Request& req);
  Response Catalog(Request& req);
  Response Tags(Request& req, const std::string& name, const RepoLocation& loc);
  Response GetManifest(Request& req, const RepoLocation& loc, const std::string& reference);
  Response PutManifest(Request& req, const std::string& name, const RepoLocation& loc, const std::string& reference);
  Response DeleteManifest(const RepoLocation& loc, const std::string& reference);
  Response GetBlob(Request& req, const RepoLocation& loc, const std::string& digest);
  // The pull-through cache when `loc`'s registry is one of its upstreams, else null.
  ProxyCache* ProxyFor(const RepoLocation& loc) const {
    return options.proxy && options.proxy->Serves(loc) ? options.proxy : nullptr;
  }
  Response Upload(Request& req, const std::string& name, const std::string& id);
  Response Referrers(Request& req, const std::string& digest);

  struct LoadedManifest {
    std::string bytes;
    std::string media_type;
  };
  Result<LoadedManifest> LoadManifest(const store::Digest& d);
  // Streams the request body into `w`; returns the bytes written.
  Result<uint64_t> StreamBody(Request& req, store::ObjectWriter& w);
  Response UploadState(int status, const std::string& name, const std::string& id, uint64_t size);
};

Result<RegistryApi::Impl::LoadedManifest> RegistryApi::Impl::LoadManifest(const store::Digest& d) {
  SILO_ASSIGN_OR_RETURN(store::ObjectInfo info, store.Stat(d));
  if (info.size > index::kMaxManifestSize) return Status::NotFound("manifest " + d.ToString() + " unknown");
  LoadedManifest m;
  SILO_ASSIGN_OR_RETURN(m.bytes, store.ReadAll(d, index::kMaxManifestSize));
  SILO_ASSIGN_OR_RETURN(auto type, store.GetIndex(kMediaTypeSpace, d.raw()));
  if (type) {
    m.media_type = std::move(*type);
  } else {
    auto parsed = index::ParseManifest(m.bytes);
    if (!parsed.ok()) return Status::NotFound("manifest " + d.ToString() + " unknown");
    m.media_type = parsed->media_type;
  }
  return m;
}

Result<uint64_t> RegistryApi::Impl::StreamBody(Request& req, store::ObjectWriter& w) {
  std::vector<uint8_t> buf(kBodyBuffer);
  uint64_t total = 0;
  while (true) {
    SILO_ASSIGN_OR_RETURN(size_t n, req.body->Read(buf));
    if (n == 0) break;
    SILO_TRY(w.Write(ByteSpan(buf.data(), n)));
    total += n;
  }
  bytes_pushed += total;
  return total;
}

Response RegistryApi::Impl::Handle(Request& req) {
  const std::string& path = req.path;
  if (path == "/v2/" || path == "/v2") {
    if (req.method != "GET" && req.method != "HEAD") return Error(405, "UNSUPPORTED", "GET /v2/ only");
    return Json(200, "{}\n");
  }
  if (path == "/v2/_catalog") {
    if (req.method != "GET" && req.method != "HEAD") return Error(405, "UNSUPPORTED", "GET only");
    return Catalog(req);
  }
  Route route = Classify(std::string_view(path).substr(4));
  if (route.kind == Route::kUnknown) return Error(404, "NAME_UNKNOWN", "no such endpoint: " + path);
  auto loc = MapRepository(route.name, options.default_registry);
  if (!loc.ok()) return Error(400, "NAME_INVALID", loc.status().message());
  bool read = req.method == "GET" || req.method == "HEAD";
  bool write = req.method == "PUT" || req.method == "POST" || req.method == "PATCH" || req.method == "DELETE";
  if (write && options.read_only) return Error(405, "UNSUPPORTED", "this server is read-only");
  switch (route.kind) {
    case Route::kTags:
      if (!read) return Error(405, "UNSUPPORTED", "GET only");
      return Tags(req, route.name, *loc);
    case Route::kManifest:
      if (read) return GetManifest(req, *loc, route.arg);
      if (req.method == "PUT") return PutManifest(req, route.name, *loc, route.arg);
      if (req.method == "DELETE") return DeleteManifest(*loc, route.arg);
      return Error(405, "UNSUPPORTED", req.method + " of a manifest");
    case Route::kBlob:
      if (read) return GetBlob(req, *loc, route.arg);
      if (req.method == "DELETE") {
        return Error(405, "UNSUPPORTED", "blobs are shared by every repository; delete manifests and run silo gc");
      }
      return Error(405, "UNSUPPORTED", req.method + " of a blob");
    case Route::kUploads:
      return Upload(req, route.name, route.arg);
    case Route::kReferrers:
      if (!read) return Error(405, "UNSUPPORTED", "GET only");
      return Referrers(req, route.arg);
    case Route::kUnknown:
      break;
  }
  return Error(404, "NAME_UNKNOWN", "no such endpoint: " + path);
}

Response RegistryApi::Impl::Catalog(Request& req) {
  auto refs = store.ListRefs("image/");
  if (!refs.ok()) return FromStatus(refs.status(), "NAME_UNKNOWN");
  std::set<std::string> names;
  for (const auto& r : *refs) {
    auto parsed = ParseImageRef(r.name);
    if (!parsed) continue;
    if (auto served = ServedName(parsed->location, options.default_registry)) names.insert(*served);
  }
  size_t n = options.max_page;
  if (auto np = req.QueryParam("n")) {
    if (!ParseCount(*np, &n)) return Error(400, "PAGINATION_NUMBER_INVALID", "n=" + *np + " is not a count");
    n = std::min(n, options.max_page);
  }
  auto last = req.QueryParam("last");
  auto it = last ? names.upper_bound(*last) : names.begin();
  std::string body = "{\"repositories\":[";
  size_t count = 0;
  std::string last_sent;
  for (; it != names.end() && count < n; ++it, ++count) {
    body += (count ? "," : "") + JsonQuote(*it);
    last_sent = *it;
  }
  body += "]}\n";
  Response res = Json(200, std::move(body));
  if (it != names.end() && count > 0) {
    res.With("Link", "</v2/_catalog?n=" + std::to_string(n) + "&last=" + last_sent + ">; rel=\"next\"");
  }
  return res;
}

Response RegistryApi::Impl::Tags(Request& req, const std::string& name, const RepoLocation& loc) {
  auto refs = store.ListRefs(loc.RefPrefix() + ":");
  if (!refs.ok()) return FromStatus(refs.status(), "NAME_UNKNOWN");
  std::vector<std::string> tags;
  for (const auto& r : *refs) {
    auto parsed = ParseImageRef(r.name);
    if (parsed && parsed->location == loc && !parsed->tag.empty()) tags.push_back(parsed->tag);
  }
  if (tags.empty()) {
    auto digests = store.ListRefs(loc.RefPrefix() + "@");
    if (!digests.ok() || digests->empty()) return Error(404, "NAME_UNKNOWN", "repository " + name + " not known");
  }
  std::sort(tags.begin(), tags.end());
  size_t n = options.max_page;
  if (auto np = req.QueryParam("n")) {
    if (!ParseCount(*np, &n)) return Error(400, "PAGINATION_NUMBER_INVALID", "n=" + *np + " is not a count");
    n = std::min(n, options.max_page);
  }
  auto it = tags.begin();
  if (auto last = req.QueryParam("last")) it = std::upper_bound(tags.begin(), tags.end(), *last);
  std::string body = "{\"name\":" + JsonQuote(name) + ",\"tags\":[";
  size_t count = 0;
  std::string last_sent;
  for (; it != tags.end() && count < n; ++it, ++count) {
    body += (count ? "," : "") + JsonQuote(*it);
    last_sent = *it;
  }
  body += "]}\n";
  Response res = Json(200, std::move(body));
  if (it != tags.end() && count > 0) {
    res.With("Link", "</v2/" + name + "/tags/list?n=" + std::to_string(n) + "&last=" + last_sent + ">; rel=\"next\"");
  }
  return res;
}

Response RegistryApi::Impl::GetManifest(Request&, const RepoLocation& loc, const std::string& reference) {
  store::Digest digest;
  ProxyCache* proxy = ProxyFor(loc);
  if (reference.find(':') != std::string::npos) {
    auto d = ParseSha256(reference);
    if (!d.ok()) return Error(400, "DIGEST_INVALID", d.status().message());
    digest = *d;
    if (proxy) {
      if (Status s = proxy->EnsureManifest(loc, digest); !s.ok()) return UpstreamError(s, "MANIFEST_UNKNOWN");
    }
  } else {
    if (!ValidTag(reference)) return Error(400, "TAG_INVALID", "tag \"" + reference + "\" is not a valid tag");
    if (proxy) {
      auto d = proxy->ResolveTag(loc, reference);
      if (!d.ok()) return UpstreamError(d.status(), "MANIFEST_UNKNOWN");
      digest = *d;
    } else {
      auto target = store.GetRef(loc.TagRef(reference));
      if (!target.ok()) return FromStatus(target.status(), "MANIFEST_UNKNOWN");
      if (!*target) return Error(404, "MANIFEST_UNKNOWN", "manifest " + reference + " unknown");
      digest = **target;
    }
  }
  auto m = LoadManifest(digest);
  if (!m.ok()) return FromStatus(m.status(), "MANIFEST_UNKNOWN");
  Response res = Json(200, std::move(m->bytes), std::move(m->media_type));
  res.With("Docker-Content-Digest", digest.ToString()).With("ETag", "\"" + digest.ToString() + "\"");
  return res;
}

Response RegistryApi::Impl::GetBlob(Request&, const RepoLocation& loc, const std::string& digest) {
  auto d = ParseSha256(digest);
  if (!d.ok()) return Error(400, "DIGEST_INVALID", d.status().message());
  auto reader = store.NewReader(*d);
  if (ProxyCache* proxy = ProxyFor(loc)) {
    if (reader.ok()) {
      proxy->Touch(*d);
    } else if (reader.status().IsNotFound()) {
      reader = proxy->OpenBlob(loc, *d);
      if (!reader.ok()) return UpstreamError(reader.status(), "BLOB_UNKNOWN");
    }
  }
  if (!reader.ok()) return FromStatus(reader.status(), "BLOB_UNKNOWN");
  Response res = Response::Object(std::move(reader).value());
  res.With("Docker-Content-Digest", d->ToString()).With("ETag", "\"" + d->ToString() + "\"");
  return res;
}

Response RegistryApi::Impl::PutManifest(Request& req, const std::string& name, const RepoLocation& loc,
                                        const std::string& reference) {
  std::optional<store::Digest> want;
  if (reference.find(':') != std::string::npos) {
    auto d = ParseSha256(reference);
    if (!d.ok()) return Error(400, "DIGEST_INVALID", d.status().message());
    want = *d;
  } else if (!ValidTag(reference)) {
    return Error(400, "TAG_INVALID", "tag \"" + reference + "\" is not a valid tag");
  }
  // The manifest is small (4 MiB at most): read it whole.
  std::string bytes;
  std::vector<uint8_t> buf(64 * 1024);
  while (true) {
    auto n = req.body->Read(buf);
    if (!n.ok()) return Error(400, "MANIFEST_INVALID", n.status().message());
    if (*n == 0) break;
    bytes.append(reinterpret_cast<const char*>(buf.data()), *n);
    if (bytes.size() > index::kMaxManifestSize) {
      return Error(413, "SIZE_INVALID",
                   "manifest larger than the limit of " + std::to_string(index::kMaxManifestSize) + " bytes");
    }
  }
  std::string content_type(req.Header("Content-Type").value_or(""));
  auto parsed = index::ParseManifest(bytes, content_type);
  if (!parsed.ok()) return Error(400, "MANIFEST_INVALID", parsed.status().message());
  store::Digest digest =
      store::Digest::Sha256(Sha256::Of(ByteSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())));
  if (want && *want != digest) {
    return Error(400, "DIGEST_INVALID",
                 "manifest has digest " + digest.ToString() + ", the URL names " + want->ToString());
  }
  std::vector<store::Digest> links;
  for (const auto& ref : parsed->References()) {
    if (!ref.urls.empty()) continue;  // foreign layers live elsewhere
    auto d = ParseSha256(ref.digest);
    if (!d.ok()) return Error(400, "MANIFEST_INVALID", d.status().message());
    links.push_back(*d);
  }
  auto missing = store.Missing(links);
  if (!missing.ok()) return FromStatus(missing.status(), "MANIFEST_BLOB_UNKNOWN");
  if (!missing->empty()) {
    return Error(
        400, "MANIFEST_BLOB_UNKNOWN",
        "manifest references " + (*missing)[0].ToString() + ", which this registry does not have (push it first)");
  }
  Extras extras = ParseExtras(bytes);
  std::optional<store::Digest> subject;
  if (!extras.subject.empty()) {
    auto s = ParseSha256(extras.subject);
    if (!s.ok()) return Error(400, "MANIFEST_INVALID", "subject: " + s.status().message());
    subject = *s;
  }
  Status st = store.PutIndex(kMediaTypeSpace, digest.raw(), parsed->media_type);
  if (!st.ok()) return FromStatus(st, "MANIFEST_UNKNOWN");
  store::PutOptions po;
  po.expected_digest = digest;
  po.links = std::move(links);
  po.ref = want ? loc.DigestRef(digest.ToString()) : loc.TagRef(reference);
  auto info = store.Put(ByteSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), po);
  if (!info.ok()) return FromStatus(info.status(), "MANIFEST_UNKNOWN");
  if (subject) {
    std::string artifact = !extras.artifact_type.empty() ? extras.artifact_type : extras.config_media_type;
    std::string desc = "{\"mediaType\":" + JsonQuote(parsed->media_type) +
                       ",\"digest\":" + JsonQuote(digest.ToString()) + ",\"size\":" + std::to_string(bytes.size());
    if (!artifact.empty()) desc += ",\"artifactType\":" + JsonQuote(artifact);
    if (!extras.annotations.empty()) desc += ",\"annotations\":" + extras.annotations;
    desc += "}";
    // Value: the artifact type, a newline, then the descriptor.
    st = store.PutIndex(kReferrersSpace, std::string(subject->raw()) + std::string(digest.raw()),
                        artifact + "\n" + desc);
    if (!st.ok()) return FromStatus(st, "MANIFEST_UNKNOWN");
  }
  ++manifests_pushed;
  Response res = Response::Empty(201);
  res.With("Location", "/v2/" + name + "/manifests/" + digest.ToString());
  res.With("Docker-Content-Digest", digest.ToString());
  if (subject) res.With("OCI-Subject", subject->ToString());
  return res;
}

Response RegistryApi::Impl::DeleteManifest(const RepoLocation& loc, const std::string& reference) {
  if (reference.find(':') == std::string::npos) {
    if (!ValidTag(reference)) return Error(400, "TAG_INVALID", "tag \"" + reference + "\" is not a valid tag");
    Status s = store.DeleteRef(loc.TagRef(reference));
    if (!s.ok()) return FromStatus(s, "MANIFEST_UNKNOWN");
    return Response::Empty(202);
  }
  auto d = ParseSha256(reference);
  if (!d.ok()) return Error(400, "DIGEST_INVALID", d.status().message());
  auto refs = store.ListRefs(loc.RefPrefix());
  if (!refs.ok()) return FromStatus(refs.status(), "MANIFEST_UNKNOWN");
  size_t removed = 0;
  for (const auto& r : *refs) {
    auto parsed = ParseImageRef(r.name);
    if (!parsed || !(parsed->location == loc) || r.target != *d) continue;
    Status s = store.DeleteRef(r.name, *d);
    if (!s.ok() && !s.IsNotFound()) return FromStatus(s, "MANIFEST_UNKNOWN");
    ++removed;
  }
  if (removed == 0) return Error(404, "MANIFEST_UNKNOWN", "manifest " + reference + " unknown in this repository");
  // A deleted referrer leaves the referrers list of its subject.
  if (auto m = LoadManifest(*d); m.ok()) {
    Extras extras = ParseExtras(m->bytes);
    if (auto s = ParseSha256(extras.subject); !extras.subject.empty() && s.ok()) {
      std::pair<std::string, std::optional<std::string>> drop{std::string(s->raw()) + std::string(d->raw()),
                                                              std::nullopt};
      store.WriteIndex(kReferrersSpace, std::span(&drop, 1)).IgnoreError();  // listing re-checks anyway
    }
  }
  return Response::Empty(202);
}

Response RegistryApi::Impl::UploadState(int status, const std::string& name, const std::string& id, uint64_t size) {
  Response res = Response::Empty(status);
  res.With("Location", "/v2/" + name + "/blobs/uploads/" + id);
  res.With("Docker-Upload-UUID", id);
  res.With("Range", "0-" + std::to_string(size > 0 ? size - 1 : 0));
  return res;
}

Response RegistryApi::Impl::Upload(Request& req, const std::string& name, const std::string& id) {
  auto blob_created = [&](const store::Digest& d) {
    Response res = Response::Empty(201);
    res.With("Location", "/v2/" + name + "/blobs/" + d.ToString());
    res.With("Docker-Content-Digest", d.ToString());
    return res;
  };
  if (req.method == "POST") {
    if (!id.empty()) return Error(405, "UNSUPPORTED", "POST starts an upload at .../blobs/uploads/");
    if (auto mount = req.QueryParam("mount")) {
      auto d = ParseSha256(*mount);
      if (!d.ok()) return Error(400, "DIGEST_INVALID", d.status().message());
      if (store.Stat(*d).ok()) {
        ++mounts;
        return blob_created(*d);
      }
      // Not here: fall back to a new upload session, as the spec says.
    } else if (auto digest = req.QueryParam("digest")) {
      auto d = ParseSha256(*digest);
      if (!d.ok()) return Error(400, "DIGEST_INVALID", d.status().message());
      store::PutOptions po;
      po.expected_digest = *d;
      auto w = store.NewWriter(po);
      if (!w.ok()) return FromStatus(w.status(), "BLOB_UNKNOWN");
      auto n = StreamBody(req, **w);
      if (!n.ok()) return FromStatus(n.status(), "BLOB_UPLOAD_INVALID");
      auto info = (*w)->Commit();
      if (!info.ok()) return FromStatus(info.status(), "BLOB_UPLOAD_INVALID");
      ++blobs_pushed;
      return blob_created(*d);
    }
    auto started = uploads.Start(name);
    if (!started.ok()) return FromStatus(started.status(), "BLOB_UPLOAD_UNKNOWN");
    return UploadState(202, name, *started, 0);
  }
  if (id.empty()) return Error(404, "BLOB_UPLOAD_UNKNOWN", "no upload id in " + req.path);
  auto session = uploads.Find(id);
  if (!session || session->repository != name) {
    return Error(404, "BLOB_UPLOAD_UNKNOWN", "upload " + id + " unknown (finished, cancelled or expired)");
  }
  std::unique_lock lock(session->mu, std::try_to_lock);
  if (!lock.owns_lock()) return Error(409, "BLOB_UPLOAD_INVALID", "upload " + id + " is busy with another request");
  store::ObjectWriter& w = *session->writer;
  if (req.method == "GET" || req.method == "HEAD") return UploadState(204, name, id, w.bytes_written());
  if (req.method == "DELETE") {
    lock.unlock();
    uploads.Remove(id);
    return Response::Empty(204);
  }
  if (req.method != "PATCH" && req.method != "PUT") return Error(405, "UNSUPPORTED", req.method + " of an upload");
  std::optional<store::Digest> digest;
  if (req.method == "PUT") {
    auto q = req.QueryParam("digest");
    if (!q) return Error(400, "DIGEST_INVALID", "PUT of an upload needs ?digest=");
    auto d = ParseSha256(*q);
    if (!d.ok()) return Error(400, "DIGEST_INVALID", d.status().message());
    digest = *d;
  }
  // Content-Range "a-b": the chunk must start where the upload stands.
  if (auto cr = req.Header("Content-Range")) {
    std::string_view v = *cr;
    if (v.starts_with("bytes ")) v.remove_prefix(6);
    if (v.starts_with("bytes=")) v.remove_prefix(6);
    size_t dash = v.find('-');
    uint64_t first = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + (dash == std::string_view::npos ? v.size() : dash), first);
    if (dash == std::string_view::npos || ec != std::errc()) {
      return Error(400, "BLOB_UPLOAD_INVALID", "Content-Range \"" + std::string(*cr) + "\" is not a-b");
    }
    (void)p;
    if (first != w.bytes_written()) {
      Response res = UploadState(416, name, id, w.bytes_written());
      res.headers.emplace_back("Content-Type", "application/json");
      res.kind = Response::Kind::kString;
      res.body = "{\"errors\":[{\"code\":\"BLOB_UPLOAD_INVALID\",\"message\":" +
                 JsonQuote("chunk starts at " + std::to_string(first) + ", the upload has " +
                           std::to_string(w.bytes_written()) + " bytes") +
                 ",\"detail\":{}}]}\n";
      return res;
    }
  }
  auto n = StreamBody(req, w);
  if (!n.ok()) {
    // What arrived is kept: the client may ask where the upload stands and go on.
    return FromStatus(n.status(), "BLOB_UPLOAD_INVALID");
  }
  if (req.method == "PATCH") return UploadState(202, name, id, w.bytes_written());
  Status s = w.SetExpected(*digest, std::nullopt);
  auto info = s.ok() ? w.Commit() : Result<store::ObjectInfo>(s);
  lock.unlock();
  uploads.Remove(id);  // committed, or its writer is spent
  if (!info.ok()) return FromStatus(info.status(), "BLOB_UPLOAD_INVALID");
  ++blobs_pushed;
  return blob_created(*digest);
}

Response RegistryApi::Impl::Referrers(Request& req, const std::string& digest) {
  auto d = ParseSha256(digest);
  if (!d.ok()) return Error(400, "DIGEST_INVALID", d.status().message());
  auto filter = req.QueryParam("artifactType");
  std::string list;
  Status st = store.ScanIndex(kReferrersSpace, d->raw(), [&](std::string_view key, std::string_view value) {
    store::Digest referrer;
    if (!store::Digest::FromRaw(key.substr(d->raw().size()), &referrer)) return true;
    size_t nl = value.find('\n');
    if (nl == std::string_view::npos) return true;
    if (filter && value.substr(0, nl) != *filter) return true;
    if (!store.Stat(referrer).ok()) return true;  // collected since
    list += (list.empty() ? "" : ",") + std::string(value.substr(nl + 1));
    return true;
  });
  if (!st.ok()) return FromStatus(st, "MANIFEST_UNKNOWN");
  Response res = Json(
      200,
      "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[" + list + "]}\n",
      "application/vnd.oci.image.index.v1+json");
  if (filter) res.With("OCI-Filters-Applied", "artifactType");
  return res;
}

RegistryApi::RegistryApi(store::Store& store, RegistryApiOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(options))) {}
RegistryApi::~RegistryApi() = default;

Response RegistryApi::Handle(Request& req) {
  Response res = impl_->Handle(req);
  res.With("Docker-Distribution-API-Version", "registry/2.0");
  return res;
}

void RegistryApi::Register(Router& router) {
  router.Add("/v2/", [this](Request& req) { return Handle(req); });
  router.Add("/v2", [this](Request& req) { return Handle(req); });
}

std::string RegistryApi::MetricsText() const {
  std::string out;
  AppendMetric(&out, "silo_registry_uploads_active", "gauge", "", impl_->uploads.active());
  AppendMetric(&out, "silo_registry_blobs_pushed_total", "counter", "", impl_->blobs_pushed.load());
  AppendMetric(&out, "silo_registry_manifests_pushed_total", "counter", "", impl_->manifests_pushed.load());
  AppendMetric(&out, "silo_registry_mounts_total", "counter", "", impl_->mounts.load());
  AppendMetric(&out, "silo_registry_pushed_bytes_total", "counter", "", impl_->bytes_pushed.load());
  return out;
}

}  // namespace silo::server
