// A CNCF registry (Debian's `docker-registry`) behind Docker token auth, for integration
// tests of registry clients: tests/support/token_server.py issues RS256 JWTs for HTTP basic
// credentials, and the registry (auth: token: {realm, service, issuer, rootcertbundle})
// verifies them against the token server's certificate. Both run on 127.0.0.1, inside a
// directory the caller owns (usually a per-test TempDir).
//
//   TempDir tmp;
//   TokenRegistry::Options options;
//   options.anonymous_pull = true;  // (GCC 12 -Wextra warns about partial designated initializers)
//   TokenRegistry registry(tmp / "registry", options);
//   registry.Start();   // throws std::runtime_error, with the log tail of whichever failed
//   ... push to registry.host_port() with registry.creds() ...
//   EXPECT_EQ(registry.TokenRequestCount(), 1u);
//   // the destructor stops both, so a failing test never leaks a process
//
// A client sees the usual flow: GET /v2/ answers 401 with
//   WWW-Authenticate: Bearer realm="http://127.0.0.1:TP/token",service="<service>"
// and GET realm?service=...&scope=repository:NAME:pull,push with basic auth gives a token.
//
// Layout of the directory: token/key.pem and token/cert.pem (the signing key and its
// self-signed certificate, made with the openssl CLI on first start), token/server.log
// (token_server.py's stdout and stderr), token/requests.log (one line per token request,
// see token_server.py), and registry/ (the Registry helper's directory: config.yml,
// storage/, registry.log, tls/, certs/).
//
// Test-only code: failures throw std::runtime_error. Not thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/registry.h"

namespace silo::testing {

struct TokenRegistryOptions {
  // The one valid user of the token server.
  std::string username = "silo";
  std::string password = "silo-test-password";
  // auth.token.service / issuer of the registry; the token server uses the same.
  std::string service = "silo-test-registry";
  std::string issuer = "silo-test-token-issuer";
  // Token lifetime ("expires_in"), seconds.
  int expires_in = 300;
  // Anonymous token requests get pull access (like Docker Hub's public repositories);
  // otherwise they get a token granting nothing, so the registry answers 401 again.
  bool anonymous_pull = false;
  // The valid user's tokens grant pull only (a read-only account).
  bool deny_push = false;
  // How the JWT header names the signing key: "kid" (libtrust key id, looked up in the
  // rootcertbundle), "x5c" (certificate chain, verified against it) or "both".
  std::string key_id_mode = "kid";
  // The registry serves HTTPS (Registry's tls option: ca_cert_path(), cert_dir()). The
  // token server stays plain HTTP.
  bool tls = false;
  bool delete_enabled = false;
  // First registry port to try; 0 picks a free one. The token server takes a free port.
  int port = 0;
  // How long Start() waits for each of the two to come up.
  std::chrono::milliseconds start_timeout = std::chrono::seconds(10);
};

class TokenRegistry {
 public:
  using Options = TokenRegistryOptions;

  // Nothing runs until Start(). `dir` is created if missing; everything goes inside it.
  explicit TokenRegistry(std::string dir, Options options = {});
  // Stops both (Stop()).
  ~TokenRegistry();
  TokenRegistry(const TokenRegistry&) = delete;
  TokenRegistry& operator=(const TokenRegistry&) = delete;

  // Makes the signing key and certificate (first start), starts token_server.py and waits
  // for it to listen, then starts the registry configured for token auth against it and
  // waits until GET /v2/ answers 401. Throws std::runtime_error with the log tail of the
  // one that failed (and stops the other). After Stop(), Start() serves the same storage
  // again, on the same ports when they are still free.
  void Start();
  // Stops the registry, then the token server, each by pid; no-op for what is not running.
  void Stop();
  // True while both run.
  bool running();
  pid_t registry_pid() const;
  pid_t token_server_pid() const { return token_server_.pid(); }

  // The registry: "127.0.0.1:PORT" (the form image references use), its port, and
  // "http(s)://127.0.0.1:PORT". Valid after Start().
  const std::string& host_port() const;
  int port() const;
  std::string url() const;
  // With tls: the CA that signed the registry's certificate, and a directory holding only
  // ca.crt (skopeo --cert-dir). Empty without TLS.
  const std::string& ca_cert_path() const;
  const std::string& cert_dir() const;

  // The credentials the token server accepts, and "user:pass" for skopeo --creds.
  const std::string& username() const { return options_.username; }
  const std::string& password() const { return options_.password; }
  std::string creds() const { return options_.username + ":" + options_.password; }
  const Options& options() const { return options_; }

  // The token server: its port and realm ("http://127.0.0.1:TP/token"). Valid after Start().
  int token_port() const { return token_port_; }
  std::string realm() const;
  // Where the signing key and its certificate (the registry's rootcertbundle) are.
  std::string token_key_path() const { return dir_ + "/token/key.pem"; }
  std::string token_cert_path() const { return dir_ + "/token/cert.pem"; }
  // One line per token request (kept across restarts):
  //   <n> <METHOD> <path?query> user=<name|-> status=<code> access=<type:name:actions;...|->
  std::string token_log_path() const { return dir_ + "/token/requests.log"; }
  // token_server.py's own stdout and stderr.
  std::string token_server_log_path() const { return dir_ + "/token/server.log"; }
  // The lines of token_log_path(), oldest first.
  std::vector<std::string> TokenRequests() const;
  // How many token requests were logged whose line contains `substring` (all when empty),
  // e.g. TokenRequestCount("status=200"), TokenRequestCount("user=-").
  size_t TokenRequestCount(const std::string& substring = "") const;

  // The underlying registry (null before the first Start()).
  Registry* registry() { return registry_.get(); }
  const std::string& dir() const { return dir_; }
  std::string registry_dir() const { return dir_ + "/registry"; }
  // The last `lines` lines of the registry's log and of the token server's output.
  std::string LogTail(size_t lines = 30) const;

 private:
  void MakeKey();
  void StartTokenServer();
  std::string AuthYaml() const;

  std::string dir_;
  Options options_;
  Process token_server_;
  std::unique_ptr<Registry> registry_;
  std::string registry_auth_yaml_;  // what registry_ was configured with
  int token_port_ = 0;
};

// The absolute paths of the Python peers in tests/support.
std::string TokenServerScript();
std::string FaultProxyScript();

}  // namespace silo::testing
