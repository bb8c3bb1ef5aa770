#include "transfer/server/share_routes.h"

#include <strings.h>

#include "transfer/server/admin_api.h"
#include "transfer/server/sync_api.h"

namespace silo::server {
namespace {

std::string ErrorJson(std::string_view code, std::string_view message) {
  std::string m;
  for (char c : message) {
    if (c == '"' || c == '\\') m += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) m += c;
  }
  return "{\"errors\":[{\"code\":\"" + std::string(code) + "\",\"message\":\"" + m + "\"}]}\n";
}

Response Serve(const transfer::ShareService& shares, Request& req) {
  // HEAD is answered like GET (the server sends the headers only), so the entity length
  // and validators are the real ones; ranges are applied by the server.
  std::string method = req.method == "HEAD" ? "GET" : req.method;
  transfer::ShareResponse r = shares.Handle(transfer::ShareRequest{method, req.target, "", ""});
  Response out;
  out.status = r.status;
  for (auto& [k, v] : r.headers) {
    if (k != "Accept-Ranges" && k != "Content-Range") out.With(k, v);
  }
  if (r.file.valid()) {
    out.kind = Response::Kind::kFile;
    out.file = std::move(r.file);
    out.file_offset = r.file_offset;
    out.length = r.content_length;
    out.ranges = true;
  } else if (r.object) {
    out.kind = Response::Kind::kObject;
    out.object = std::move(r.object);
    out.length = r.content_length;
    out.ranges = true;
  } else {
    out.kind = Response::Kind::kString;
    out.body = std::move(r.body);
  }
  auto if_range = req.Header("If-Range");
  if (out.ranges && if_range && *if_range != r.Header("ETag") && *if_range != r.Header("Last-Modified")) {
    std::erase_if(req.headers,
                  [](const auto& h) { return h.first.size() == 5 && ::strncasecmp(h.first.c_str(), "range", 5) == 0; });
  }
  return out;
}

}  // namespace

void AddShareRoutes(Router& router, const transfer::ShareService& shares) {
  Handler h = [&shares](Request& req) { return Serve(shares, req); };
  for (const char* prefix : {"/files", "/files/", "/snapshots", "/snapshots/"}) router.Add(prefix, h);
}

void SetAccessPolicy(Router& router, const transfer::AccessControl& access) {
  router.SetAccessCheck([&access](const Request& req) -> std::optional<Response> {
    transfer::Decision d = access.CheckPeer(req.client_address);
    if (!d.allowed()) return Response::Text(403, ErrorJson("DENIED", d.reason), "application/json");
    if (req.path == "/healthz") return std::nullopt;
    // The admin endpoints check their own token (the pidfile's), not the users' credentials.
    if (IsAdminPath(req.path)) return std::nullopt;
    // A sync POSTs lists of digests but only reads.
    bool reads = req.method == "GET" || req.method == "HEAD" || IsSyncPath(req.path);
    transfer::Need need = reads ? transfer::Need::kRead : transfer::Need::kWrite;
    d = access.CheckAuth(req.Header("Authorization").value_or(""), need);
    if (!d.allowed()) {
      Response r = Response::Text(401, ErrorJson("UNAUTHORIZED", d.reason), "application/json");
      r.With("WWW-Authenticate", "Basic realm=\"silo\"");
      return r;
    }
    return std::nullopt;
  });
}

}  // namespace silo::server
