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
#include "transfer/sync.h"
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

bool IsAdminPath(std::string_view path) {
  return path == "/silo/v1/pull" || path == "/silo/v1/sync" || path == "/silo/v1/ref";
}

void AdminApi::Register(Router& router) {
  router.Add("/silo/v1/pull", [this](Request& req) { return Pull(req); });
  router.Add("/silo/v1/sync", [this](Request& req) { return Sync(req); });
  router.Add("/silo/v1/ref", [this](Request& req) { return Ref(req); });
}

namespace {

// The body of an admin request after checking the method and the token; a response to
// send instead on failure.
std::optional<Response> ReadAdminBody(Request& req, const std::string& token, std::string* body) {
  if (req.method != "POST") return Response::Text(405, "POST only\n");
  std::string want = "Bearer " + token;
  auto auth = req.Header("Authorization");
  if (!auth || auth->size() != want.size() || CRYPTO_memcmp(auth->data(), want.data(), want.size()) != 0) {
    return Response::Text(401, "a valid admin token is required\n");
  }
  std::vector<uint8_t> buf(64 * 1024);
  while (true) {
    auto n = req.body->Read(buf);
    if (!n.ok()) return Response::Text(400, n.status().message() + "\n");
    if (*n == 0) break;
    body->append(reinterpret_cast<const char*>(buf.data()), *n);
    if (body->size() > kMaxBody) return Response::Text(413, "request too large\n");
  }
  return std::nullopt;
}

std::pair<std::string, std::string> SplitDirective(const std::string& line) {
  size_t sp = line.find(' ');
  return {line.substr(0, sp), sp == std::string::npos ? "" : line.substr(sp + 1)};
}

int StatusFor(const Status& s) {
  switch (s.code()) {
    case Code::kNotFound:
      return 404;
    case Code::kConflict:
      return 409;
    case Code::kInvalidArgument:
      return 400;
    default:
      return 500;
  }
}

}  // namespace

Response AdminApi::Sync(Request& req) {
  std::string body;
  if (auto refused = ReadAdminBody(req, token_, &body)) return std::move(*refused);
  transfer::SyncOptions o;
  std::vector<std::string> selectors;
  std::istringstream lines(body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    auto [key, value] = SplitDirective(line);
    int n = 0;
    if (key == "url") {
      o.url = value;
    } else if (key == "select") {
      selectors.push_back(value);
    } else if (key == "authorization") {
      o.authorization = value;
    } else if (key == "tls-verify") {
      o.http.tls_verify = value != "false";
    } else if (key == "ca-cert") {
      o.http.ca_file = value;
    } else if (key == "connections" && ParseInt(value, &n)) {
      o.connections = n;
    } else {
      return Response::Text(400, "unknown directive \"" + OneLine(line) + "\"\n");
    }
  }
  if (o.url.empty() || selectors.empty()) return Response::Text(400, "url and at least one select are required\n");
  transfer::Syncer syncer(store_, o);
  auto report = syncer.Sync(selectors);
  std::string out;
  if (!report.ok()) {
    out += "failed " + OneLine(o.url) + "\t" + OneLine(report.status().message()) + "\n";
    return Response::Text(200, std::move(out));
  }
  for (const auto& [sel, why] : report->unmatched) out += "failed " + OneLine(sel) + "\t" + OneLine(why) + "\n";
  size_t changed = 0;
  for (const auto& r : report->refs) {
    changed += r.changed;
    out += "ok " + r.target.ToString() + " " + r.name + "\n";
  }
  out += "summary " + std::to_string(report->refs.size()) + " ref(s), " + std::to_string(changed) +
         " set by the server; " + std::to_string(report->objects_fetched) + " objects, " +
         std::to_string(report->bytes_fetched) + " bytes; " + std::to_string(report->objects_checked) +
         " checked over " + std::to_string(report->levels) + " level(s), " + std::to_string(report->requests) +
         " request(s)\n";
  return Response::Text(200, std::move(out));
}

Response AdminApi::Ref(Request& req) {
  std::string body;
  if (auto refused = ReadAdminBody(req, token_, &body)) return std::move(*refused);
  std::string op, name, target;
  std::optional<std::optional<store::Digest>> expected;
  std::istringstream lines(body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    auto [key, value] = SplitDirective(line);
    if (key == "set") {
      size_t sp = value.rfind(' ');
      if (sp == std::string::npos) return Response::Text(400, "set: expected NAME DIGEST\n");
      op = key;
      name = value.substr(0, sp);
      target = value.substr(sp + 1);
    } else if (key == "rm") {
      op = key;
      name = value;
    } else if (key == "expect") {
      auto d = store::Digest::Parse(value);
      if (!d.ok()) return Response::Text(400, "expect: " + d.status().message() + "\n");
      expected = std::optional<store::Digest>(*d);
    } else if (key == "create-only") {
      expected = std::optional<store::Digest>();
    } else {
      return Response::Text(400, "unknown directive \"" + OneLine(line) + "\"\n");
    }
  }
  Status s;
  if (op == "set") {
    auto d = store::Digest::Parse(target);
    if (!d.ok()) return Response::Text(400, d.status().message() + "\n");
    s = store_.SetRef(name, *d, expected);
  } else if (op == "rm") {
    if (expected && !*expected) return Response::Text(400, "rm: create-only makes no sense\n");
    s = store_.DeleteRef(name, expected ? *expected : std::optional<store::Digest>());
  } else {
    return Response::Text(400, "set or rm required\n");
  }
  if (!s.ok()) return Response::Text(StatusFor(s), OneLine(s.message()) + "\n");
  return Response::Text(200, "ok\n");
}

Response AdminApi::Pull(Request& req) {
  std::string body;
  if (auto refused = ReadAdminBody(req, token_, &body)) return std::move(*refused);
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
    std::string message = "silo serve (pid " + std::to_string(server.pid) + ") at " + ep + " answered " +
                          std::to_string(res.status) + ": " + OneLine(res.body);
    while (!message.empty() && message.back() == ' ') message.pop_back();
    switch (res.status) {
      case 400:
        return Status::InvalidArgument(std::move(message));
      case 404:
        return Status::NotFound(std::move(message));
      case 409:
        return Status::Conflict(std::move(message));
      default:
        return Status::Network(std::move(message));
    }
  }
  return std::move(res.body);
}

std::optional<ServeInfo> RunningServer(const std::string& store_path) {
  auto served = ReadPidfile(PidfilePath(store_path));
  if (served.ok() && *served && !(*served)->token.empty()) return **served;
  return std::nullopt;
}

namespace {

AdminAnswer ParseAnswer(const std::string& text) {
  AdminAnswer a;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    auto [kind, rest] = SplitDirective(line);
    size_t tab = rest.find('\t');
    std::string input = rest.substr(0, tab), message = tab == std::string::npos ? "" : rest.substr(tab + 1);
    if (kind == "ok") {
      a.ok.push_back(rest);
    } else if (kind == "failed") {
      a.failed.emplace_back(input, message);
    } else if (kind == "warning") {
      a.warnings.emplace_back(input, message);
    } else if (kind == "summary") {
      a.summary = rest;
    }
  }
  return a;
}

Status CheckLine(const std::string& value, const char* what) {
  if (value.find_first_of("\r\n") != std::string::npos) {
    return Status::InvalidArgument(std::string(what) + ": no line breaks allowed");
  }
  return Status::Ok();
}

}  // namespace

Result<AdminAnswer> PullThroughServer(const ServeInfo& server, const PullForward& p) {
  std::string body;
  for (const auto& r : p.refs) {
    SILO_TRY(CheckLine(r, "reference"));
    body += "ref " + r + "\n";
  }
  for (const auto& x : p.platforms) body += "platform " + x + "\n";
  for (const auto& h : p.plain_http) body += "plain-http " + h + "\n";
  if (!p.tls_verify) body += "tls-verify false\n";
  if (!p.ca_cert.empty()) body += "ca-cert " + p.ca_cert + "\n";
  if (!p.creds.empty()) {
    SILO_TRY(CheckLine(p.creds, "--creds"));
    body += "creds " + p.creds + "\n";
  }
  if (p.fail_without_platform) body += "fail-without-platform\n";
  body += "jobs " + std::to_string(p.jobs) + "\nblob-jobs " + std::to_string(p.blob_jobs) + "\nretries " +
          std::to_string(p.retries) + "\n";
  SILO_ASSIGN_OR_RETURN(std::string answer, CallAdmin(server, "/silo/v1/pull", body));
  return ParseAnswer(answer);
}

Result<AdminAnswer> SyncThroughServer(const ServeInfo& server, const SyncForward& s) {
  SILO_TRY(CheckLine(s.url, "URL"));
  SILO_TRY(CheckLine(s.authorization, "credentials"));
  SILO_TRY(CheckLine(s.ca_cert, "--ca-cert"));
  std::string body = "url " + s.url + "\n";
  for (const auto& x : s.selectors) {
    SILO_TRY(CheckLine(x, "selector"));
    body += "select " + x + "\n";
  }
  if (!s.authorization.empty()) body += "authorization " + s.authorization + "\n";
  if (!s.tls_verify) body += "tls-verify false\n";
  if (!s.ca_cert.empty()) body += "ca-cert " + s.ca_cert + "\n";
  body += "connections " + std::to_string(s.connections) + "\n";
  SILO_ASSIGN_OR_RETURN(std::string answer, CallAdmin(server, "/silo/v1/sync", body));
  return ParseAnswer(answer);
}

Status RefThroughServer(const ServeInfo& server, const std::string& name, const std::string& target,
                        const std::string& expect) {
  SILO_TRY(CheckLine(name, "ref name"));
  std::string body = target.empty() ? "rm " + name + "\n" : "set " + name + " " + target + "\n";
  if (expect == "-") {
    body += "create-only\n";
  } else if (!expect.empty()) {
    body += "expect " + expect + "\n";
  }
  SILO_ASSIGN_OR_RETURN(std::string answer, CallAdmin(server, "/silo/v1/ref", body));
  (void)answer;
  return Status::Ok();
}

}  // namespace silo::server
