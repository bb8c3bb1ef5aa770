// The test-side peers that `silo pull` integration tests run against, checked with skopeo
// and curl: TokenRegistry (tests/support/token_server.py issuing the JWTs a CNCF registry
// verifies) and tests/support/fault_proxy.py (a reverse proxy that drops, truncates, throttles
// and delays).
#include <gtest/gtest.h>
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/support/fault_proxy.h"
#include "tests/support/process.h"
#include "tests/support/registry.h"
#include "tests/support/store_test.h"
#include "tests/support/temp_dir.h"
#include "tests/support/token_registry.h"

namespace silo::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

const std::string kImagegen = SILO_SOURCE_DIR "/tests/support/imagegen.py";

bool Gone(pid_t pid) {
  return ::kill(pid, 0) == -1 && errno == ESRCH;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

size_t CountContaining(const std::vector<std::string>& lines, const std::string& needle) {
  size_t n = 0;
  for (const auto& line : lines) n += Contains(line, needle);
  return n;
}

// Runs a command; the output (stdout and stderr) goes to *out, the exit code is returned.
int Exec(const std::vector<std::string>& argv, std::string* out) {
  return RunCommand(argv, out, std::chrono::minutes(2));
}

std::string Sha256File(const std::string& path) {
  std::string out;
  if (Exec({"sha256sum", path}, &out) != 0) return "sha256sum failed: " + out;
  return "sha256:" + out.substr(0, 64);
}

// curl's result for one request: its exit code, the HTTP status and the bytes received.
struct CurlResult {
  int exit = -1;
  int status = 0;
  long long size = -1;
  std::string output;  // -w output and error text
};

CurlResult Curl(const std::vector<std::string>& args, const std::string& url) {
  std::vector<std::string> argv = {"curl", "-sS", "--max-time", "30", "-w", "\n@@ %{http_code} %{size_download}\n"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(url);
  CurlResult r;
  r.exit = Exec(argv, &r.output);
  size_t at = r.output.rfind("@@ ");
  if (at != std::string::npos) {
    std::istringstream in(r.output.substr(at + 3));
    in >> r.status >> r.size;
  }
  return r;
}

// A bearer token from the token server (empty if it did not answer 200).
std::string FetchToken(const std::string& realm, const std::string& service, const std::string& scope,
                       const std::string& creds) {
  std::vector<std::string> argv = {"curl", "-sS", "--fail",           "--max-time",        "10",
                                   "-G",   realm, "--data-urlencode", "service=" + service};
  if (!scope.empty()) argv.insert(argv.end(), {"--data-urlencode", "scope=" + scope});
  if (!creds.empty()) argv.insert(argv.end(), {"-u", creds});
  std::string json;
  if (Exec(argv, &json) != 0) return "";
  const std::string key = "\"token\": \"";
  size_t at = json.find(key);
  if (at == std::string::npos) return "";
  at += key.size();
  return json.substr(at, json.find('"', at) - at);
}

// Runs imagegen.py (small set) into a registry; returns the references it pushed.
std::vector<std::string> PushImages(const std::string& host_port, const TempDir& tmp, int set,
                                    const std::vector<std::string>& extra = {}, int* rc = nullptr) {
  const std::string list = tmp / ("set" + std::to_string(set) + ".txt");
  std::vector<std::string> argv = {"python3",    kImagegen,
                                   "--registry", host_port,
                                   "--set",      std::to_string(set),
                                   "--list",     list,
                                   "--work",     tmp / ("work" + std::to_string(set)),
                                   "--quiet"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::string out;
  int code = Exec(argv, &out);
  if (rc != nullptr) {
    *rc = code;
  } else {
    EXPECT_EQ(code, 0) << out;
  }
  return Lines(ReadFileToString(list));
}

// The digest and size of the biggest layer of a single-arch image in a plain registry.
std::pair<std::string, long long> BiggestLayer(const std::string& registry_url, const std::string& repo,
                                               const std::string& tag) {
  const std::string script = R"(import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1], headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
m = json.load(urllib.request.urlopen(req))
layer = max(m["layers"], key=lambda l: l["size"])
print(layer["digest"], layer["size"]))";
  std::string out;
  int rc = Exec({"python3", "-c", script, registry_url + "/v2/" + repo + "/manifests/" + tag}, &out);
  EXPECT_EQ(rc, 0) << out;
  std::istringstream in(out);
  std::pair<std::string, long long> layer;
  in >> layer.first >> layer.second;
  return layer;
}

// ---------------------------------------------------------------------------------------
// TokenRegistry

TEST(peersTokenRegistry, PushAndPullNeedCredentials) {
  TempDir tmp;
  TokenRegistry registry(tmp / "reg");
  registry.Start();
  ASSERT_TRUE(registry.running());
  EXPECT_EQ(registry.url(), "http://" + registry.host_port());
  EXPECT_EQ(registry.realm(), "http://127.0.0.1:" + std::to_string(registry.token_port()) + "/token");

  // The registry sends clients to the token server.
  CurlResult ping = Curl({"-D", "-", "-o", "/dev/null"}, registry.url() + "/v2/");
  EXPECT_EQ(ping.status, 401) << ping.output;
  EXPECT_TRUE(
      Contains(ping.output, "Bearer realm=\"" + registry.realm() + "\",service=\"" + registry.options().service + "\""))
      << ping.output;

  // Push without credentials: the anonymous token grants nothing.
  int rc = 0;
  PushImages(registry.host_port(), tmp, 1, {}, &rc);
  EXPECT_NE(rc, 0) << "anonymous push should fail";
  EXPECT_GT(registry.TokenRequestCount("user=- status=200 access=-"), 0u);
  EXPECT_EQ(registry.TokenRequestCount("user=silo"), 0u);

  // With them it works, and the token server saw the pushes.
  std::vector<std::string> refs = PushImages(registry.host_port(), tmp, 1, {"--creds", registry.creds()});
  ASSERT_GE(refs.size(), 5u) << registry.LogTail();
  EXPECT_GT(registry.TokenRequestCount("user=silo status=200"), 0u);
  EXPECT_GT(registry.TokenRequestCount(":pull,push"), 0u);
  for (const auto& line : registry.TokenRequests()) {
    EXPECT_TRUE(Contains(line, " GET /token?")) << line;
  }

  const std::string ref = registry.host_port() + "/apps/java-svc:1.0";
  std::string out;
  EXPECT_EQ(
      Exec({"skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", registry.creds(), "docker://" + ref}, &out),
      0)
      << out;
  EXPECT_TRUE(Contains(out, "application/vnd.oci.image.manifest.v1+json")) << out;
  EXPECT_NE(Exec({"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + ref}, &out), 0) << out;
  const size_t rejected_before = registry.TokenRequestCount("status=401");
  EXPECT_NE(
      Exec({"skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", "silo:wrong", "docker://" + ref}, &out), 0)
      << out;
  EXPECT_GT(registry.TokenRequestCount("status=401"), rejected_before);

  // skopeo copy out with --src-creds and back in under a new name with --dest-creds.
  const std::string layout = tmp / "oci";
  ASSERT_EQ(Exec({"skopeo", "copy", "--src-tls-verify=false", "--src-creds", registry.creds(), "docker://" + ref,
                  "oci:" + layout + ":java"},
                 &out),
            0)
      << out;
  const std::string copy = registry.host_port() + "/copies/java-svc:1.0";
  EXPECT_NE(Exec({"skopeo", "copy", "--dest-tls-verify=false", "oci:" + layout + ":java", "docker://" + copy}, &out), 0)
      << out;
  ASSERT_EQ(Exec({"skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", registry.creds(),
                  "oci:" + layout + ":java", "docker://" + copy},
                 &out),
            0)
      << out;
  EXPECT_GT(registry.TokenRequestCount("repository:copies/java-svc:pull,push"), 0u);
  std::string original;
  std::string copied;
  ASSERT_EQ(Exec({"skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", registry.creds(), "docker://" + ref},
                 &original),
            0);
  ASSERT_EQ(Exec({"skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", registry.creds(), "docker://" + copy},
                 &copied),
            0);
  EXPECT_EQ(original, copied);

  const pid_t reg_pid = registry.registry_pid();
  const pid_t tok_pid = registry.token_server_pid();
  registry.Stop();
  EXPECT_FALSE(registry.running());
  EXPECT_TRUE(Gone(reg_pid));
  EXPECT_TRUE(Gone(tok_pid));
}

TEST(peersTokenRegistry, TokensAreCountedAndReusable) {
  TempDir tmp;
  TokenRegistry registry(tmp / "reg");
  registry.Start();
  EXPECT_EQ(registry.TokenRequestCount(), 0u);
  const std::string repo_url = registry.url() + "/v2/some/repo/tags/list";

  std::string token =
      FetchToken(registry.realm(), registry.options().service, "repository:some/repo:pull,push", registry.creds());
  ASSERT_FALSE(token.empty()) << registry.LogTail();
  EXPECT_EQ(registry.TokenRequestCount(), 1u);
  // One token, many registry requests: the count moves only when a client asks again.
  for (int i = 0; i < 5; ++i) {
    CurlResult r = Curl({"-o", "/dev/null", "-H", "Authorization: Bearer " + token}, repo_url);
    EXPECT_EQ(r.status, 404) << r.output;  // authorized; the repository does not exist
  }
  EXPECT_EQ(registry.TokenRequestCount(), 1u);
  std::vector<std::string> lines = registry.TokenRequests();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(Contains(lines[0], "1 GET /token?service=")) << lines[0];
  EXPECT_TRUE(Contains(lines[0], "user=silo status=200 access=repository:some/repo:pull,push")) << lines[0];

  // A token is for its repository only, and a tampered one is refused.
  CurlResult other =
      Curl({"-o", "/dev/null", "-H", "Authorization: Bearer " + token}, registry.url() + "/v2/other/repo/tags/list");
  EXPECT_EQ(other.status, 401) << other.output;
  std::string tampered = token;
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  CurlResult bad = Curl({"-o", "/dev/null", "-H", "Authorization: Bearer " + tampered}, repo_url);
  EXPECT_EQ(bad.status, 401) << bad.output;

  // Anonymous tokens grant nothing; the registry still says 401.
  std::string anonymous = FetchToken(registry.realm(), registry.options().service, "repository:some/repo:pull", "");
  ASSERT_FALSE(anonymous.empty());
  EXPECT_EQ(Curl({"-o", "/dev/null", "-H", "Authorization: Bearer " + anonymous}, repo_url).status, 401);
  EXPECT_EQ(registry.TokenRequestCount("user=- status=200 access=-"), 1u);
  // Wrong credentials: 401 from the token server itself.
  EXPECT_EQ(FetchToken(registry.realm(), registry.options().service, "repository:some/repo:pull", "silo:nope"), "");
  EXPECT_EQ(registry.TokenRequestCount("user=silo status=401"), 1u);
  EXPECT_EQ(registry.TokenRequestCount(), 3u);
}

TEST(peersTokenRegistry, AnonymousPullOption) {
  TempDir tmp;
  TokenRegistry::Options options;
  options.anonymous_pull = true;
  options.username = "alice";
  options.password = "p@ss word";
  TokenRegistry registry(tmp / "reg", options);
  registry.Start();
  std::vector<std::string> refs = PushImages(registry.host_port(), tmp, 1, {"--creds", registry.creds()});
  ASSERT_FALSE(refs.empty());
  std::string out;
  EXPECT_EQ(Exec({"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + refs.front()}, &out), 0) << out;
  EXPECT_GT(registry.TokenRequestCount("user=- status=200 access=repository:"), 0u);
  // Anonymous push is still refused (the token carries pull only).
  EXPECT_NE(Exec({"skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "docker://" + refs.front(),
                  "docker://" + registry.host_port() + "/anon/copy:1"},
                 &out),
            0)
      << out;
}

TEST(peersTokenRegistry, EveryKeyIdModeVerifiesAndForeignKeysDoNot) {
  for (const char* mode : {"kid", "x5c", "both"}) {
    SCOPED_TRACE(mode);
    TempDir tmp;
    TokenRegistry::Options options;
    options.key_id_mode = mode;
    TokenRegistry registry(tmp / "reg", options);
    registry.Start();
    const std::string repo_url = registry.url() + "/v2/lib/x/tags/list";
    std::string token =
        FetchToken(registry.realm(), registry.options().service, "repository:lib/x:pull", registry.creds());
    ASSERT_FALSE(token.empty());
    EXPECT_EQ(Curl({"-o", "/dev/null", "-H", "Authorization: Bearer " + token}, repo_url).status, 404)
        << registry.LogTail();

    // A token server with the same issuer and service but a key the registry does not trust.
    const std::string key = tmp / "foreign.key";
    const std::string cert = tmp / "foreign.crt";
    std::string out;
    ASSERT_EQ(Exec({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days",
                    "1", "-subj", "/CN=" + registry.options().issuer},
                   &out),
              0)
        << out;
    Process::Options po;
    po.argv = {"python3",       TokenServerScript(),
               "--port",        "0",
               "--user",        registry.username(),
               "--password",    registry.password(),
               "--key",         key,
               "--cert",        cert,
               "--issuer",      registry.options().issuer,
               "--service",     registry.options().service,
               "--key-id-mode", mode};
    po.stdout_path = po.stderr_path = tmp / "foreign.log";
    Process foreign(po);
    int port = 0;
    for (int i = 0; i < 500 && port == 0; ++i) {
      std::string log = ReadFileToString(tmp / "foreign.log");
      size_t at = log.find("listening on 127.0.0.1:");
      if (at != std::string::npos) port = std::atoi(log.c_str() + at + 23);
      std::this_thread::sleep_for(milliseconds(20));
    }
    ASSERT_GT(port, 0) << ReadFileToString(tmp / "foreign.log");
    std::string forged = FetchToken("http://127.0.0.1:" + std::to_string(port) + "/token", registry.options().service,
                                    "repository:lib/x:pull", registry.creds());
    ASSERT_FALSE(forged.empty());
    EXPECT_EQ(Curl({"-o", "/dev/null", "-H", "Authorization: Bearer " + forged}, repo_url).status, 401);
    const pid_t pid = foreign.pid();
    foreign.Stop();
    EXPECT_TRUE(Gone(pid));
  }
}

TEST(peersTokenRegistry, RestartKeepsStorageAndTokenLog) {
  TempDir tmp;
  TokenRegistry registry(tmp / "reg");
  registry.Start();
  std::vector<std::string> refs = PushImages(registry.host_port(), tmp, 1, {"--creds", registry.creds()});
  ASSERT_FALSE(refs.empty());
  const int port = registry.port();
  const size_t tokens = registry.TokenRequestCount();
  const pid_t tok_pid = registry.token_server_pid();
  registry.Stop();
  EXPECT_TRUE(Gone(tok_pid));
  registry.Start();
  EXPECT_EQ(registry.port(), port);
  std::string out;
  EXPECT_EQ(
      Exec({"skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", registry.creds(), "docker://" + refs[0]},
           &out),
      0)
      << out << registry.LogTail();
  EXPECT_GT(registry.TokenRequestCount(), tokens);
}

TEST(peersTokenRegistry, TlsRegistry) {
  TempDir tmp;
  TokenRegistry::Options options;
  options.tls = true;
  TokenRegistry registry(tmp / "reg", options);
  registry.Start();
  EXPECT_EQ(registry.url(), "https://" + registry.host_port());
  ASSERT_FALSE(registry.cert_dir().empty());
  std::vector<std::string> refs =
      PushImages(registry.host_port(), tmp, 1,
                 {"--creds", registry.creds(), "--tls-verify", "true", "--cert-dir", registry.cert_dir()});
  ASSERT_FALSE(refs.empty());
  std::string out;
  EXPECT_EQ(Exec({"skopeo", "inspect", "--raw", "--cert-dir", registry.cert_dir(), "--creds", registry.creds(),
                  "docker://" + refs[0]},
                 &out),
            0)
      << out;
}

// ---------------------------------------------------------------------------------------
// fault_proxy.py

// fault_proxy.py in front of an upstream, on a port it picks, stopped by pid at the end.
// A plain registry holding imagegen's set 1, and the biggest layer of apps/java-svc:1.0.
class peersFaultProxy : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = std::make_unique<Registry>(tmp_ / "registry");
    registry_->Start();
    refs_ = PushImages(registry_->host_port(), tmp_, 1);
    ASSERT_FALSE(refs_.empty());
    std::tie(blob_, blob_size_) = BiggestLayer(registry_->url(), "apps/java-svc", "1.0");
    ASSERT_EQ(blob_.rfind("sha256:", 0), 0u) << blob_;
    ASSERT_GT(blob_size_, 100000);
  }
  std::string BlobPath() const { return "/v2/apps/java-svc/blobs/" + blob_; }

  TempDir tmp_;
  std::unique_ptr<Registry> registry_;
  std::vector<std::string> refs_;
  std::string blob_;
  long long blob_size_ = 0;
};

TEST_F(peersFaultProxy, PassesThroughPullsRangesAndKeepAlive) {
  FaultProxy proxy(tmp_ / "proxy", registry_->url(), {});
  // skopeo pulls a multi-arch image through it.
  std::string out;
  ASSERT_EQ(Exec({"skopeo", "copy", "--all", "--src-tls-verify=false",
                  "docker://" + proxy.host_port() + "/library/debian:12", "oci:" + tmp_ / "oci" + ":debian"},
                 &out),
            0)
      << out << proxy.Output();
  EXPECT_GT(proxy.Log().size(), 5u);
  EXPECT_EQ(CountContaining(proxy.Log(), "fault=none"), proxy.Log().size());

  // A Range request gets 206 and exactly those bytes.
  const std::string whole = tmp_ / "whole";
  const std::string part = tmp_ / "part";
  CurlResult r = Curl({"-o", whole}, proxy.url() + BlobPath());
  ASSERT_EQ(r.exit, 0) << r.output;
  EXPECT_EQ(r.size, blob_size_);
  EXPECT_EQ(Sha256File(whole), blob_);
  r = Curl({"-o", part, "-r", "1000-1999"}, proxy.url() + BlobPath());
  ASSERT_EQ(r.exit, 0) << r.output;
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(ReadFileToString(part), ReadFileToString(whole).substr(1000, 1000));
  EXPECT_EQ(CountContaining(proxy.Log(), "range=bytes=1000-1999 fault=none delay_ms=0 status=206 bytes=1000/1000"), 1u);

  // Three requests in one curl run share one client connection.
  const size_t before = proxy.Log().size();
  std::vector<std::string> argv = {"curl",
                                   "-sS",
                                   "-o",
                                   "/dev/null",
                                   "-o",
                                   "/dev/null",
                                   "-o",
                                   "/dev/null",
                                   proxy.url() + "/v2/",
                                   proxy.url() + BlobPath(),
                                   proxy.url() + "/v2/"};
  ASSERT_EQ(Exec(argv, &out), 0) << out;
  std::vector<std::string> log = proxy.Log();
  ASSERT_GE(log.size(), before + 3);
  std::map<std::string, int> conns;
  for (size_t i = log.size() - 3; i < log.size(); ++i) {
    const size_t at = log[i].find(" conn=");
    conns[log[i].substr(at, log[i].find(' ', at + 1) - at)]++;
  }
  EXPECT_EQ(conns.size(), 1u) << "expected one connection for three requests";
}

TEST_F(peersFaultProxy, FailFirstThenCurlRetrySucceeds) {
  FaultProxy proxy(tmp_ / "proxy", registry_->url(),
                   {"--fail-first", "3", "--status503", "0.5", "--status429", "0.5", "--retry-after", "0",
                    "--path-regex", "/blobs/"});
  const std::string file = tmp_ / "blob";
  // The ping is not a blob: it passes untouched.
  EXPECT_EQ(Curl({"-o", "/dev/null"}, proxy.url() + "/v2/").status, 200);
  CurlResult r = Curl({"-o", file, "--retry", "5", "--retry-delay", "1"}, proxy.url() + BlobPath());
  EXPECT_EQ(r.exit, 0) << r.output;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Sha256File(file), blob_);
  std::vector<std::string> log = proxy.Log();
  ASSERT_EQ(log.size(), 5u);
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_TRUE(Contains(log[i], "fault=503 delay_ms=0 status=503") ||
                Contains(log[i], "fault=429 delay_ms=0 status=429"))
        << log[i];
  }
  EXPECT_TRUE(Contains(log[4], "fault=none delay_ms=0 status=200 bytes=" + std::to_string(blob_size_))) << log[4];
  // Past the first three, the path stays clean.
  EXPECT_EQ(Curl({"-o", "/dev/null"}, proxy.url() + BlobPath()).exit, 0);
}

TEST_F(peersFaultProxy, RandomFaultsRepeatedRequestsEventuallySucceed) {
  FaultProxy proxy(tmp_ / "proxy", registry_->url(),
                   {"--drop", "0.15", "--truncate", "0.15", "--status429", "0.15", "--status503", "0.15",
                    "--retry-after", "0", "--seed", "42"});
  const std::string file = tmp_ / "blob";
  int good = 0;
  int bad = 0;
  for (int i = 0; i < 40; ++i) {
    std::filesystem::remove(file);
    CurlResult r = Curl({"-o", file, "--fail"}, proxy.url() + BlobPath());
    if (r.exit == 0 && Sha256File(file) == blob_) {
      ++good;
    } else {
      ++bad;
    }
  }
  EXPECT_GT(good, 5);
  EXPECT_GT(bad, 5);
  std::vector<std::string> log = proxy.Log();
  EXPECT_EQ(log.size(), 40u);
  for (const char* fault : {"fault=drop", "fault=truncate", "fault=429", "fault=503", "fault=none"}) {
    EXPECT_GT(CountContaining(log, fault), 0u) << fault;
  }
  EXPECT_EQ(static_cast<size_t>(good), CountContaining(log, "fault=none"));

  // curl --retry --retry-all-errors rides it out too (a fresh proxy, same seed).
  FaultProxy again(tmp_ / "proxy2", registry_->url(),
                   {"--drop", "0.15", "--truncate", "0.15", "--status429", "0.15", "--status503", "0.15",
                    "--retry-after", "0", "--seed", "42"});
  CurlResult r =
      Curl({"-o", file, "--retry", "20", "--retry-all-errors", "--retry-delay", "1"}, again.url() + BlobPath());
  EXPECT_EQ(r.exit, 0) << r.output;
  EXPECT_EQ(Sha256File(file), blob_);
}

TEST_F(peersFaultProxy, TruncationIsObservable) {
  FaultProxy proxy(tmp_ / "proxy", registry_->url(), {"--truncate", "1", "--truncate-fraction", "0.5"});
  const std::string file = tmp_ / "short";
  CurlResult r = Curl({"-o", file}, proxy.url() + BlobPath());
  EXPECT_EQ(r.exit, 18) << r.output;  // CURLE_PARTIAL_FILE
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.size, blob_size_ / 2);
  EXPECT_EQ(static_cast<long long>(fs::file_size(file)), blob_size_ / 2);
  EXPECT_NE(Sha256File(file), blob_);
  // A HEAD has no body to cut: the connection is dropped instead.
  r = Curl({"-I", "-o", "/dev/null"}, proxy.url() + BlobPath());
  EXPECT_EQ(r.exit, 52) << r.output;  // CURLE_GOT_NOTHING
  std::vector<std::string> log = proxy.Log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_TRUE(Contains(log[0], "fault=truncate delay_ms=0 status=200 bytes=" + std::to_string(blob_size_ / 2) + "/" +
                                   std::to_string(blob_size_)))
      << log[0];
  EXPECT_TRUE(Contains(log[1], "HEAD")) << log[1];
  EXPECT_TRUE(Contains(log[1], "fault=truncate->drop")) << log[1];
}

TEST_F(peersFaultProxy, DropThrottleUnavailableAndDelay) {
  {
    FaultProxy proxy(tmp_ / "drop", registry_->url(), {"--drop", "1"});
    CurlResult r = Curl({"-o", "/dev/null"}, proxy.url() + BlobPath());
    EXPECT_EQ(r.exit, 52) << r.output;
    EXPECT_TRUE(Contains(proxy.Log().at(0), "fault=drop delay_ms=0 status=- bytes=-")) << proxy.Log().at(0);
  }
  {
    FaultProxy proxy(tmp_ / "429", registry_->url(), {"--status429", "1", "--retry-after", "7"});
    CurlResult r = Curl({"-D", "-", "-o", "/dev/null"}, proxy.url() + BlobPath());
    EXPECT_EQ(r.status, 429);
    EXPECT_TRUE(Contains(r.output, "Retry-After: 7")) << r.output;
  }
  {
    FaultProxy proxy(tmp_ / "503", registry_->url(), {"--status503", "1"});
    CurlResult r = Curl({}, proxy.url() + BlobPath());
    EXPECT_EQ(r.status, 503);
    EXPECT_TRUE(Contains(r.output, "UNAVAILABLE")) << r.output;
  }
  {
    FaultProxy proxy(tmp_ / "delay", registry_->url(), {"--delay-ms", "400"});
    auto start = std::chrono::steady_clock::now();
    CurlResult r = Curl({"-o", "/dev/null"}, proxy.url() + "/v2/");
    EXPECT_EQ(r.status, 200);
    EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(400));
    EXPECT_TRUE(Contains(proxy.Log().at(0), "fault=none delay_ms=400 status=200")) << proxy.Log().at(0);
  }
}

TEST_F(peersFaultProxy, PushesThroughTheProxy) {
  // Uploads (POST, chunked PATCH, PUT) pass through, and the registry's Location headers
  // point back at the proxy.
  FaultProxy proxy(tmp_ / "proxy", registry_->url(), {});
  std::string out;
  ASSERT_EQ(Exec({"skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                  "docker://" + registry_->host_port() + "/apps/java-svc:1.0",
                  "docker://" + proxy.host_port() + "/via/proxy:1"},
                 &out),
            0)
      << out << proxy.Output();
  EXPECT_GT(CountContaining(proxy.Log(), "PATCH"), 0u);
  EXPECT_GT(CountContaining(proxy.Log(), "PUT"), 0u);
  EXPECT_EQ(Curl({"-o", "/dev/null", "-I", "-H", "Accept: application/vnd.oci.image.manifest.v1+json"},
                 registry_->url() + "/v2/via/proxy/manifests/1")
                .status,
            200);
}

TEST(peersFaultProxyUpstream, HttpsUpstream) {
  TempDir tmp;
  Registry::Options options;
  options.tls = true;
  Registry registry(tmp / "registry", options);
  registry.Start();
  FaultProxy proxy(tmp / "proxy", registry.url(), {"--upstream-ca", registry.ca_cert_path()});
  CurlResult r = Curl({"-o", "/dev/null"}, proxy.url() + "/v2/");
  EXPECT_EQ(r.status, 200) << r.output << proxy.Output();
  const pid_t pid = proxy.pid();
  proxy.Stop();
  EXPECT_TRUE(Gone(pid));
}

TEST(peersFaultProxyUpstream, TokenRegistryBehindProxy) {
  // Token auth through the proxy: the realm still points at the token server.
  TempDir tmp;
  TokenRegistry registry(tmp / "reg");
  registry.Start();
  std::vector<std::string> refs = PushImages(registry.host_port(), tmp, 1, {"--creds", registry.creds()});
  ASSERT_FALSE(refs.empty());
  FaultProxy proxy(tmp / "proxy", registry.url(), {});
  std::string out;
  EXPECT_EQ(Exec({"skopeo", "copy", "--src-tls-verify=false", "--src-creds", registry.creds(),
                  "docker://" + proxy.host_port() + "/apps/java-svc:1.0", "oci:" + tmp / "oci" + ":java"},
                 &out),
            0)
      << out;
  EXPECT_NE(
      Exec({"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + proxy.host_port() + "/apps/java-svc:1.0"},
           &out),
      0);
}

}  // namespace
}  // namespace silo::testing
