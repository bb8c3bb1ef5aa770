// Writing commands run by a `silo serve` that owns the store, for other silo processes
// on the same host: `silo pull` against a served store is forwarded here and runs in the
// server (same store, same Puller), so pre-warming works while the server runs.
//
// POST /silo/v1/pull with "Authorization: Bearer TOKEN" (the token is random per server
// start and recorded in STORE/serve.pid, readable only by the store's owner). Body: one
// directive per line ("ref REF", "plain-http HOST", "platform OS/ARCH", "tls-verify
// false", "ca-cert PATH", "creds USER:PASS", "jobs N", "blob-jobs N", "retries N",
// "fail-without-platform"). Answer (200, text): "ok DIGEST REFERENCE" per pulled image,
// "failed INPUT<TAB>MESSAGE" and "warning INPUT<TAB>MESSAGE" lines, then "summary …".
#pragma once

#include <string>

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

 private:
  store::Store& store_;
  std::string token_;
};

// Client side: sends `body` to the running server's admin `path` ("/silo/v1/pull") and
// returns the answer's text; errors name the server. The server is reached on its first
// recorded endpoint (a wildcard address becomes loopback).
Result<std::string> CallAdmin(const ServeInfo& server, const std::string& path, const std::string& body);

// A random token (32 hex digits) for ServeInfo::token.
Result<std::string> NewAdminToken();

}  // namespace silo::server
