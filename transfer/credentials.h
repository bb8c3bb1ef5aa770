// Registry credentials from a docker config.json: `auths` (base64 `auth`, username and
// password, identity tokens), `credHelpers` and `credsStore` through the
// docker-credential-<name> programs.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "util/result.h"

namespace silo::transfer {

struct Credential {
  std::string username;
  std::string password;
  std::string identity_token;  // an OAuth2 refresh token (Docker's "identitytoken")
};

class CredentialStore {
 public:
  CredentialStore() = default;
  // Loads `path`; empty means $REGISTRY_AUTH_FILE, then ~/.docker/config.json. A missing
  // default file is an empty store; a missing named file or malformed JSON is an error
  // naming the file.
  static Result<CredentialStore> Load(const std::string& path);

  // Credentials for `registry` ("docker.io", "127.0.0.1:5000"), nullopt when none.
  // Runs a credential helper when the config names one. Thread-safe.
  Result<std::optional<Credential>> Lookup(const std::string& registry) const;

  // For tests and --creds: fixed credentials for one registry.
  void Set(const std::string& registry, Credential credential);

 private:
  std::string path_;
  std::map<std::string, Credential> auths_;  // keyed by normalized host
  std::map<std::string, std::string> helpers_;
  std::string creds_store_;
};

// "https://index.docker.io/v1/" and friends -> "docker.io"; "https://host:port/x" -> "host:port".
std::string NormalizeRegistryHost(std::string_view key);

}  // namespace silo::transfer
