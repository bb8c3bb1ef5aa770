// `silo pull` when things go wrong: the registry dies mid-blob, the user presses Ctrl-C, a
// proxy drops and truncates responses and answers 429/503, tokens are required.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <regex>
#include <set>
#include <thread>

#include "tests/integration/silo_cli.h"
#include "tests/support/fault_proxy.h"
#include "tests/support/imagegen.h"
#include "tests/support/process.h"
#include "tests/support/registry.h"
#include "tests/support/release_image.h"
#include "tests/support/store_test.h"
#include "tests/support/token_registry.h"
#include "util/hash.h"

namespace silo::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

std::string Digest(std::string_view data) {
  return "sha256:" + ToHex(Sha256::Of(AsBytes(data)));
}

// Uploads `path` as a blob of `repo` (monolithic POST + PUT with curl); returns its digest.
std::string UploadBlob(const std::string& base_url, const std::string& repo, const std::string& path,
                       const std::string& digest) {
  std::string out;
  if (RunCommand({"curl", "-s", "-i", "-X", "POST", base_url + "/v2/" + repo + "/blobs/uploads/"}, &out) != 0) {
    throw std::runtime_error("upload start failed: " + out);
  }
  std::smatch m;
  if (!std::regex_search(out, m, std::regex("[Ll]ocation: *([^\r\n]+)")))
    throw std::runtime_error("no Location: " + out);
  std::string loc = m[1];
  if (loc.rfind("http", 0) != 0) loc = base_url + loc;
  loc += (loc.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + digest;
  if (RunCommand({"curl", "-s", "-f", "-X", "PUT", "-H", "Content-Type: application/octet-stream", "--data-binary",
                  "@" + path, loc},
                 &out) != 0) {
    throw std::runtime_error("upload failed: " + out);
  }
  return digest;
}

// Pushes REPO:1, an image with one layer of `size` random bytes; returns the reference and
// the layer's digest.
std::pair<std::string, std::string> PushBigImage(const Registry& reg, const TempDir& tmp, const std::string& repo,
                                                 size_t size) {
  std::string base = reg.url();
  std::string layer = RandomBytes(size, 77);
  std::string layer_digest = Digest(layer);
  WriteFile(tmp / "layer.bin", layer);
  UploadBlob(base, repo, tmp / "layer.bin", layer_digest);
  std::string config = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" +
                       layer_digest + "\"]}}";
  WriteFile(tmp / "config.json", config);
  UploadBlob(base, repo, tmp / "config.json", Digest(config));
  std::string manifest =
      "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":"
      "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" +
      Digest(config) + "\",\"size\":" + std::to_string(config.size()) +
      "},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
      "\"digest\":\"" +
      layer_digest + "\",\"size\":" + std::to_string(size) + "}]}";
  WriteFile(tmp / "manifest.json", manifest);
  std::string out;
  if (RunCommand({"curl", "-s", "-f", "-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json",
                  "--data-binary", "@" + (tmp / "manifest.json"), base + "/v2/" + repo + "/manifests/1"},
                 &out) != 0) {
    throw std::runtime_error("manifest push failed: " + out);
  }
  return {reg.host_port() + "/" + repo + ":1", layer_digest};
}

// Bytes silo reports it fetched ("…; 12.5 MiB in 3.1s …"), in bytes (approximate).
double FetchedBytes(const std::string& err) {
  std::smatch m;
  if (!std::regex_search(err, m, std::regex("shared between images; ([0-9.]+) (B|KiB|MiB|GiB) in"))) return -1;
  double v = std::stod(m[1]);
  std::string unit = m[2];
  double mult = unit == "B" ? 1 : unit == "KiB" ? 1024 : unit == "MiB" ? 1048576 : 1073741824.0;
  return v * mult;
}

Process StartPull(const TempDir& tmp, const std::vector<std::string>& args) {
  ProcessOptions o;
  o.argv = {SILO_BINARY, "--store", tmp / "store", "pull", "--failed-file", tmp / "failed.txt"};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.stdout_path = tmp / "pull.out";
  o.stderr_path = tmp / "pull.err";
  return Process(o);
}

TEST(PullResilience, RegistryKilledMidBlobAndRestartedResumesWithoutRefetching) {
  TempDir tmp;
  Registry registry(tmp / "registry");
  registry.Start();
  const size_t size = 48 << 20;
  auto [ref, layer] = PushBigImage(registry, tmp, "big/app", size);
  // 12 MiB/s: the layer takes about four seconds; the registry dies after one.
  Process pull = StartPull(tmp, {"--plain-http", registry.host_port(), "--limit-rate", "12M", "--retries", "12", ref});
  std::this_thread::sleep_for(milliseconds(1200));
  registry.Stop();
  std::this_thread::sleep_for(milliseconds(800));
  registry.Start();
  auto status = pull.Wait(std::chrono::seconds(120));
  std::string err = ReadFileToString(tmp / "pull.err");
  ASSERT_EQ(status, 0) << err;
  double fetched = FetchedBytes(err);
  ASSERT_GT(fetched, 0) << err;
  // Everything once: the transfer continued where it stopped (Range), no byte twice.
  EXPECT_LT(fetched, static_cast<double>(size) + (1 << 20)) << err;
  EXPECT_EQ(err.find(" 0 retried"), std::string::npos) << "the registry's death went unnoticed: " << err;
  EXPECT_EQ(RunSilo(tmp / "store", {"fsck"}).code, 0);
  CliResult cat = RunSilo(tmp / "store", {"cat", layer});
  EXPECT_EQ(Digest(cat.out), layer);
}

// Interrupts a pull mid-blob with `signal`: it stops within seconds with exit code 130,
// lists the image as failed, leaves nothing half-written visible, and the next run resumes.
void InterruptStopsCleanlyAndTheNextRunResumes(int signal) {
  TempDir tmp;
  Registry registry(tmp / "registry");
  registry.Start();
  const size_t size = 48 << 20;
  auto [ref, layer] = PushBigImage(registry, tmp, "big/app", size);
  Process pull = StartPull(tmp, {"--plain-http", registry.host_port(), "--limit-rate", "10M", ref});
  std::this_thread::sleep_for(milliseconds(2500));
  ASSERT_EQ(::kill(pull.pid(), signal), 0);
  auto status = pull.Wait(std::chrono::seconds(10));  // within seconds
  ASSERT_TRUE(status.has_value()) << "still running after signal " << signal;
  EXPECT_EQ(*status, 130);
  EXPECT_EQ(Trim(ReadFileToString(tmp / "failed.txt")), ref);
  EXPECT_NE(RunSilo(tmp / "store", {"stat", layer}).code, 0);  // nothing half-written is visible
  EXPECT_EQ(RunSilo(tmp / "store", {"fsck"}).code, 0);

  // The failed list goes back in; the download resumes from what was stored.
  CliResult again = RunSilo(tmp / "store", {"pull", "--plain-http", registry.host_port(), "--failed-file",
                                            tmp / "failed2.txt", "-f", tmp / "failed.txt"});
  ASSERT_EQ(again.code, 0) << again.err;
  double fetched = FetchedBytes(again.err);
  EXPECT_GT(fetched, 0);
  EXPECT_LT(fetched, static_cast<double>(size) - (4 << 20)) << again.err;
  CliResult cat = RunSilo(tmp / "store", {"cat", layer});
  EXPECT_EQ(Digest(cat.out), layer);
}

TEST(PullResilience, CtrlCStopsCleanlyWritesTheFailedListAndTheNextRunResumes) {
  InterruptStopsCleanlyAndTheNextRunResumes(SIGINT);
}

TEST(PullResilience, SigtermStopsCleanlyWritesTheFailedListAndTheNextRunResumes) {
  InterruptStopsCleanlyAndTheNextRunResumes(SIGTERM);
}

TEST(PullResilience, FaultyNetworkStillGetsEveryImageWhole) {
  TempDir tmp;
  Registry registry(tmp / "registry");
  registry.Start();
  std::vector<std::string> refs = PushImageSet(registry.host_port(), tmp / "gen");
  FaultProxy proxy(tmp / "proxy", registry.url(),
                   {"--drop", "0.08", "--truncate", "0.08", "--status429", "0.08", "--status503", "0.08",
                    "--retry-after", "1", "--seed", "7"});
  // The same images, addressed through the proxy.
  std::string list;
  for (const auto& ref : refs) list += proxy.host_port() + ref.substr(registry.host_port().size()) + "\n";
  const size_t n = refs.size();
  WriteFile(tmp / "list.txt", list);
  CliResult r = RunSilo(tmp / "store", {"pull", "--plain-http", proxy.host_port(), "--retries", "10", "--failed-file",
                                        tmp / "failed.txt", "-f", tmp / "list.txt"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find(std::to_string(n) + " image(s) pulled, 0 failed"), std::string::npos) << r.err;
  EXPECT_EQ(RunSilo(tmp / "store", {"fsck"}).code, 0);
  // The proxy really did misbehave.
  int faults = 0;
  for (const auto& line : proxy.Log()) faults += line.find("fault=none") == std::string::npos ? 1 : 0;
  EXPECT_GT(faults, 3) << "the proxy injected too few faults to prove anything";
  EXPECT_EQ(r.err.find(" 0 retried"), std::string::npos) << r.err;
}

TEST(PullResilience, TokenAuthCachesATokenPerScope) {
  TempDir tmp;
  TokenRegistry registry(tmp / "reg");
  registry.Start();
  std::vector<std::string> refs = PushImageSet(registry.host_port(), tmp / "gen", {"--creds", registry.creds()});
  std::string list;
  for (const auto& ref : refs) list += ref + "\n";
  WriteFile(tmp / "list.txt", list);
  size_t before = registry.TokenRequestCount();
  CliResult denied = RunSilo(tmp / "s0", {"pull", "--plain-http", registry.host_port(), "--retries", "0",
                                          "--failed-file", tmp / "f0", "-f", tmp / "list.txt"});
  EXPECT_EQ(denied.code, 1);
  EXPECT_NE(denied.err.find("access denied"), std::string::npos) << denied.err;
  size_t after_denied = registry.TokenRequestCount();
  CliResult r = RunSilo(tmp / "s1", {"pull", "--plain-http", registry.host_port(), "--creds", registry.creds(),
                                     "--failed-file", tmp / "f1", "-f", tmp / "list.txt"});
  ASSERT_EQ(r.code, 0) << r.err;
  size_t tokens = registry.TokenRequestCount() - after_denied;
  // One token per repository scope, however many manifests and blobs each needed.
  std::set<std::string> repos;
  for (const auto& ref : refs) {
    std::string path = ref.substr(ref.find('/') + 1);
    repos.insert(path.substr(0, path.rfind(':')));
  }
  EXPECT_GE(tokens, repos.size());
  EXPECT_LE(tokens, repos.size() + 2) << "tokens are not cached per scope";
  EXPECT_GT(after_denied, before);
  EXPECT_EQ(RunSilo(tmp / "s1", {"fsck"}).code, 0);
}

// Release mode (FastSync): a release image whose layer holds
// release-manifests/image-references naming component images by digest.
TEST(PullRelease, PullsTheReleaseImageAndEveryComponentByDigest) {
  TempDir tmp;
  Registry registry(tmp / "registry");
  registry.Start();
  std::vector<std::string> refs = PushImageSet(registry.host_port(), tmp / "gen");
  // Two components, named by digest as a release names them.
  std::vector<std::string> components;
  for (size_t i = 0; i < 2; ++i) {
    const std::string& ref = refs.at(i);
    std::string raw;
    ASSERT_EQ(RunCommand({"skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + ref}, &raw), 0);
    components.push_back(ref.substr(0, ref.rfind(':')) + "@" + Digest(raw));
  }
  std::string release = PushReleaseImage(registry.host_port(), "ocp/release:4.99.0", components, tmp / "rel");
  CliResult r = RunSilo(tmp / "store", {"pull", "--plain-http", registry.host_port(), "--failed-file",
                                        tmp / "failed.txt", "--release", release});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("names 2 component image(s)"), std::string::npos) << r.err;
  EXPECT_EQ(RunSilo(tmp / "store", {"ref", "get", "image/" + release}).code, 0);
  for (const auto& c : components) {
    CliResult ref = RunSilo(tmp / "store", {"ref", "get", "image/" + c});
    EXPECT_EQ(ref.code, 0) << c;
    EXPECT_EQ(Trim(ref.out), c.substr(c.find('@') + 1));
  }
  EXPECT_EQ(RunSilo(tmp / "store", {"fsck"}).code, 0);
  // A release image without image-references is a clear failure.
  CliResult bad = RunSilo(tmp / "store", {"pull", "--plain-http", registry.host_port(), "--failed-file",
                                          tmp / "failed.txt", "--release", components[0]});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("no layer holds release-manifests/image-references"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace silo::testing
