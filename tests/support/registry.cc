#include "tests/support/registry.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace silo::testing {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  if (!f) throw std::runtime_error("cannot write " + path);
}

// Runs a helper program; throws with its output if it fails. Returns the output.
std::string MustRun(const std::vector<std::string>& argv) {
  std::string out;
  int rc = RunCommand(argv, &out, std::chrono::seconds(60));
  if (rc != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    throw std::runtime_error("registry setup: `" + cmd + "` exited " + std::to_string(rc) + ":\n" + out);
  }
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

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// openssl configuration for the test CA and the server certificate it signs. Our own file,
// so the system openssl.cnf cannot add or clash with extensions.
constexpr const char* kOpensslConfig = R"([ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = silo test
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ server_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
)";

}  // namespace

Registry::Registry(std::string dir, Options options) : dir_(std::move(dir)), options_(std::move(options)) {}

Registry::~Registry() {
  Stop();
}

std::string Registry::url() const {
  return (options_.tls ? "https://" : "http://") + host_port_;
}

bool Registry::running() {
  return process_.Running();
}

void Registry::Stop() {
  process_.Stop();
}

std::string Registry::LogTail(size_t lines) const {
  std::istringstream in(ReadFile(log_path()));
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);) all.push_back(std::move(line));
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += all[i] + "\n";
  return out;
}

void Registry::Prepare() {
  if (prepared_) return;
  fs::create_directories(storage_path());
  if (options_.htpasswd) MakeHtpasswd();
  if (options_.tls) MakeCertificates();
  prepared_ = true;
}

void Registry::MakeHtpasswd() {
  // -B bcrypt (the only scheme the registry accepts), -b password from argv, -n to stdout.
  std::string out = MustRun({"htpasswd", "-Bbn", options_.username, options_.password});
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(options_.username + ":", 0) == 0) {
      WriteTextFile(dir_ + "/htpasswd", line + "\n");
      return;
    }
  }
  throw std::runtime_error("registry setup: htpasswd printed no entry for " + options_.username + ":\n" + out);
}

void Registry::MakeCertificates() {
  const std::string tls = dir_ + "/tls";
  fs::create_directories(tls);
  const std::string cnf = tls + "/openssl.cnf";
  WriteTextFile(cnf, kOpensslConfig);
  const std::vector<std::string> ec_key = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};

  std::vector<std::string> ca = {"openssl", "req", "-x509", "-config", cnf, "-extensions", "ca_ext"};
  ca.insert(ca.end(), ec_key.begin(), ec_key.end());
  ca.insert(ca.end(), {"-keyout", tls + "/ca.key", "-out", tls + "/ca.crt", "-days", "7", "-subj", "/CN=silo test CA"});
  MustRun(ca);

  std::vector<std::string> csr = {"openssl", "req", "-new", "-config", cnf};
  csr.insert(csr.end(), ec_key.begin(), ec_key.end());
  csr.insert(csr.end(), {"-keyout", tls + "/server.key", "-out", tls + "/server.csr", "-subj", "/CN=localhost"});
  MustRun(csr);

  MustRun({"openssl",
           "x509",
           "-req",
           "-in",
           tls + "/server.csr",
           "-CA",
           tls + "/ca.crt",
           "-CAkey",
           tls + "/ca.key",
           "-CAcreateserial",
           "-CAserial",
           tls + "/ca.srl",
           "-days",
           "7",
           "-extfile",
           cnf,
           "-extensions",
           "server_ext",
           "-out",
           tls + "/server.crt"});

  // skopeo reads every *.crt in a cert dir as a CA and wants a *.cert for every *.key, so
  // this directory holds the CA certificate and nothing else.
  cert_dir_ = dir_ + "/certs";
  fs::create_directories(cert_dir_);
  fs::copy_file(tls + "/ca.crt", cert_dir_ + "/ca.crt", fs::copy_options::overwrite_existing);
  ca_cert_path_ = tls + "/ca.crt";
}

void Registry::WriteConfig() const {
  std::ostringstream y;
  y << "version: 0.1\n"
    << "log:\n"
    << "  level: info\n"
    << "  formatter: text\n"
    << "storage:\n"
    << "  filesystem:\n"
    << "    rootdirectory: " << YamlQuote(storage_path()) << "\n"
    << "  delete:\n"
    << "    enabled: " << (options_.delete_enabled ? "true" : "false")
    << "\n"
    // No blob descriptor cache: a test that deletes or garbage-collects sees the truth.
    // No upload purging: it would walk the storage in the background.
    << "  maintenance:\n"
    << "    uploadpurging:\n"
    << "      enabled: false\n"
    << "http:\n"
    << "  addr: 127.0.0.1:" << port_
    << "\n"
    // A fixed secret (upload state is signed with it) instead of a random one per start.
    << "  secret: silo-test-secret\n"
    << "  headers:\n"
    << "    X-Content-Type-Options: [nosniff]\n";
  if (options_.tls) {
    y << "  tls:\n"
      << "    certificate: " << YamlQuote(dir_ + "/tls/server.crt") << "\n"
      << "    key: " << YamlQuote(dir_ + "/tls/server.key") << "\n";
  }
  if (!options_.auth_yaml.empty()) {
    y << "auth:\n" << options_.auth_yaml;
    if (options_.auth_yaml.back() != '\n') y << "\n";
  } else if (options_.htpasswd) {
    y << "auth:\n"
      << "  htpasswd:\n"
      << "    realm: silo-test\n"
      << "    path: " << YamlQuote(dir_ + "/htpasswd") << "\n";
  }
  y << "health:\n"
    << "  storagedriver:\n"
    << "    enabled: false\n";
  WriteTextFile(config_path(), y.str());
}

std::string Registry::WaitUntilUp(bool* port_clash) {
  *port_clash = false;
  const std::string listening = "listening on 127.0.0.1:" + std::to_string(port_);
  const int expected = options_.htpasswd || !options_.auth_yaml.empty() ? 401 : 200;
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  std::string last = "the log never said \"" + listening + "\"";
  for (;;) {
    if (!process_.Running()) {
      *port_clash = ReadFile(log_path()).find("address already in use") != std::string::npos;
      return "docker-registry exited with status " + std::to_string(process_.exit_status().value_or(-1));
    }
    if (ReadFile(log_path()).find(listening) != std::string::npos) {
      std::vector<std::string> curl = {"curl", "-sS", "-o", "/dev/null", "-D", "-", "--max-time", "2"};
      if (options_.tls) curl.insert(curl.end(), {"--cacert", ca_cert_path_});
      curl.push_back(url() + "/v2/");
      std::string out;
      int rc = RunCommand(curl, &out, std::chrono::seconds(5));
      // The first line is "HTTP/1.1 200 OK"; the distribution header proves it is our registry.
      int status = 0;
      if (rc == 0 && out.rfind("HTTP/", 0) == 0) {
        size_t sp = out.find(' ');
        if (sp != std::string::npos) status = std::atoi(out.c_str() + sp + 1);
      }
      if (status == expected && Lower(out).find("docker-distribution-api-version: registry/2.0") != std::string::npos) {
        return "";
      }
      last = "GET " + url() + "/v2/: curl exit " + std::to_string(rc) + ", HTTP " + std::to_string(status) + " (want " +
             std::to_string(expected) + "): " + out.substr(0, 300);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return "not up within " + std::to_string(options_.start_timeout.count()) + " ms; last check: " + last;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void Registry::Start() {
  if (process_.Running()) return;
  Prepare();
  int port = port_ != 0 ? port_ : options_.port != 0 ? options_.port : FreeLoopbackPort();
  std::string clashes;
  constexpr int kAttempts = 5;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    port_ = port;
    host_port_ = "127.0.0.1:" + std::to_string(port_);
    WriteConfig();
    ProcessOptions po;
    po.argv = {"docker-registry", "serve", config_path()};
    po.env_drop_prefixes = {"REGISTRY_"};  // the registry reads REGISTRY_* as config overrides
    po.stdout_path = log_path();
    po.stderr_path = log_path();
    process_ = Process(po);
    bool clash = false;
    std::string why = WaitUntilUp(&clash);
    if (why.empty()) return;
    std::string tail = LogTail();
    process_.Stop();
    if (!clash || attempt == kAttempts) {
      throw std::runtime_error("registry " + url() + " (" + dir_ + ") did not start: " + why +
                               (clashes.empty() ? "" : " (after port clashes: " + clashes + ")") +
                               "\n--- last lines of " + log_path() + " ---\n" + tail);
    }
    clashes += (clashes.empty() ? "" : ", ") + std::to_string(port_);
    port = FreeLoopbackPort();
  }
}

}  // namespace silo::testing
