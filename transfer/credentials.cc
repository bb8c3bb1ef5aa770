#include "transfer/credentials.h"

#include <simdjson.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "transfer/http.h"
#include "util/subprocess.h"

namespace silo::transfer {
namespace {

std::string GetString(simdjson::dom::object o, std::string_view key) {
  std::string_view v;
  return o[key].get(v) == simdjson::SUCCESS ? std::string(v) : std::string();
}

// What a credential helper is asked for: Docker Hub's historical URL, else the host.
std::string HelperServerUrl(const std::string& registry) {
  return registry == "docker.io" ? "https://index.docker.io/v1/" : registry;
}

}  // namespace

std::string NormalizeRegistryHost(std::string_view key) {
  std::string_view k = key;
  for (std::string_view scheme : {"https://", "http://"}) {
    if (k.starts_with(scheme)) k.remove_prefix(scheme.size());
  }
  k = k.substr(0, k.find('/'));
  std::string host(k);
  if (host == "index.docker.io" || host == "registry-1.docker.io" || host == "registry.hub.docker.com") {
    host = "docker.io";
  }
  return host;
}

Result<CredentialStore> CredentialStore::Load(const std::string& path) {
  CredentialStore store;
  std::string file = path;
  bool explicit_path = !file.empty();
  if (file.empty()) {
    if (const char* env = std::getenv("REGISTRY_AUTH_FILE"); env && *env) {
      file = env;
      explicit_path = true;
    } else if (const char* home = std::getenv("HOME"); home && *home) {
      file = std::string(home) + "/.docker/config.json";
    }
  }
  store.path_ = file;
  std::ifstream in(file);
  if (!in) {
    if (explicit_path) return Status::NotFound("auth file " + file + ": cannot be read");
    return store;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  simdjson::dom::parser parser;
  simdjson::padded_string padded(text);
  simdjson::dom::element root;
  simdjson::dom::object o;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS || root.get(o) != simdjson::SUCCESS) {
    return Status::InvalidArgument("auth file " + file + ": not a JSON object");
  }
  simdjson::dom::object auths;
  if (o["auths"].get(auths) == simdjson::SUCCESS) {
    for (auto [key, value] : auths) {
      simdjson::dom::object entry;
      if (value.get(entry) != simdjson::SUCCESS) continue;
      Credential c;
      std::string auth = GetString(entry, "auth");
      if (!auth.empty()) {
        auto decoded = Base64Decode(auth);
        if (!decoded.ok()) {
          return Status::InvalidArgument("auth file " + file + ": auths[\"" + std::string(key) +
                                         "\"].auth is not base64");
        }
        auto colon = decoded->find(':');
        if (colon == std::string::npos) {
          return Status::InvalidArgument("auth file " + file + ": auths[\"" + std::string(key) +
                                         "\"].auth is not user:password");
        }
        c.username = decoded->substr(0, colon);
        c.password = decoded->substr(colon + 1);
      }
      if (std::string u = GetString(entry, "username"); !u.empty()) c.username = u;
      if (std::string p = GetString(entry, "password"); !p.empty()) c.password = p;
      c.identity_token = GetString(entry, "identitytoken");
      if (c.username.empty() && c.password.empty() && c.identity_token.empty()) continue;
      store.auths_[NormalizeRegistryHost(key)] = c;
    }
  }
  simdjson::dom::object helpers;
  if (o["credHelpers"].get(helpers) == simdjson::SUCCESS) {
    for (auto [key, value] : helpers) {
      std::string_view name;
      if (value.get(name) == simdjson::SUCCESS) store.helpers_[NormalizeRegistryHost(key)] = std::string(name);
    }
  }
  store.creds_store_ = GetString(o, "credsStore");
  return store;
}

void CredentialStore::Set(const std::string& registry, Credential credential) {
  auths_[NormalizeRegistryHost(registry)] = std::move(credential);
}

Result<std::optional<Credential>> CredentialStore::Lookup(const std::string& registry) const {
  std::string host = NormalizeRegistryHost(registry);
  std::string helper;
  if (auto h = helpers_.find(host); h != helpers_.end()) {
    helper = h->second;
  } else if (auto a = auths_.find(host); a != auths_.end()) {
    return std::optional<Credential>(a->second);
  } else if (!creds_store_.empty()) {
    helper = creds_store_;
  } else {
    return std::optional<Credential>();
  }
  std::string program = "docker-credential-" + helper;
  auto out = RunProgram({program, "get"}, HelperServerUrl(host));
  if (!out.ok()) {
    // Helpers report "credentials not found" on stdout/stderr with a failing status.
    if (out.status().message().find("not found") != std::string::npos) return std::optional<Credential>();
    return std::move(out).take_status().WithContext("credentials for " + host);
  }
  simdjson::dom::parser parser;
  simdjson::padded_string padded(*out);
  simdjson::dom::element root;
  simdjson::dom::object o;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS || root.get(o) != simdjson::SUCCESS) {
    return Status::InvalidArgument("credentials for " + host + ": " + program + " printed no JSON object");
  }
  Credential c;
  c.username = GetString(o, "Username");
  c.password = GetString(o, "Secret");
  if (c.username == "<token>") {
    c.identity_token = c.password;
    c.username.clear();
    c.password.clear();
  }
  return std::optional<Credential>(c);
}

}  // namespace silo::transfer
