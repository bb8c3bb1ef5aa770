// The pull-through cache of `silo serve --upstream` against a real CNCF registry upstream,
// with tests/support/fault_proxy.py in front of it (pass-through unless told otherwise) so
// every upstream request is counted from its log; skopeo and curl as clients.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <thread>

#include "tests/integration/serve_support.h"
#include "tests/integration/silo_cli.h"
#include "tests/support/fault_proxy.h"
#include "tests/support/imagegen.h"
#include "tests/support/process.h"
#include "tests/support/registry.h"
#include "tests/support/store_test.h"

namespace silo::testing {
namespace {

// "127.0.0.1:5000" -> "127.0.0.1_5000" (how silo serves a registry's repositories).
std::string Served(const std::string& host_port) {
  std::string s = host_port;
  s[s.rfind(':')] = '_';
  return s;
}

// "127.0.0.1:1234/apps/x:1.0" -> "apps/x:1.0"
std::string RepoAndTag(const std::string& ref) {
  return ref.substr(ref.find('/') + 1);
}

std::string SkopeoRawDigest(const std::string& ref) {
  std::string out;
  if (RunCommand({"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + ref}, &out) != 0) {
    throw std::runtime_error("skopeo inspect " + ref + " failed: " + out);
  }
  return DigestOf(out);
}

// Upstream requests in the fault proxy's log: `method` and a path containing `part`.
size_t CountRequests(const FaultProxy& fp, const std::string& method, const std::string& part) {
  size_t n = 0;
  for (const auto& line : fp.Log()) {
    std::istringstream in(line);
    std::string num, conn, m, path;
    in >> num >> conn >> m >> path;
    if (m == method && path.find(part) != std::string::npos) ++n;
  }
  return n;
}

// A metric's value from /metrics, or -1.
long Metric(const SiloServer& s, const std::string& name) {
  auto r = Curl({s.url() + "/metrics"});
  std::istringstream in(r.body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stol(line.substr(name.size() + 1));
  }
  return -1;
}

class ProxyTest : public RegistrySuite {
 protected:
  std::string store() const { return tmp_ / "store"; }
  // A fault proxy (no faults unless `args` ask) in front of the suite's registry.
  std::unique_ptr<FaultProxy> Upstream(const std::vector<std::string>& args = {}) {
    return std::make_unique<FaultProxy>(tmp_ / ("fp" + std::to_string(++proxies_)), registry_->url(), args);
  }
  // silo serve with the registry as an upstream reached through `fp`.
  std::unique_ptr<SiloServer> Serve(const FaultProxy& fp, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--upstream", registry_->host_port() + "=" + fp.url()};
    if (std::find(extra.begin(), extra.end(), "--retries") == extra.end())
      extra.insert(extra.end(), {"--retries", "1"});
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<SiloServer>(store(), tmp_ / "serve.log", args);
  }
  // The served reference of the registry's `ref` through `s`.
  std::string Through(const SiloServer& s, const std::string& ref) const {
    return s.host_port() + "/" + Served(registry_->host_port()) + "/" + RepoAndTag(ref);
  }
  // skopeo copy through the cache into an OCI layout (skopeo verifies every blob).
  int CopyThrough(const SiloServer& s, const std::string& ref, const std::string& layout, std::string* out) {
    return RunCommand(
        {"skopeo", "copy", "--src-tls-verify=false", "docker://" + Through(s, ref), "oci:" + layout + ":x"}, out);
  }
  // Pushes the file at `path` as a blob of `repo` into the suite's registry; returns its digest.
  std::string PushBlobUpstream(const std::string& repo, const std::string& path) {
    std::string digest = DigestOf(ReadFileToString(path));
    auto started = Curl({"-X", "POST", registry_->url() + "/v2/" + repo + "/blobs/uploads/"});
    EXPECT_EQ(started.status, 202) << started.body;
    std::string loc = started.headers["location"];
    if (loc.rfind("http", 0) != 0) loc = registry_->url() + loc;
    loc += (loc.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + digest;
    auto put = Curl({"-X", "PUT", "--data-binary", "@" + path, "-H", "Content-Type: application/octet-stream", loc});
    EXPECT_EQ(put.status, 201) << put.body;
    return digest;
  }

  int proxies_ = 0;
};

TEST_F(ProxyTest, SkopeoPullsThroughAndASecondCopyMakesNoUpstreamRequest) {
  auto fp = Upstream();
  auto server = Serve(*fp, {"--tag-ttl", "1h"});
  for (size_t i = 0; i < 2; ++i) {
    const std::string& ref = refs_->at(i);
    std::string out;
    ASSERT_EQ(CopyThrough(*server, ref, tmp_ / ("first" + std::to_string(i)), &out), 0) << out << server->log();
    EXPECT_EQ(SkopeoRawDigest(Through(*server, ref)), SkopeoRawDigest(ref)) << ref;
  }
  size_t blob_gets = CountRequests(*fp, "GET", "/blobs/");
  size_t requests = fp->Log().size();
  EXPECT_GT(blob_gets, 0u);
  EXPECT_GT(Metric(*server, "silo_proxy_blob_misses_total"), 0);

  // Everything again: served from the store, not one upstream request (the tags are fresh).
  for (size_t i = 0; i < 2; ++i) {
    std::string out;
    ASSERT_EQ(CopyThrough(*server, refs_->at(i), tmp_ / ("second" + std::to_string(i)), &out), 0) << out;
  }
  EXPECT_EQ(CountRequests(*fp, "GET", "/blobs/"), blob_gets);
  EXPECT_EQ(fp->Log().size(), requests);

  // What was cached is a real image in the store: ref, manifest and blobs, fsck clean.
  auto refs = RunSilo(store(), {"ref", "ls"});
  EXPECT_NE(refs.out.find("image/" + registry_->host_port() + "/" + RepoAndTag(refs_->at(0))), std::string::npos)
      << refs.out;
}

TEST_F(ProxyTest, WithTheUpstreamDownCachedImagesStillCopyAndUncachedOnesFailCleanly) {
  auto fp = Upstream();
  // TTL 0: every tag request asks the upstream first, so the fallback is exercised.
  auto server = Serve(*fp, {"--tag-ttl", "0", "--retries", "0"});
  std::string out;
  ASSERT_EQ(CopyThrough(*server, refs_->at(0), tmp_ / "warm", &out), 0) << out << server->log();
  fp->Stop();  // connection refused from now on

  out.clear();
  EXPECT_EQ(CopyThrough(*server, refs_->at(0), tmp_ / "again", &out), 0) << out << server->log();
  EXPECT_NE(server->log().find("serving the cached"), std::string::npos) << server->log();
  EXPECT_GT(Metric(*server, "silo_proxy_stale_served_total"), 0);

  out.clear();
  EXPECT_NE(CopyThrough(*server, refs_->at(1), tmp_ / "cold", &out), 0) << out;
  std::string cold = RepoAndTag(refs_->at(1));
  cold.replace(cold.rfind(':'), 1, "/manifests/");
  auto m = Curl({server->url() + "/v2/" + Served(registry_->host_port()) + "/" + cold});
  EXPECT_EQ(m.status, 502) << m.body;
  EXPECT_NE(m.body.find("\"errors\""), std::string::npos) << m.body;
  auto b = Curl({server->url() + "/v2/" + Served(registry_->host_port()) + "/x/blobs/sha256:" + std::string(64, 'a')});
  EXPECT_EQ(b.status, 502) << b.body;
  // Still serving.
  EXPECT_EQ(Curl({server->url() + "/healthz"}).status, 200);
}

TEST_F(ProxyTest, ConcurrentClientsForOneColdBlobShareOneUpstreamDownload) {
  std::string data = RandomBytes(24 << 20, 42);
  WriteFile(tmp_ / "big.bin", data);
  std::string digest = PushBlobUpstream("big/blob", tmp_ / "big.bin");
  // Every upstream blob GET waits a little, so the clients overlap with the download.
  auto fp = Upstream({"--delay-ms", "300", "--path-regex", "/blobs/"});
  auto server = Serve(*fp);
  std::string url = server->url() + "/v2/" + Served(registry_->host_port()) + "/big/blob/blobs/" + digest;
  constexpr int kClients = 8;
  std::vector<Process> clients;
  for (int i = 0; i < kClients; ++i) {
    ProcessOptions o;
    o.argv = {"curl", "-sS", "--noproxy", "*", "--fail", "-o", tmp_ / ("out" + std::to_string(i)), url};
    o.stderr_path = tmp_ / ("err" + std::to_string(i));
    clients.emplace_back(o);
  }
  for (int i = 0; i < kClients; ++i) {
    auto rc = clients[static_cast<size_t>(i)].Wait(std::chrono::minutes(2));
    ASSERT_TRUE(rc.has_value());
    EXPECT_EQ(*rc, 0) << ReadFileToString(tmp_ / ("err" + std::to_string(i)));
    EXPECT_EQ(DigestOf(ReadFileToString(tmp_ / ("out" + std::to_string(i)))), digest) << i;
  }
  EXPECT_EQ(CountRequests(*fp, "GET", "/blobs/" + digest), 1u);
  EXPECT_EQ(Metric(*server, "silo_proxy_blob_misses_total"), 1);
  // A range of the now cached blob comes from the store.
  auto r = Curl({"-H", "Range: bytes=1000-1999", url});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, data.substr(1000, 1000));
  EXPECT_EQ(CountRequests(*fp, "GET", "/blobs/" + digest), 1u);
  server->Stop();
  auto stat = RunSilo(store(), {"stat", digest});
  EXPECT_EQ(stat.code, 0) << stat.err;
}

TEST_F(ProxyTest, AnUpstreamAnswering429ServesWhatIsCachedAndFailsCleanlyForTheRest) {
  std::string out;
  {
    auto fp = Upstream();
    auto server = Serve(*fp);
    ASSERT_EQ(CopyThrough(*server, refs_->at(0), tmp_ / "warm", &out), 0) << out << server->log();
  }
  // The same store, now behind an upstream that rate-limits every request; TTL 0 makes
  // every tag request ask it first.
  auto limited = Upstream({"--status429", "1", "--retry-after", "0"});
  auto server = Serve(*limited, {"--tag-ttl", "0", "--retries", "0"});
  out.clear();
  EXPECT_EQ(CopyThrough(*server, refs_->at(0), tmp_ / "again", &out), 0) << out << server->log();
  EXPECT_GT(CountRequests(*limited, "HEAD", "/manifests/"), 0u);
  EXPECT_NE(server->log().find("429"), std::string::npos) << server->log();
  std::string cold = RepoAndTag(refs_->at(1));
  cold.replace(cold.rfind(':'), 1, "/manifests/");
  auto m = Curl({server->url() + "/v2/" + Served(registry_->host_port()) + "/" + cold});
  EXPECT_EQ(m.status, 502) << m.body;
  EXPECT_NE(m.body.find("\"errors\""), std::string::npos) << m.body;
  EXPECT_EQ(Curl({server->url() + "/healthz"}).status, 200);
}

TEST_F(ProxyTest, AClientThatDisconnectsDoesNotStopTheDownload) {
  std::string data = RandomBytes(16 << 20, 7);
  WriteFile(tmp_ / "big.bin", data);
  std::string digest = PushBlobUpstream("gone/blob", tmp_ / "big.bin");
  auto fp = Upstream();
  auto server = Serve(*fp);
  std::string url = server->url() + "/v2/" + Served(registry_->host_port()) + "/gone/blob/blobs/" + digest;
  // The client reads a little and goes away.
  std::string sh_out;
  RunCommand({"bash", "-c", "curl -sS --noproxy '*' '" + url + "' | head -c 1000 > '" + (tmp_ / "part") + "'"},
             &sh_out);
  EXPECT_EQ(ReadFileToString(tmp_ / "part"), data.substr(0, 1000));
  // The download goes on and commits (bounded wait).
  for (int i = 0; i < 600 && Metric(*server, "silo_proxy_filled_bytes_total") < static_cast<long>(data.size()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(Metric(*server, "silo_proxy_filled_bytes_total"), static_cast<long>(data.size())) << server->log();
  // Served whole from the store, with no second upstream download.
  auto r = Curl({url});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(DigestOf(r.body), digest);
  EXPECT_EQ(CountRequests(*fp, "GET", "/blobs/" + digest), 1u);
}

TEST_F(ProxyTest, ATagIsRecheckedOnlyAfterItsTtl) {
  // The upstream tag first names image 0, then image 1.
  std::string tagged = registry_->host_port() + "/ttl/app:live";
  std::string out;
  ASSERT_EQ(RunCommand({"skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                        "docker://" + refs_->at(0), "docker://" + tagged},
                       &out),
            0)
      << out;
  std::string first = SkopeoRawDigest(tagged);
  auto fp = Upstream();
  std::string manifest_url;
  {
    auto server = Serve(*fp, {"--tag-ttl", "1h"});
    manifest_url = "/v2/" + Served(registry_->host_port()) + "/ttl/app/manifests/live";
    auto a = Curl({server->url() + manifest_url});
    ASSERT_EQ(a.status, 200) << a.body;
    EXPECT_EQ(a.headers["docker-content-digest"], first);
    ASSERT_EQ(RunCommand({"skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                          "docker://" + refs_->at(1), "docker://" + tagged},
                         &out),
              0)
        << out;
    ASSERT_NE(SkopeoRawDigest(tagged), first);
    size_t manifest_requests = CountRequests(*fp, "HEAD", "/manifests/") + CountRequests(*fp, "GET", "/manifests/");
    // Within the TTL: the cached digest, and no upstream call.
    auto b = Curl({server->url() + manifest_url});
    EXPECT_EQ(b.headers["docker-content-digest"], first);
    EXPECT_EQ(CountRequests(*fp, "HEAD", "/manifests/") + CountRequests(*fp, "GET", "/manifests/"), manifest_requests);
  }
  // The same store with a TTL that has passed (0: always recheck): the new digest.
  auto server = Serve(*fp, {"--tag-ttl", "0"});
  auto c = Curl({server->url() + manifest_url});
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(c.headers["docker-content-digest"], SkopeoRawDigest(tagged));
  EXPECT_EQ(DigestOf(c.body), SkopeoRawDigest(tagged));
  EXPECT_GE(CountRequests(*fp, "HEAD", "/manifests/live"), 1u);
  EXPECT_EQ(Metric(*server, "silo_proxy_tag_refreshes_total"), 1);
}

TEST_F(ProxyTest, ABlobWithTheWrongDigestUpstreamIsRefusedAndNothingIsStored) {
  // A registry that serves whatever bytes it is given (the CNCF registry would refuse them).
  std::string small = RandomBytes(1000, 1), large = RandomBytes(6 << 20, 2);
  std::string small_digest = DigestOf(small), large_digest = DigestOf(large);
  std::filesystem::create_directories(tmp_ / "static/bad/app/blobs");
  WriteFile(tmp_ / ("static/bad/app/blobs/" + small_digest), RandomBytes(1000, 3));
  WriteFile(tmp_ / ("static/bad/app/blobs/" + large_digest), RandomBytes(6 << 20, 4));
  ProcessOptions o;
  o.argv = {"python3", SILO_SOURCE_DIR "/tests/support/static_registry.py", "--root", tmp_ / "static"};
  o.stdout_path = tmp_ / "static.out";
  o.stderr_path = tmp_ / "static.err";
  Process static_registry(o);
  std::string host;
  for (int i = 0; i < 100 && host.empty(); ++i) {
    std::string text = ReadFileToString(o.stdout_path);
    if (auto p = text.find("listening on "); p != std::string::npos && text.find('\n', p) != std::string::npos) {
      host = text.substr(p + 13, text.find('\n', p) - p - 13);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ASSERT_FALSE(host.empty()) << ReadFileToString(o.stderr_path);
  SiloServer server(store(), tmp_ / "serve.log", {"--upstream", host + "=http://" + host, "--retries", "0"});
  std::string base = server.url() + "/v2/" + Served(host) + "/bad/app/blobs/";
  // A small blob is verified before the answer: a clean error.
  auto r = Curl({base + small_digest});
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_NE(r.body.find("\"errors\""), std::string::npos) << r.body;
  // A large one streams; the last byte is held until the digest verifies, so the client
  // never gets a whole wrong body (curl reports the cut-short transfer).
  std::string err;
  int rc = RunCommand({"curl", "-sS", "--noproxy", "*", "-o", tmp_ / "large.out", base + large_digest}, &err);
  EXPECT_NE(rc, 0) << err;
  EXPECT_LT(ReadFileToString(tmp_ / "large.out").size(), large.size());
  EXPECT_EQ(Curl({server.url() + "/healthz"}).status, 200);
  server.Stop();
  EXPECT_NE(RunSilo(store(), {"stat", small_digest}).code, 0);
  EXPECT_NE(RunSilo(store(), {"stat", large_digest}).code, 0);
  auto fsck = RunSilo(store(), {"fsck"});
  EXPECT_EQ(fsck.code, 0) << fsck.out << fsck.err;
}

TEST_F(ProxyTest, EvictionUnderASmallCapKeepsExplicitlyPulledImages) {
  // Image 0 pulled explicitly (not through the cache).
  auto pull = RunSilo(
      store(), {"pull", "--plain-http", registry_->host_port(), "--failed-file", tmp_ / "failed.txt", refs_->at(0)});
  ASSERT_EQ(pull.code, 0) << pull.err;
  auto fp = Upstream();
  auto server = Serve(*fp, {"--cache-max-size", "1", "--cache-interval", "1s", "--cache-gc-grace", "0s"});
  std::string out;
  ASSERT_EQ(CopyThrough(*server, refs_->at(1), tmp_ / "p1", &out), 0) << out << server->log();
  ASSERT_EQ(CopyThrough(*server, refs_->at(2), tmp_ / "p2", &out), 0) << out << server->log();
  // Wait (bounded) for the background pass to evict both cached images.
  for (int i = 0; i < 300 && Metric(*server, "silo_proxy_evicted_images_total") < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GE(Metric(*server, "silo_proxy_evicted_images_total"), 2) << server->log();
  EXPECT_GE(Metric(*server, "silo_proxy_gc_runs_total"), 1);
  // The explicitly pulled image is whole: it copies with the upstream gone.
  fp->Stop();
  out.clear();
  EXPECT_EQ(CopyThrough(*server, refs_->at(0), tmp_ / "kept", &out), 0) << out << server->log();
  server->Stop();
  auto refs = RunSilo(store(), {"ref", "ls"});
  EXPECT_NE(refs.out.find("image/" + registry_->host_port() + "/" + RepoAndTag(refs_->at(0))), std::string::npos)
      << refs.out;
  EXPECT_EQ(refs.out.find("image/" + registry_->host_port() + "/" + RepoAndTag(refs_->at(1))), std::string::npos)
      << refs.out;
  auto fsck = RunSilo(store(), {"fsck"});
  EXPECT_EQ(fsck.code, 0) << fsck.out << fsck.err;
}

}  // namespace
}  // namespace silo::testing
