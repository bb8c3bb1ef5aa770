#include "transfer/server/admin_api.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <charconv>
#include <memory>
#include <set>
#include <sstream>

#include "index/reference.h"
#include "transfer/credentials.h"
#include "transfer/http.h"
#include "transfer/pull.h"
#include "util/hash.h"

namespace silo::server {
namespace {

constexpr size_t kMaxBody = 1 << 20;

bool ParseInt(std::string_view s, int* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && *out > 0;
}

std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

}  // namespace

Result<std::string> NewAdminToken() {
  uint8_t raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) return Status::IO("admin token: no random bytes");
  return ToHex(ByteSpan(raw, sizeof raw));
}

void AdminApi::Register(Router& router) {
  router.Add("/silo/v1/pull", [this](Request& req) { return Pull(req); });
}

Response AdminApi::Pull(Request& req) {
  if (req.method != "POST") return Response::Text(405, "POST only\n");
  std::string want = "Bearer " + token_;
  auto auth = req.Header("Authorization");
  if (!auth || auth->size() != want.size() || CRYPTO_memcmp(auth->data(), want.data(), want.size()) != 0) {
    return Response::Text(401, "a valid admin token is required\n");
  }
  std::string body;
  std::vector<uint8_t> buf(64 * 1024);
  while (true) {
    auto n = req.body->Read(buf);
    if (!n.ok()) return Response::Text(400, n.status().message() + "\n");
    if (*n == 0) break;
    body.append(reinterpret_cast<const char*>(buf.data()), *n);
    if (body.size() > kMaxBody) return Response::Text(413, "request too large\n");
  }
  transfer::PullOptions o;
  std::vector<transfer::PullItem> items;
  std::string creds;
  std::istringstream lines(body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    size_t sp = line.find(' ');
    std::string key = line.substr(0, sp), value = sp == std::string::npos ? "" : line.substr(sp + 1);
    int n = 0;
    if (key == "ref") {
      auto r = index::ParseReference(value);
      if (!r.ok()) return Response::Text(400, r.status().message() + "\n");
      items.push_back({value, *r, Status::Ok(), "", {}, {}, {}});
    } else if (key == "plain-http") {
      o.plain_http_registries.push_back(value);
    } else if (key == "platform") {
      auto p = index::Platform::Parse(value);
      if (!p.ok()) return Response::Text(400, p.status().message() + "\n");
      o.platforms.push_back(*p);
    } else if (key == "tls-verify") {
      o.registry.http.tls_verify = value != "false";
    } else if (key == "ca-cert") {
      o.registry.http.ca_file = value;
    } else if (key == "creds") {
      creds = value;
    } else if (key == "fail-without-platform") {
      o.fail_without_platform = true;
    } else if ((key == "jobs" || key == "blob-jobs" || key == "retries") && ParseInt(value, &n)) {
      (key == "jobs" ? o.jobs : key == "blob-jobs" ? o.blob_jobs : o.registry.retries) = n;
    } else {
      return Response::Text(400, "unknown directive \"" + OneLine(line) + "\"\n");
    }
  }
  if (items.empty()) return Response::Text(400, "no ref given\n");
  auto store_creds = transfer::CredentialStore::Load("");
  if (!store_creds.ok()) return Response::Text(500, store_creds.status().message() + "\n");
  if (!creds.empty()) {
    size_t colon = creds.find(':');
    if (colon == std::string::npos) return Response::Text(400, "creds: expected USER:PASSWORD\n");
    std::set<std::string> registries;
    for (const auto& i : items) registries.insert(i.reference.registry);
    for (const auto& r : registries) store_creds->Set(r, {creds.substr(0, colon), creds.substr(colon + 1), ""});
  }
  o.registry.credentials = std::make_shared<transfer::CredentialStore>(std::move(*store_creds));
  transfer::Puller puller(store_, o);
  puller.Pull(items);
  std::string out;
  size_t failed = 0;
  for (const auto& item : items) {
    for (const auto& w : item.warnings) out += "warning " + OneLine(item.input) + "\t" + OneLine(w) + "\n";
    if (!item.status.ok()) {
      ++failed;
      out += "failed " + OneLine(item.input) + "\t" + OneLine(item.status.message()) + "\n";
    } else {
      out += "ok " + item.digest + " " + item.reference.ToString() + "\n";
    }
  }
  const auto& c = puller.counters();
  out += "summary " + std::to_string(items.size() - failed) + " image(s) pulled by the server, " +
         std::to_string(failed) + " failed; blobs: " + std::to_string(c.blobs_fetched) + " fetched, " +
         std::to_string(c.blobs_present) + " already present; " + std::to_string(c.bytes_fetched.load()) + " bytes\n";
  return Response::Text(200, std::move(out));
}

Result<std::string> CallAdmin(const ServeInfo& server, const std::string& path, const std::string& body) {
  if (server.endpoints.empty())
    return Status::NotFound("silo serve (pid " + std::to_string(server.pid) + ") records no address");
  std::string ep = server.endpoints.front();
  // A wildcard listener is reached on loopback.
  for (auto [from, to] : {std::pair<std::string, std::string>{"//0.0.0.0:", "//127.0.0.1:"}, {"//[::]:", "//[::1]:"}}) {
    if (size_t at = ep.find(from); at != std::string::npos) ep.replace(at, from.size(), to);
  }
  transfer::HttpOptions ho;
  ho.tls_verify = false;            // our own server on this host; the token is the credential
  ho.low_speed_time_s = 24 * 3600;  // a pull may take long before answering
  transfer::HttpClient client(ho);
  transfer::HttpRequest req;
  req.method = "POST";
  req.url = ep + path;
  req.headers = {"Authorization: Bearer " + server.token, "Content-Type: text/plain"};
  req.body = body;
  req.max_body = 64 << 20;
  SILO_ASSIGN_OR_RETURN(transfer::HttpResponse res, client.Do(req));
  if (res.status != 200) {
    return Status::Network("silo serve (pid " + std::to_string(server.pid) + ") at " + ep + " answered " +
                           std::to_string(res.status) + ": " + OneLine(res.body));
  }
  return std::move(res.body);
}

}  // namespace silo::server
