// Writing commands run by a `silo serve` that owns the store, for other silo processes
// on the same host: `silo pull`, `silo sync` and `silo ref set|rm` against a served store
// are forwarded here and run in the server (same store, same Puller or Syncer), so
// pre-warming works while the server runs. Other writing commands are refused by
// cmd/command.cc's OpenStore with a message naming the server.
//
// Every request: POST with "Authorization: Bearer TOKEN" (the token is random per server
// start and recorded in STORE/serve.pid, readable only by the store's owner); the access
// policy's user credentials do not apply to these paths. Bodies are one directive per line.
//   /silo/v1/pull  "ref REF", "plain-http HOST", "platform OS/ARCH", "tls-verify false",
//                  "ca-cert PATH", "creds USER:PASS", "jobs N", "blob-jobs N",
//                  "retries N", "fail-without-platform".
//   /silo/v1/sync  "url URL", "select SELECTOR" (several), "authorization VALUE",
//                  "tls-verify false", "ca-cert PATH", "connections N".
//   Answer (200, text): "ok DIGEST NAME" per image pulled or ref synced, "failed
//   INPUT<TAB>MESSAGE" and "warning INPUT<TAB>MESSAGE" lines, then "summary …".
//   /silo/v1/ref   "set NAME DIGEST" or "rm NAME", optionally "expect DIGEST" or
//                  "create-only". Answer 200 "ok", else 400/404/409 with the message.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/store.h"
#include "transfer/server/daemon.h"
#include "transfer/server/router.h"

namespace silo::server {

class AdminApi {
 public:
  // `store` must outlive the API.
  AdminApi(store::Store& store, std::string token) : store_(store), token_(std::move(token)) {}
  void Register(Router& router);
  Response Pull(Request& req);
  Response Sync(Request& req);
  Response Ref(Request& req);

 private:
  store::Store& store_;
  std::string token_;
};

// Whether `path` is an admin endpoint (checked by its token, not the access policy).
bool IsAdminPath(std::string_view path);

// --- client side, for the writing commands ---

// The server that owns the store at `store_path` (its pidfile names a live process with an
// admin token), or nullopt.
std::optional<ServeInfo> RunningServer(const std::string& store_path);

// A forwarded command's answer, parsed.
struct AdminAnswer {
  std::vector<std::string> ok;                              // "DIGEST NAME"
  std::vector<std::pair<std::string, std::string>> failed;  // input, message
  std::vector<std::pair<std::string, std::string>> warnings;
  std::string summary;
};

struct PullForward {
  std::vector<std::string> refs;       // full references
  std::vector<std::string> platforms;  // OS/ARCH[/VARIANT]
  std::vector<std::string> plain_http;
  bool tls_verify = true;
  std::string ca_cert;
  std::string creds;  // USER:PASS, may be empty
  bool fail_without_platform = false;
  int jobs = 4, blob_jobs = 4, retries = 5;
};
Result<AdminAnswer> PullThroughServer(const ServeInfo& server, const PullForward& pull);

struct SyncForward {
  std::string url;
  std::vector<std::string> selectors;
  std::string authorization;  // may be empty
  bool tls_verify = true;
  std::string ca_cert;
  int connections = 4;
};
Result<AdminAnswer> SyncThroughServer(const ServeInfo& server, const SyncForward& sync);

// `silo ref set NAME DIGEST` (target set) or `silo ref rm NAME` (target empty) in the
// server; `expect` as SetRef/DeleteRef take it ("" for any, "-" for create-only).
Status RefThroughServer(const ServeInfo& server, const std::string& name, const std::string& target,
                        const std::string& expect);

// Client side: sends `body` to the running server's admin `path` ("/silo/v1/pull") and
// returns the answer's text; errors name the server. The server is reached on its first
// recorded endpoint (a wildcard address becomes loopback).
Result<std::string> CallAdmin(const ServeInfo& server, const std::string& path, const std::string& body);

// A random token (32 hex digits) for ServeInfo::token.
Result<std::string> NewAdminToken();

}  // namespace silo::server
