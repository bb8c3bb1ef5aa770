// A real CNCF distribution registry (Debian's `docker-registry`) on 127.0.0.1 for
// integration tests: its own config, filesystem storage, optional htpasswd auth and TLS
// (a CA and server certificate made at test time with the openssl CLI), all inside a
// directory the caller owns (usually a per-test TempDir).
//
//   TempDir tmp;
//   Registry::Options options;
//   options.htpasswd = true;  // (GCC 12 -Wextra warns about partial designated initializers)
//   Registry registry(tmp / "registry", options);
//   registry.Start();   // throws std::runtime_error, with the registry's log tail
//   ... push to registry.host_port() ...
//   // the destructor stops it, so a failing test never leaks a registry
//
// Layout of the directory: config.yml, storage/ (the registry's root directory),
// registry.log (its stdout and stderr), htpasswd, tls/ (CA and server key and
// certificate), certs/ca.crt (a directory to give skopeo as --cert-dir / --dest-cert-dir).
//
// Test-only code: failures throw std::runtime_error. Not thread-safe.
#pragma once

#include <chrono>
#include <string>

#include "tests/support/process.h"

namespace silo::testing {

struct RegistryOptions {
  // Basic auth from an htpasswd file (bcrypt, made with `htpasswd -Bbn`). /v2/ answers 401
  // to anonymous requests.
  bool htpasswd = false;
  std::string username = "silo";
  std::string password = "silo-test-password";
  // HTTPS with a certificate for 127.0.0.1 and localhost, signed by a CA made for this
  // registry (ca_cert_path()).
  bool tls = false;
  // Allows DELETE of manifests and blobs (the registry answers 405 otherwise).
  bool delete_enabled = false;
  // Raw YAML for the body of the config's `auth:` section, every line indented by two
  // spaces (e.g. a `token:` block; see tests/support/token_registry.h). Non-empty replaces
  // htpasswd, and Start() then expects GET /v2/ to answer 401.
  std::string auth_yaml;
  // First port to try; 0 picks a free one. On a port clash Start() moves to a free port.
  int port = 0;
  // How long Start() waits for GET /v2/ to answer.
  std::chrono::milliseconds start_timeout = std::chrono::seconds(10);
};

class Registry {
 public:
  using Options = RegistryOptions;

  // Nothing runs until Start(). `dir` is created if missing; everything goes inside it.
  explicit Registry(std::string dir, Options options = {});
  // Stops the registry (Stop()).
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Writes the config (and on first start the htpasswd file and TLS material), starts the
  // registry and waits until GET /v2/ answers 200 (401 with htpasswd) on 127.0.0.1 and its
  // log says it listens there. Retries on another port if the port is taken. Throws
  // std::runtime_error naming the cause and quoting the log tail if it does not come up
  // within options.start_timeout. After Stop(), Start() again serves the same storage,
  // on the same port when that port is still free.
  void Start();
  // Stops the registry by pid (SIGTERM, then SIGKILL) and reaps it. No-op if not running.
  void Stop();
  // True while the registry process runs.
  bool running();
  // The registry's pid while running, else -1.
  pid_t pid() const { return process_.pid(); }

  // "127.0.0.1:PORT", the form image references use. Valid after Start().
  const std::string& host_port() const { return host_port_; }
  int port() const { return port_; }
  // "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT".
  std::string url() const;
  // The CA certificate (PEM) that signed the server certificate; empty without TLS.
  const std::string& ca_cert_path() const { return ca_cert_path_; }
  // A directory holding only ca.crt, for skopeo --cert-dir; empty without TLS.
  const std::string& cert_dir() const { return cert_dir_; }
  // Credentials (meaningful with htpasswd), and "user:pass" for skopeo --creds.
  const std::string& username() const { return options_.username; }
  const std::string& password() const { return options_.password; }
  std::string creds() const { return options_.username + ":" + options_.password; }
  const Options& options() const { return options_; }

  const std::string& dir() const { return dir_; }
  std::string config_path() const { return dir_ + "/config.yml"; }
  std::string storage_path() const { return dir_ + "/storage"; }
  std::string log_path() const { return dir_ + "/registry.log"; }
  // The last `lines` lines of the registry's log.
  std::string LogTail(size_t lines = 30) const;

 private:
  void Prepare();
  void MakeHtpasswd();
  void MakeCertificates();
  void WriteConfig() const;
  // Waits until the registry answers; returns "" when up, else why not (the process
  // exited, or the timeout passed). Sets *port_clash when the port was taken.
  std::string WaitUntilUp(bool* port_clash);

  std::string dir_;
  Options options_;
  Process process_;
  bool prepared_ = false;
  int port_ = 0;
  std::string host_port_;
  std::string ca_cert_path_;
  std::string cert_dir_;
};

}  // namespace silo::testing
