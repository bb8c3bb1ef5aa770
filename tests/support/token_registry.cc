#include "tests/support/token_registry.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include "tests/support/store_test.h"

#ifndef SILO_TEST_SUPPORT_DIR
#error "SILO_TEST_SUPPORT_DIR must name tests/support (set in tests/support/CMakeLists.txt)"
#endif

namespace silo::testing {
namespace {

namespace fs = std::filesystem;

std::string Tail(const std::string& path, size_t lines) {
  std::vector<std::string> all = Lines(ReadFileToString(path));
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += all[i] + "\n";
  return out;
}

// A double-quoted YAML scalar.
std::string YamlQuote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

const std::string kEmpty;

}  // namespace

std::string TokenServerScript() {
  return SILO_TEST_SUPPORT_DIR "/token_server.py";
}

std::string FaultProxyScript() {
  return SILO_TEST_SUPPORT_DIR "/fault_proxy.py";
}

TokenRegistry::TokenRegistry(std::string dir, Options options) : dir_(std::move(dir)), options_(std::move(options)) {}

TokenRegistry::~TokenRegistry() {
  Stop();
}

void TokenRegistry::Stop() {
  if (registry_) registry_->Stop();
  token_server_.Stop();
}

bool TokenRegistry::running() {
  return registry_ && registry_->running() && token_server_.Running();
}

pid_t TokenRegistry::registry_pid() const {
  return registry_ ? registry_->pid() : -1;
}

const std::string& TokenRegistry::host_port() const {
  return registry_ ? registry_->host_port() : kEmpty;
}

int TokenRegistry::port() const {
  return registry_ ? registry_->port() : 0;
}

std::string TokenRegistry::url() const {
  return registry_ ? registry_->url() : "";
}

const std::string& TokenRegistry::ca_cert_path() const {
  return registry_ ? registry_->ca_cert_path() : kEmpty;
}

const std::string& TokenRegistry::cert_dir() const {
  return registry_ ? registry_->cert_dir() : kEmpty;
}

std::string TokenRegistry::realm() const {
  return "http://127.0.0.1:" + std::to_string(token_port_) + "/token";
}

std::vector<std::string> TokenRegistry::TokenRequests() const {
  return Lines(ReadFileToString(token_log_path()));
}

size_t TokenRegistry::TokenRequestCount(const std::string& substring) const {
  size_t n = 0;
  for (const auto& line : TokenRequests()) n += line.find(substring) != std::string::npos;
  return n;
}

std::string TokenRegistry::LogTail(size_t lines) const {
  std::string out = "--- " + token_server_log_path() + " ---\n" + Tail(token_server_log_path(), lines);
  out += "--- " + token_log_path() + " ---\n" + Tail(token_log_path(), lines);
  if (registry_) out += "--- " + registry_->log_path() + " ---\n" + registry_->LogTail(lines);
  return out;
}

void TokenRegistry::MakeKey() {
  if (fs::exists(token_key_path()) && fs::exists(token_cert_path())) return;
  fs::create_directories(dir_ + "/token");
  // RS256 needs RSA. A self-signed certificate: the registry takes the public keys of its
  // rootcertbundle as trusted (kid) and verifies x5c chains against it.
  std::vector<std::string> argv = {
      "openssl",        "req",  "-x509",           "-newkey", "rsa:2048", "-nodes", "-keyout",
      token_key_path(), "-out", token_cert_path(), "-days",   "7",        "-subj",  "/CN=" + options_.issuer};
  std::string out;
  int rc = RunCommand(argv, &out, std::chrono::seconds(60));
  if (rc != 0) throw std::runtime_error("token registry setup: openssl req exited " + std::to_string(rc) + ":\n" + out);
}

void TokenRegistry::StartTokenServer() {
  // The previous port when restarting (the registry's config names it), else any free one.
  const int want = token_port_;
  ProcessOptions po;
  po.argv = {"python3",       TokenServerScript(),
             "--port",        std::to_string(want),
             "--user",        options_.username,
             "--password",    options_.password,
             "--key",         token_key_path(),
             "--cert",        token_cert_path(),
             "--issuer",      options_.issuer,
             "--service",     options_.service,
             "--expires-in",  std::to_string(options_.expires_in),
             "--log",         token_log_path(),
             "--key-id-mode", options_.key_id_mode};
  if (options_.anonymous_pull) po.argv.push_back("--anonymous-pull");
  if (options_.deny_push) po.argv.push_back("--deny-push");
  po.env = {{"PYTHONUNBUFFERED", "1"}};
  po.stdout_path = token_server_log_path();
  po.stderr_path = token_server_log_path();

  for (int attempt = 0; attempt < 2; ++attempt) {
    if (attempt == 1) po.argv[3] = "0";  // the old port is taken: any free one
    token_server_ = Process(po);
    const std::string marker = "listening on 127.0.0.1:";
    const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
    for (;;) {
      std::string log = ReadFileToString(token_server_log_path());
      size_t at = log.find(marker);
      if (at != std::string::npos) {
        token_port_ = std::atoi(log.c_str() + at + marker.size());
        return;
      }
      if (!token_server_.Running()) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        token_server_.Stop();
        throw std::runtime_error("token server did not start within " + std::to_string(options_.start_timeout.count()) +
                                 " ms\n--- " + token_server_log_path() + " ---\n" + Tail(token_server_log_path(), 30));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::string log = ReadFileToString(token_server_log_path());
    if (want == 0 || log.find("Address already in use") == std::string::npos) {
      throw std::runtime_error("token server exited with status " +
                               std::to_string(token_server_.exit_status().value_or(-1)) + "\n--- " +
                               token_server_log_path() + " ---\n" + Tail(token_server_log_path(), 30));
    }
  }
  throw std::runtime_error("token server could not bind a port\n" + Tail(token_server_log_path(), 30));
}

std::string TokenRegistry::AuthYaml() const {
  return "  token:\n    realm: " + YamlQuote(realm()) + "\n    service: " + YamlQuote(options_.service) +
         "\n    issuer: " + YamlQuote(options_.issuer) + "\n    rootcertbundle: " + YamlQuote(token_cert_path()) + "\n";
}

void TokenRegistry::Start() {
  if (running()) return;
  MakeKey();
  if (!token_server_.Running()) StartTokenServer();
  const std::string auth = AuthYaml();
  if (!registry_ || registry_auth_yaml_ != auth) {
    // First start, or the token server moved: a registry whose config names the new realm,
    // on the old registry port when there was one.
    RegistryOptions ro;
    ro.tls = options_.tls;
    ro.delete_enabled = options_.delete_enabled;
    ro.username = options_.username;
    ro.password = options_.password;
    ro.auth_yaml = auth;
    ro.port = registry_ ? registry_->port() : options_.port;
    ro.start_timeout = options_.start_timeout;
    if (registry_) registry_->Stop();
    registry_ = std::make_unique<Registry>(registry_dir(), ro);
    registry_auth_yaml_ = auth;
  }
  try {
    registry_->Start();
  } catch (...) {
    token_server_.Stop();
    throw;
  }
}

}  // namespace silo::testing
