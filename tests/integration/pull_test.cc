// `silo pull` against the real CNCF registry on 127.0.0.1: auth, TLS, platforms,
// integrity failures, interruption. Images come from tests/support/imagegen.py.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "tests/integration/silo_cli.h"
#include "tests/support/imagegen.h"
#include "tests/support/process.h"
#include "tests/support/registry.h"
#include "tests/support/store_test.h"
#include "transfer/http.h"
#include "util/hash.h"

namespace silo::testing {
namespace {

namespace fs = std::filesystem;

// Pushes imagegen's small set into `registry`; returns the references.
std::vector<std::string> PushImages(const Registry& registry, const std::string& work) {
  std::vector<std::string> extra;
  if (registry.options().htpasswd || !registry.options().auth_yaml.empty()) {
    extra.insert(extra.end(), {"--creds", registry.creds()});
  }
  if (registry.options().tls) extra.insert(extra.end(), {"--cert-dir", registry.cert_dir(), "--tls-verify", "true"});
  return PushImageSet(registry.host_port(), work, extra);
}

// skopeo's view of an image's digest (the registry's bytes, hashed).
std::string SkopeoDigest(const Registry& registry, const std::string& ref, const std::string& extra_creds = "") {
  std::vector<std::string> argv = {"skopeo", "inspect", "--raw"};
  if (registry.options().tls) {
    argv.insert(argv.end(), {"--cert-dir", registry.cert_dir()});
  } else {
    argv.push_back("--tls-verify=false");
  }
  if (!extra_creds.empty()) argv.insert(argv.end(), {"--creds", extra_creds});
  argv.push_back("docker://" + ref);
  std::string out;
  if (RunCommand(argv, &out) != 0) throw std::runtime_error("skopeo inspect failed: " + out);
  return "sha256:" + ToHex(Sha256::Of(AsBytes(out)));
}

class PullTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_tmp_ = new TempDir();
    registry_ = new Registry(*suite_tmp_ / "registry");
    registry_->Start();
    refs_ = new std::vector<std::string>(PushImages(*registry_, *suite_tmp_ / "gen"));
  }
  static void TearDownTestSuite() {
    delete registry_;
    delete refs_;
    delete suite_tmp_;
  }

  CliResult Silo(std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"--plain-http", registry_->host_port(), "--failed-file", tmp_ / "failed.txt"});
    return RunSilo(tmp_ / "store", args);
  }
  CliResult Plain(const std::vector<std::string>& args) { return RunSilo(tmp_ / "store", args); }
  std::string ListFile(const std::vector<std::string>& refs) {
    std::string text = "# images\n\n";
    for (const auto& r : refs) text += r + "\n";
    std::string path = tmp_ / "list.txt";
    WriteFile(path, text);
    return path;
  }

  static TempDir* suite_tmp_;
  static Registry* registry_;
  static std::vector<std::string>* refs_;
  TempDir tmp_;
};
TempDir* PullTest::suite_tmp_ = nullptr;
Registry* PullTest::registry_ = nullptr;
std::vector<std::string>* PullTest::refs_ = nullptr;

TEST_F(PullTest, PullsEveryImageByteExactAndRepullFetchesNoBlob) {
  ASSERT_GE(refs_->size(), 6u);
  CliResult r = Silo({"pull", "-f", ListFile(*refs_), "-j", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const auto& ref : *refs_) {
    std::string want = SkopeoDigest(*registry_, ref);
    EXPECT_NE(r.out.find(want + " " + ref), std::string::npos) << ref << "\n" << r.out;
    // Recorded under a ref, stored byte-exact.
    std::string name = "image/" + ref;
    CliResult got = Plain({"ref", "get", name});
    EXPECT_EQ(Trim(got.out), want) << name;
  }
  EXPECT_NE(r.err.find("0 failed"), std::string::npos) << r.err;
  EXPECT_EQ(Plain({"fsck"}).code, 0);
  CliResult images = Plain({"images", "--json"});
  EXPECT_NE(images.out.find("\"reference\":\"" + (*refs_)[0] + "\""), std::string::npos) << images.out;
  EXPECT_NE(images.out.find("linux/arm64"), std::string::npos);

  CliResult again = Silo({"pull", "-f", ListFile(*refs_)});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("blobs: 0 fetched"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find(" " + std::to_string(refs_->size()) + " requests, 0 retried"), std::string::npos)
      << again.err;
  EXPECT_FALSE(fs::exists(tmp_ / "failed.txt"));
}

TEST_F(PullTest, DockerStyleReferencesAndSourceRegistry) {
  // "-s REGISTRY" supplies the registry for references that name none.
  std::string ref = (*refs_)[0];
  std::string short_ref = ref.substr(registry_->host_port().size() + 1);  // library/debian:12
  CliResult r = Silo({"pull", "-s", registry_->host_port(), short_ref});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Trim(Plain({"ref", "get", "image/" + ref}).out), SkopeoDigest(*registry_, ref));
  // By digest.
  std::string digest = SkopeoDigest(*registry_, ref);
  std::string by_digest = registry_->host_port() + "/library/debian@" + digest;
  CliResult d = Silo({"pull", by_digest});
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_EQ(Trim(Plain({"ref", "get", "image/" + by_digest}).out), digest);
  // Malformed references are usage errors.
  EXPECT_EQ(Silo({"pull", "UPPER/Case"}).code, 2);
}

TEST_F(PullTest, PlatformFilterKeepsTheIndexByteExactAndFetchesOnlyThosePlatforms) {
  std::string ref = (*refs_)[0];  // a multi-arch index
  CliResult r = Silo({"pull", "--platform", "linux/arm64", ref});
  ASSERT_EQ(r.code, 0) << r.err;
  std::string index_digest = SkopeoDigest(*registry_, ref);
  CliResult raw = Plain({"cat", index_digest});
  ASSERT_EQ(raw.code, 0);
  EXPECT_EQ("sha256:" + ToHex(Sha256::Of(AsBytes(raw.out))), index_digest);
  CliResult images = Plain({"images", "--json"});
  EXPECT_NE(images.out.find("\"platforms\":[\"linux/arm64"), std::string::npos) << images.out;
  EXPECT_EQ(images.out.find("linux/amd64"), std::string::npos) << images.out;

  // Hangar's lists; an image without the platform warns, or fails with --no-arch-os-fail.
  CliResult warn = Silo({"pull", "--arch", "s390x", "--os", "linux", ref});
  EXPECT_EQ(warn.code, 0);
  EXPECT_NE(warn.err.find("warning"), std::string::npos) << warn.err;
  CliResult fail = Silo({"pull", "--arch", "s390x", "--no-arch-os-fail", ref});
  EXPECT_EQ(fail.code, 1);
  EXPECT_NE(fail.err.find("none of the platforms"), std::string::npos) << fail.err;
  EXPECT_EQ(Trim(ReadFileToString(tmp_ / "failed.txt")), ref);
}

TEST_F(PullTest, DryRunListsBlobsAndStoresNothing) {
  ASSERT_EQ(Plain({"put", SILO_SOURCE_DIR "/README.md"}).code, 0);  // the store must exist
  CliResult r = Silo({"pull", "--dry-run", (*refs_)[1]});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("  fetch sha256:"), std::string::npos) << r.out;
  EXPECT_EQ(Trim(Plain({"ref", "ls", "image/"}).out), "");
}

TEST_F(PullTest, MissingImagesFailCleanlyAndGoToTheFailedList) {
  std::string missing = registry_->host_port() + "/nothing/here:1";
  CliResult r = Silo({"pull", (*refs_)[1], missing});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("manifest unknown"), std::string::npos) << r.err;
  EXPECT_EQ(Trim(ReadFileToString(tmp_ / "failed.txt")), missing);
  // The failed list is accepted back.
  CliResult retry = Silo({"pull", "-f", tmp_ / "failed.txt"});
  EXPECT_EQ(retry.code, 1);
  // A registry that is not there: connection errors after retries, no crash.
  CliResult down = RunSilo(tmp_ / "store", {"pull", "--plain-http", "127.0.0.1:1", "--retries", "1", "--failed-file",
                                            tmp_ / "f2.txt", "127.0.0.1:1/x/y:1"});
  EXPECT_EQ(down.code, 1);
  EXPECT_NE(down.err.find("giving up after 2 attempt(s)"), std::string::npos) << down.err;
}

// RocksDB writes a new MANIFEST file each time a store is opened for writing: a re-pull
// that finds everything stored must leave the same ones.
std::set<std::string> RocksManifests(const fs::path& store) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(store)) {
    std::string n = e.path().filename();
    if (n.starts_with("MANIFEST-")) names.insert(n);
  }
  return names;
}

TEST_F(PullTest, ARepullOpensTheStoreForWritingOnlyWhenATagMovedOrAPlatformIsMissing) {
  std::string ref = (*refs_)[0];  // a multi-arch index
  std::string digest = SkopeoDigest(*registry_, ref);
  // One platform first: a pull of the whole index afterwards is not a no-op.
  ASSERT_EQ(Silo({"pull", "--platform", "linux/arm64", ref}).code, 0);
  CliResult full = Silo({"pull", ref});
  ASSERT_EQ(full.code, 0) << full.err;
  EXPECT_EQ(full.err.find("blobs: 0 fetched"), std::string::npos) << full.err;
  EXPECT_NE(Plain({"images", "--json"}).out.find("linux/amd64"), std::string::npos);

  // Everything stored: nothing written, same output and summary as a pull.
  auto before = RocksManifests(tmp_ / "store");
  CliResult again = Silo({"pull", ref});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find(digest + " " + ref), std::string::npos) << again.out;
  EXPECT_NE(again.err.find("1 image(s) pulled, 0 failed; blobs: 0 fetched"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find(" 1 requests"), std::string::npos) << again.err;
  EXPECT_EQ(RocksManifests(tmp_ / "store"), before);

  // A tag that moves to another image is noticed: pulled, and its ref follows.
  std::string moving = registry_->host_port() + "/moving/app:1";
  auto copy = [&](const std::string& from) {
    std::string out;
    ASSERT_EQ(RunCommand({"skopeo", "copy", "-q", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
                          "docker://" + from, "docker://" + moving},
                         &out),
              0)
        << out;
  };
  copy((*refs_)[1]);
  ASSERT_EQ(Silo({"pull", moving}).code, 0);
  EXPECT_EQ(Trim(Plain({"ref", "get", "image/" + moving}).out), SkopeoDigest(*registry_, (*refs_)[1]));
  before = RocksManifests(tmp_ / "store");
  copy((*refs_)[2]);
  CliResult moved = Silo({"pull", moving});
  ASSERT_EQ(moved.code, 0) << moved.err;
  std::string now = SkopeoDigest(*registry_, (*refs_)[2]);
  EXPECT_NE(moved.out.find(now + " " + moving), std::string::npos) << moved.out;
  EXPECT_EQ(Trim(Plain({"ref", "get", "image/" + moving}).out), now);
  EXPECT_NE(RocksManifests(tmp_ / "store"), before);
  EXPECT_EQ(Plain({"fsck"}).code, 0);

  // A dry run of an image not pulled yet lists its blobs and never opens for writing.
  before = RocksManifests(tmp_ / "store");
  CliResult dry = Silo({"pull", "--dry-run", (*refs_)[3]});
  ASSERT_EQ(dry.code, 0) << dry.err;
  EXPECT_NE(dry.out.find("  fetch sha256:"), std::string::npos) << dry.out;
  EXPECT_EQ(RocksManifests(tmp_ / "store"), before);
}

// A registry whose stored bytes we tamper with.
class TamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = std::make_unique<Registry>(tmp_ / "registry");
    registry_->Start();
    refs_ = PushImages(*registry_, tmp_ / "gen");
  }
  std::string BlobPath(const std::string& digest) {
    std::string hex = digest.substr(7);
    return registry_->storage_path() + "/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex + "/data";
  }
  CliResult Silo(std::vector<std::string> args) {
    args.insert(args.begin() + 1,
                {"--plain-http", registry_->host_port(), "--failed-file", tmp_ / "failed.txt", "--retries", "1"});
    return RunSilo(tmp_ / "store", args);
  }
  TempDir tmp_;
  std::unique_ptr<Registry> registry_;
  std::vector<std::string> refs_;
};

TEST_F(TamperTest, ABlobWhoseBytesDoNotMatchItsDigestIsRefusedAndNothingIsStored) {
  // The single-arch image's largest layer gets one byte flipped on the registry's disk.
  std::string ref;
  for (const auto& r : refs_) {
    if (r.find("python-worker") != std::string::npos) ref = r;
  }
  ASSERT_FALSE(ref.empty());
  std::string manifest;
  ASSERT_EQ(RunCommand({"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + ref}, &manifest), 0);
  auto pos = manifest.rfind("\"digest\"");
  ASSERT_NE(pos, std::string::npos);
  std::string layer = manifest.substr(manifest.find("sha256:", pos), 71);
  std::string path = BlobPath(layer);
  std::string bytes = ReadFileToString(path);
  ASSERT_FALSE(bytes.empty()) << path;
  bytes[bytes.size() / 2] ^= 0x01;
  WriteFile(path, bytes);

  CliResult r = Silo({"pull", ref, refs_[0]});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(layer), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("expected " + layer), std::string::npos) << r.err;
  EXPECT_EQ(Trim(ReadFileToString(tmp_ / "failed.txt")), ref);
  EXPECT_NE(RunSilo(tmp_ / "store", {"stat", layer}).code, 0);
  EXPECT_EQ(RunSilo(tmp_ / "store", {"ref", "get", "image/" + ref}).code, 1);
  EXPECT_EQ(RunSilo(tmp_ / "store", {"ref", "get", "image/" + refs_[0]}).code, 0);  // the other image is fine
  EXPECT_EQ(RunSilo(tmp_ / "store", {"fsck"}).code, 0);
}

// mirror streams each blob to the destination while it stores it: a blob whose bytes do not
// match its digest is refused by the store and by the destination registry alike, so the
// image appears at neither; the other image of the run is mirrored whole.
TEST_F(TamperTest, MirrorOfATamperedBlobLeavesNothingAtTheDestination) {
  std::string ref;
  for (const auto& r : refs_) {
    if (r.find("python-worker") != std::string::npos) ref = r;
  }
  ASSERT_FALSE(ref.empty());
  std::string manifest;
  ASSERT_EQ(RunCommand({"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + ref}, &manifest), 0);
  auto pos = manifest.rfind("\"digest\"");
  ASSERT_NE(pos, std::string::npos);
  std::string layer = manifest.substr(manifest.find("sha256:", pos), 71);
  std::string path = BlobPath(layer);
  std::string bytes = ReadFileToString(path);
  ASSERT_FALSE(bytes.empty()) << path;
  bytes[bytes.size() / 2] ^= 0x01;
  WriteFile(path, bytes);

  Registry dest(tmp_ / "dest");
  dest.Start();
  CliResult r = Silo({"mirror", "--plain-http", dest.host_port(), ref, refs_[0], dest.host_port() + "/m"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("expected " + layer), std::string::npos) << r.err;
  EXPECT_EQ(Trim(ReadFileToString(tmp_ / "failed.txt")), ref);
  std::string at_dest = ref.substr(ref.find('/') + 1);
  std::string repo = at_dest.substr(0, at_dest.rfind(':'));
  std::string out;
  EXPECT_NE(RunCommand({"curl", "-sf", "-I", dest.url() + "/v2/m/" + repo + "/blobs/" + layer}, &out), 0) << out;
  EXPECT_NE(
      RunCommand({"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + dest.host_port() + "/m/" + at_dest},
                 &out),
      0)
      << out;
  std::string other = refs_[0].substr(refs_[0].find('/') + 1);
  EXPECT_EQ(
      RunCommand({"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + dest.host_port() + "/m/" + other},
                 &out),
      0)
      << out;
  EXPECT_NE(RunSilo(tmp_ / "store", {"stat", layer}).code, 0);
  EXPECT_EQ(RunSilo(tmp_ / "store", {"fsck"}).code, 0);
}

// A server that answers registry manifest requests with fixed bytes (what a real registry
// would refuse to store); returns its host:port.
std::string StartStaticRegistry(const TempDir& tmp, Process* process) {
  ProcessOptions o;
  o.argv = {"python3", SILO_SOURCE_DIR "/tests/support/static_registry.py", "--root", tmp / "static"};
  o.stdout_path = tmp / "static.out";
  o.stderr_path = tmp / "static.err";
  *process = Process(o);
  for (int i = 0; i < 100; ++i) {
    std::string out = ReadFileToString(o.stdout_path);
    auto pos = out.find("listening on ");
    if (pos != std::string::npos && out.find('\n', pos) != std::string::npos) {
      return Trim(out.substr(pos + 13));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("static_registry.py did not start: " + ReadFileToString(o.stderr_path));
}

TEST(PullMalformed, MalformedAndOversizedManifestsGiveClearErrors) {
  TempDir tmp;
  auto plant = [&](const std::string& repo, const std::string& body) {
    fs::create_directories(tmp / ("static/" + repo + "/manifests"));
    WriteFile(tmp / ("static/" + repo + "/manifests/1"), body);
  };
  plant("bad/json", "{\"schemaVersion\": 2, \"mediaType\": ");
  plant("bad/digest",
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:zz\",\"size\":1},\"layers\":[]}");
  plant("bad/schema1", "{\"schemaVersion\":1,\"name\":\"x\"}");
  plant("bad/array", "[1,2,3]");
  plant("bad/huge", "{\"schemaVersion\":2,\"pad\":\"" + std::string(5 << 20, 'a') + "\"}");
  Process server;
  std::string host = StartStaticRegistry(tmp, &server);
  std::string base = host + "/bad/";
  CliResult r =
      RunSilo(tmp / "store", {"pull", "--plain-http", host, "--failed-file", tmp / "failed.txt", base + "json:1",
                              base + "digest:1", base + "schema1:1", base + "array:1", base + "huge:1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("bad/json:1: manifest: not valid JSON"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("digest 'sha256:zz' is not sha256"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("schemaVersion must be 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("top level is not a JSON object"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("larger than"), std::string::npos) << r.err;
  EXPECT_EQ(Lines(ReadFileToString(tmp / "failed.txt")).size(), 5u);
  EXPECT_EQ(server.Stop(), 128 + SIGTERM);  // still serving: silo never crashed it or itself
}

TEST(PullAuth, BasicAuthFromCredsAuthfileAndCredentialHelper) {
  TempDir tmp;
  RegistryOptions o;
  o.htpasswd = true;
  Registry registry(tmp / "registry", o);
  registry.Start();
  auto refs = PushImages(registry, tmp / "gen");
  std::string ref = refs[1];
  auto pull = [&](const std::string& store, std::vector<std::string> extra,
                  const std::map<std::string, std::string>& env = {}) {
    TempDir io;
    ProcessOptions po;
    po.argv = {SILO_BINARY,     "--store",         store, "pull", "--plain-http", registry.host_port(),
               "--failed-file", tmp / "failed.txt"};
    po.argv.insert(po.argv.end(), extra.begin(), extra.end());
    po.argv.push_back(ref);
    po.env = env;
    po.stdout_path = io / "out";
    po.stderr_path = io / "err";
    Process p(po);
    CliResult r;
    r.code = p.Wait(std::chrono::minutes(2)).value_or(-1);
    r.out = ReadFileToString(po.stdout_path);
    r.err = ReadFileToString(po.stderr_path);
    return r;
  };
  // No credentials: a clear refusal.
  CliResult anon = pull(tmp / "s0", {}, {{"HOME", tmp.path()}, {"REGISTRY_AUTH_FILE", ""}});
  EXPECT_EQ(anon.code, 1);
  EXPECT_NE(anon.err.find("requires a login"), std::string::npos) << anon.err;
  // --creds
  CliResult creds = pull(tmp / "s1", {"--creds", registry.creds()});
  EXPECT_EQ(creds.code, 0) << creds.err;
  // --authfile with a base64 `auth` entry (FastSync's --pull-secret is the same flag)
  std::string auth =
      "{\"auths\":{\"" + registry.host_port() + "\":{\"auth\":\"" + transfer::Base64Encode(registry.creds()) + "\"}}}";
  WriteFile(tmp / "auth.json", auth);
  CliResult file = pull(tmp / "s2", {"--pull-secret", tmp / "auth.json"});
  EXPECT_EQ(file.code, 0) << file.err;
  // A credential helper named by credHelpers, found in PATH.
  fs::create_directories(tmp / "bin");
  std::string helper = tmp / "bin/docker-credential-silotest";
  WriteFile(helper, "#!/bin/sh\nread server\necho \"{\\\"ServerURL\\\":\\\"$server\\\",\\\"Username\\\":\\\"" +
                        registry.username() + "\\\",\\\"Secret\\\":\\\"" + registry.password() + "\\\"}\"\n");
  ::chmod(helper.c_str(), 0755);
  fs::create_directories(tmp / "home/.docker");
  WriteFile(tmp / "home/.docker/config.json", "{\"credHelpers\":{\"" + registry.host_port() + "\":\"silotest\"}}");
  std::string path = (tmp / "bin") + ":" + std::getenv("PATH");
  CliResult helped = pull(tmp / "s3", {}, {{"HOME", tmp / "home"}, {"PATH", path}, {"REGISTRY_AUTH_FILE", ""}});
  EXPECT_EQ(helped.code, 0) << helped.err;
  // Wrong password: refused with the reason.
  CliResult wrong = pull(tmp / "s4", {"--creds", registry.username() + ":nope"});
  EXPECT_EQ(wrong.code, 1);
  EXPECT_NE(wrong.err.find("access denied"), std::string::npos) << wrong.err;
}

TEST(PullTls, VerifiedWithTheTestCaOrNotVerifiedWhenAsked) {
  TempDir tmp;
  RegistryOptions o;
  o.tls = true;
  Registry registry(tmp / "registry", o);
  registry.Start();
  auto refs = PushImages(registry, tmp / "gen");
  std::string ref = refs[1];
  CliResult ok = RunSilo(tmp / "s1", {"pull", "--ca-cert", registry.ca_cert_path(), ref});
  EXPECT_EQ(ok.code, 0) << ok.err;
  CliResult untrusted = RunSilo(tmp / "s2", {"pull", "--retries", "0", "--failed-file", tmp / "f", ref});
  EXPECT_EQ(untrusted.code, 1);
  EXPECT_NE(untrusted.err.find("certificate"), std::string::npos) << untrusted.err;
  CliResult insecure = RunSilo(tmp / "s3", {"pull", "--tls-verify=false", ref});
  EXPECT_EQ(insecure.code, 0) << insecure.err;
}

}  // namespace
}  // namespace silo::testing
