// The integration-test harness itself, against the real programs: Process and RunCommand,
// the CNCF registry helper (plain, htpasswd, TLS), and imagegen.py pushing into it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/registry.h"
#include "tests/support/store_test.h"
#include "tests/support/temp_dir.h"

namespace silo::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

const std::string kImagegen = SILO_SOURCE_DIR "/tests/support/imagegen.py";

// Options that run argv with everything else at its default. (GCC 12 warns about
// designated initializers that leave members out, so tests set fields by name.)
Process::Options Program(std::vector<std::string> argv) {
  Process::Options o;
  o.argv = std::move(argv);
  return o;
}

// True once no process has this pid (it was reaped, not just killed).
bool Gone(pid_t pid) {
  return ::kill(pid, 0) == -1 && errno == ESRCH;
}

std::set<std::string> BlobNames(const std::string& layout) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(layout + "/blobs/sha256")) out.insert(e.path().filename().string());
  return out;
}

// `curl -w %{http_code}` of a URL: "200", "401", or "000" when no HTTP answer came.
std::string HttpCode(const std::vector<std::string>& extra_args, const std::string& url, int* curl_exit = nullptr) {
  std::vector<std::string> argv = {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  argv.push_back(url);
  std::string out;
  int rc = RunCommand(argv, &out);
  if (curl_exit != nullptr) *curl_exit = rc;
  return out;
}

// Runs imagegen.py (small set) into the registry; returns the references it pushed.
std::vector<std::string> PushImages(const Registry& registry, const TempDir& tmp, int set,
                                    const std::vector<std::string>& extra = {}) {
  const std::string list = tmp / ("set" + std::to_string(set) + ".txt");
  std::vector<std::string> argv = {"python3",    kImagegen,
                                   "--registry", registry.host_port(),
                                   "--set",      std::to_string(set),
                                   "--list",     list,
                                   "--work",     tmp / ("work" + std::to_string(set))};
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::string out;
  int rc = RunCommand(argv, &out);
  EXPECT_EQ(rc, 0) << out << "\n--- registry log ---\n" << registry.LogTail();
  return Lines(ReadFileToString(list));
}

// `skopeo inspect --raw` of a reference; the exit code goes to *rc.
std::string InspectRaw(const std::string& ref, const std::vector<std::string>& extra, int* rc) {
  std::vector<std::string> argv = {"skopeo", "inspect", "--raw"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back("docker://" + ref);
  std::string out;
  *rc = RunCommand(argv, &out);
  return out;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------------------------------
// Process, RunCommand, FreeLoopbackPort

TEST(harnessProcess, RunCommandCapturesOutputAndExitCode) {
  std::string out;
  EXPECT_EQ(RunCommand({"sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"}, &out), 3);
  EXPECT_TRUE(Contains(out, "to-stdout")) << out;
  EXPECT_TRUE(Contains(out, "to-stderr")) << out;
  // Arguments reach the program verbatim: no shell, no word splitting or globbing.
  EXPECT_EQ(RunCommand({"printf", "%s|", "a b", "*", "$HOME"}, &out), 0);
  EXPECT_EQ(out, "a b|*|$HOME|");
  EXPECT_EQ(RunCommand({"true"}), 0);
  EXPECT_EQ(RunCommand({"sh", "-c", "kill -TERM $$"}), 128 + SIGTERM);
}

TEST(harnessProcess, RunCommandReportsMissingProgram) {
  std::string out;
  EXPECT_EQ(RunCommand({"silo-no-such-program-here"}, &out), 127);
  EXPECT_TRUE(Contains(out, "silo-no-such-program-here")) << out;
  EXPECT_TRUE(Contains(out, "No such file")) << out;
}

TEST(harnessProcess, RunCommandKillsAfterTimeout) {
  std::string out;
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(RunCommand({"sleep", "30"}, &out, milliseconds(200)), 124);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_TRUE(Contains(out, "killed after")) << out;
}

TEST(harnessProcess, SpawnRedirectsOutputWithEnvAndCwd) {
  TempDir tmp;
  ::setenv("SILO_HARNESS_DROPPED", "inherited", 1);
  Process::Options o;
  o.argv = {"sh", "-c", "echo \"$SILO_HARNESS_VAR\"; pwd; echo \"dropped=$SILO_HARNESS_DROPPED\"; echo err >&2"};
  o.env = {{"SILO_HARNESS_VAR", "hello"}};
  o.env_drop_prefixes = {"SILO_HARNESS_DROP"};
  o.cwd = tmp.path();
  o.stdout_path = tmp / "out.log";
  o.stderr_path = tmp / "err.log";
  Process p(o);
  EXPECT_GT(p.pid(), 0);
  ASSERT_EQ(p.Wait(std::chrono::seconds(10)), 0);
  EXPECT_EQ(p.pid(), -1);
  EXPECT_EQ(ReadFileToString(tmp / "out.log"), "hello\n" + fs::canonical(tmp.path()).string() + "\ndropped=\n");
  EXPECT_EQ(ReadFileToString(tmp / "err.log"), "err\n");
  ::unsetenv("SILO_HARNESS_DROPPED");
}

TEST(harnessProcess, SameFileForStdoutAndStderrKeepsBoth) {
  TempDir tmp;
  Process::Options o;
  o.argv = {"sh", "-c", "echo one; echo two >&2; echo three"};
  o.stdout_path = o.stderr_path = tmp / "both.log";
  Process p(o);
  ASSERT_EQ(p.Wait(std::chrono::seconds(10)), 0);
  EXPECT_EQ(ReadFileToString(tmp / "both.log"), "one\ntwo\nthree\n");
}

TEST(harnessProcess, StopTerminatesAndReaps) {
  Process p(Program({"sleep", "60"}));
  const pid_t pid = p.pid();
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(p.Running());
  EXPECT_EQ(p.Stop(), 128 + SIGTERM);
  EXPECT_TRUE(Gone(pid));
  EXPECT_FALSE(p.Running());
  EXPECT_EQ(p.pid(), -1);
  EXPECT_EQ(p.Stop(), 128 + SIGTERM);  // idempotent
}

TEST(harnessProcess, StopEscalatesToSigkill) {
  TempDir tmp;
  const std::string ready = tmp / "ready";
  // Ignores SIGTERM (inherited across exec), says so, then becomes `sleep`.
  Process p(Program({"sh", "-c", "trap '' TERM; : > \"$0\"; exec sleep 60", ready}));
  const pid_t pid = p.pid();
  for (int i = 0; i < 500 && !fs::exists(ready); ++i) std::this_thread::sleep_for(milliseconds(10));
  ASSERT_TRUE(fs::exists(ready));
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(p.Stop(milliseconds(300)), 128 + SIGKILL);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(300));
  EXPECT_TRUE(Gone(pid));
}

TEST(harnessProcess, DestructorAndMoveAssignStop) {
  pid_t first = -1;
  pid_t second = -1;
  {
    Process a(Program({"sleep", "60"}));
    first = a.pid();
    Process b(Program({"sleep", "60"}));
    second = b.pid();
    a = std::move(b);  // stops the first sleep, takes over the second
    EXPECT_TRUE(Gone(first));
    EXPECT_EQ(a.pid(), second);
    EXPECT_EQ(b.pid(), -1);
  }
  EXPECT_TRUE(Gone(second));
}

TEST(harnessProcess, MissingProgramThrows) {
  try {
    Process p(Program({"/nonexistent/silo-program"}));
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(Contains(e.what(), "/nonexistent/silo-program")) << e.what();
  }
  TempDir tmp;
  Process::Options bad_log = Program({"true"});
  bad_log.stdout_path = tmp / "no/such/dir/log";
  EXPECT_THROW(Process{bad_log}, std::runtime_error);
}

TEST(harnessProcess, FreeLoopbackPortIsBindable) {
  int port = FreeLoopbackPort();
  ASSERT_GT(port, 0);
  ASSERT_LT(port, 65536);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  ::close(fd);
}

// ---------------------------------------------------------------------------------------
// Registry and imagegen

TEST(harnessRegistry, PlainRegistryTakesImagegenPush) {
  TempDir tmp;
  Registry registry(tmp / "registry");
  registry.Start();
  ASSERT_TRUE(registry.running());
  EXPECT_EQ(registry.host_port(), "127.0.0.1:" + std::to_string(registry.port()));
  EXPECT_EQ(registry.url(), "http://" + registry.host_port());
  EXPECT_EQ(HttpCode({}, registry.url() + "/v2/"), "200");

  auto start = std::chrono::steady_clock::now();
  std::vector<std::string> refs = PushImages(registry, tmp, 1);
  std::cerr << "imagegen small set 1 generate+push: "
            << std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start).count() << " ms\n";
  ASSERT_GE(refs.size(), 5u);
  for (const auto& ref : refs) EXPECT_EQ(ref.rfind(registry.host_port() + "/", 0), 0u) << ref;
  const std::string multi = registry.host_port() + "/library/debian:12";
  const std::string single = registry.host_port() + "/apps/java-svc:1.0";
  EXPECT_NE(std::find(refs.begin(), refs.end(), multi), refs.end());
  EXPECT_NE(std::find(refs.begin(), refs.end(), single), refs.end());

  int rc = 0;
  std::string index = InspectRaw(multi, {"--tls-verify=false"}, &rc);
  ASSERT_EQ(rc, 0) << index;
  EXPECT_TRUE(Contains(index, "\"mediaType\":\"application/vnd.oci.image.index.v1+json\"")) << index;
  EXPECT_TRUE(Contains(index, "\"architecture\":\"amd64\",\"os\":\"linux\"")) << index;
  EXPECT_TRUE(Contains(index, "\"architecture\":\"arm64\",\"os\":\"linux\"")) << index;
  std::string manifest = InspectRaw(single, {"--tls-verify=false"}, &rc);
  ASSERT_EQ(rc, 0) << manifest;
  EXPECT_TRUE(Contains(manifest, "\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"")) << manifest;
  EXPECT_TRUE(Contains(manifest, "application/vnd.oci.image.layer.v1.tar+gzip")) << manifest;

  // Stop reaps it; Start again serves the same storage.
  const pid_t pid = registry.pid();
  registry.Stop();
  EXPECT_FALSE(registry.running());
  EXPECT_TRUE(Gone(pid));
  registry.Start();
  std::string again = InspectRaw(registry.host_port() + "/library/debian:12", {"--tls-verify=false"}, &rc);
  ASSERT_EQ(rc, 0) << again << registry.LogTail();
  EXPECT_EQ(again, index);
  const pid_t pid2 = registry.pid();
  registry.Stop();
  EXPECT_TRUE(Gone(pid2));
}

TEST(harnessRegistry, HtpasswdRequiresCredentials) {
  TempDir tmp;
  Registry::Options options;
  options.htpasswd = true;
  options.username = "alice";
  options.password = "s3cret pass";
  Registry registry(tmp / "registry", options);
  registry.Start();
  EXPECT_EQ(HttpCode({}, registry.url() + "/v2/"), "401");
  EXPECT_EQ(HttpCode({"-u", "alice:wrong"}, registry.url() + "/v2/"), "401");
  EXPECT_EQ(HttpCode({"-u", registry.creds()}, registry.url() + "/v2/"), "200");

  std::vector<std::string> refs = PushImages(registry, tmp, 1, {"--creds", registry.creds()});
  ASSERT_FALSE(refs.empty());
  int rc = 0;
  std::string out = InspectRaw(refs.front(), {"--tls-verify=false"}, &rc);
  EXPECT_NE(rc, 0) << "anonymous inspect should fail: " << out;
  out = InspectRaw(refs.front(), {"--tls-verify=false", "--creds", registry.creds()}, &rc);
  EXPECT_EQ(rc, 0) << out;
  const pid_t pid = registry.pid();
  registry.Stop();
  EXPECT_TRUE(Gone(pid));
}

TEST(harnessRegistry, TlsWithGeneratedCa) {
  TempDir tmp;
  Registry::Options options;
  options.tls = true;
  Registry registry(tmp / "registry", options);
  registry.Start();
  ASSERT_FALSE(registry.ca_cert_path().empty());
  EXPECT_EQ(registry.url(), "https://127.0.0.1:" + std::to_string(registry.port()));
  int curl_rc = -1;
  EXPECT_EQ(HttpCode({"--cacert", registry.ca_cert_path()}, registry.url() + "/v2/", &curl_rc), "200");
  EXPECT_EQ(curl_rc, 0);
  // The certificate names localhost too.
  EXPECT_EQ(
      HttpCode({"--cacert", registry.ca_cert_path()}, "https://localhost:" + std::to_string(registry.port()) + "/v2/"),
      "200");
  // Without the CA the certificate is not trusted (curl exit 60).
  HttpCode({}, registry.url() + "/v2/", &curl_rc);
  EXPECT_NE(curl_rc, 0);
  // Plain HTTP to the TLS port gets no registry answer.
  EXPECT_NE(HttpCode({}, "http://" + registry.host_port() + "/v2/"), "200");

  // skopeo verifies the chain through the cert dir.
  std::vector<std::string> refs =
      PushImages(registry, tmp, 1, {"--tls-verify", "true", "--cert-dir", registry.cert_dir()});
  ASSERT_FALSE(refs.empty());
  int rc = 0;
  std::string out = InspectRaw(refs.front(), {"--cert-dir", registry.cert_dir()}, &rc);
  EXPECT_EQ(rc, 0) << out;
  out = InspectRaw(refs.front(), {"--tls-verify=true"}, &rc);
  EXPECT_NE(rc, 0) << "inspect without the CA should fail: " << out;
  const pid_t pid = registry.pid();
  registry.Stop();
  EXPECT_TRUE(Gone(pid));
}

TEST(harnessRegistry, DeleteOption) {
  const std::string missing = "/v2/nothing/here/manifests/sha256:" + std::string(64, '0');
  TempDir tmp;
  Registry off(tmp / "off");
  off.Start();
  EXPECT_EQ(HttpCode({"-X", "DELETE"}, off.url() + missing), "405");
  Registry::Options options;
  options.delete_enabled = true;
  Registry on(tmp / "on", options);
  on.Start();
  EXPECT_EQ(HttpCode({"-X", "DELETE"}, on.url() + missing), "404");
}

TEST(harnessRegistry, PortClashMovesToAnotherPort) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int taken = ntohs(addr.sin_port);

  TempDir tmp;
  Registry::Options options;
  options.port = taken;
  Registry registry(tmp / "registry", options);
  registry.Start();
  EXPECT_NE(registry.port(), taken);
  EXPECT_EQ(HttpCode({}, registry.url() + "/v2/"), "200");
  ::close(fd);
}

TEST(harnessRegistry, DestructorStopsRegistry) {
  TempDir tmp;
  pid_t pid = -1;
  {
    Registry registry(tmp / "registry");
    registry.Start();
    pid = registry.pid();
    ASSERT_GT(pid, 0);
    EXPECT_FALSE(Gone(pid));
  }
  EXPECT_TRUE(Gone(pid));
}

TEST(harnessRegistry, StartFailureQuotesTheLog) {
  TempDir tmp;
  Registry::Options options;
  options.tls = true;
  Registry registry(tmp / "registry", options);
  registry.Start();
  registry.Stop();
  // The TLS material is made once; a broken key makes the next start fail fast.
  std::ofstream(tmp / "registry/tls/server.key", std::ios::trunc) << "not a key\n";
  try {
    registry.Start();
    FAIL() << "expected Start() to fail";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(Contains(e.what(), "did not start")) << e.what();
    EXPECT_TRUE(Contains(e.what(), "registry.log")) << e.what();
    EXPECT_TRUE(Contains(e.what(), "level=fatal")) << e.what();
  }
  EXPECT_FALSE(registry.running());
}

TEST(harnessImagegen, DeterministicAndSet2SharesBlobsWithSet1) {
  TempDir tmp;
  for (const char* name : {"a", "b"}) {
    std::string out;
    ASSERT_EQ(RunCommand({"python3", kImagegen, "--no-push", "--set", "1", "--oci-dir", tmp / name, "--quiet"}, &out),
              0)
        << out;
  }
  EXPECT_EQ(ReadFileToString(tmp / "a/index.json"), ReadFileToString(tmp / "b/index.json"));
  EXPECT_EQ(BlobNames(tmp / "a"), BlobNames(tmp / "b"));

  std::string out;
  ASSERT_EQ(RunCommand({"python3", kImagegen, "--no-push", "--set", "2", "--oci-dir", tmp / "c", "--quiet"}, &out), 0)
      << out;
  EXPECT_TRUE(Contains(out, "apps/python-app:1.1")) << out;  // without --registry: REPO:TAG
  std::set<std::string> set1 = BlobNames(tmp / "a");
  std::set<std::string> set2 = BlobNames(tmp / "c");
  size_t shared = 0;
  for (const auto& b : set2) shared += set1.count(b);
  EXPECT_GT(shared, set2.size() / 2) << "set 2 should share most blobs with set 1";
  EXPECT_LT(shared, set2.size()) << "set 2 should add new blobs";
}

}  // namespace
}  // namespace silo::testing
