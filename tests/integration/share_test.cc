// File shares on `silo serve` with real clients on 127.0.0.1: curl and aria2c ranges and
// resume, `silo get` of a file, a directory and a snapshot, kill -9 mid-transfer and a
// re-run that moves only the rest (counted in the server's access log), --follow of a
// directory, and every refusal: traversal, symlinks out, denied networks, globs and
// directories, missing and wrong credentials.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "tests/integration/serve_support.h"
#include "tests/integration/silo_cli.h"
#include "tests/support/process.h"
#include "tests/support/store_test.h"

namespace silo::testing {
namespace {

namespace fs = std::filesystem;

// Sum of bytes= over the access log's lines whose target contains `needle` (and is no
// ?stat or ?list query) and that answered 200 or 206.
uint64_t BytesServed(const std::string& log_path, const std::string& needle) {
  std::ifstream in(log_path);
  std::string line;
  uint64_t total = 0;
  static const std::regex kBytes(" status=(\\d+) bytes=(\\d+)");
  while (std::getline(in, line)) {
    if (line.find(needle) == std::string::npos || line.find("?stat") != std::string::npos ||
        line.find("?list") != std::string::npos)
      continue;
    std::smatch m;
    if (!std::regex_search(line, m, kBytes)) continue;
    int status = std::stoi(m[1]);
    if (status == 200 || status == 206) total += std::stoull(m[2]);
  }
  return total;
}

uint64_t StateDone(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  uint64_t sum = 0;
  while (std::getline(in, line)) {
    if (line.rfind("parts ", 0) == 0) {
      uint64_t parts = std::stoull(line.substr(6));
      for (uint64_t i = 0; i < parts && std::getline(in, line); ++i) sum += std::stoull(line);
    }
  }
  return sum;
}

class ShareServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    share_ = tmp_ / "share";
    fs::create_directories(share_ + "/sub/deeper");
    fs::create_directories(share_ + "/private");
    fs::create_directories(tmp_ / "outside");
    big_ = RandomBytes(40 << 20, 21);
    WriteFile(share_ + "/big.bin", big_);
    WriteFile(share_ + "/sub/a b.txt", "hello");
    WriteFile(share_ + "/sub/deeper/c.txt", "deep");
    WriteFile(share_ + "/sub/server.key", "secret key");
    WriteFile(share_ + "/private/p.txt", "private");
    WriteFile(tmp_ / "outside/passwd", "root:x:0:0");
    fs::create_symlink("../outside/passwd", share_ + "/escape");
    fs::create_symlink(tmp_ / "outside", share_ + "/escape_dir");
    fs::create_symlink("sub/deeper/c.txt", share_ + "/inside");
  }

  void Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--share",     "data=" + share_, "--access-log", tmp_ / "access.log",
                                     "--deny-file", "*.key",          "--deny-dir",   "private"};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<SiloServer>(tmp_ / "store", tmp_ / "serve.log", args);
  }
  std::string Url(const std::string& path) const { return server_->url() + "/files/data/" + path; }
  int Status(const std::string& url, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--path-as-is"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(url);
    return Curl(args).status;
  }

  TempDir tmp_;
  std::string share_;
  std::string big_;
  std::unique_ptr<SiloServer> server_;
};

TEST_F(ShareServeTest, CurlRangesAndResume) {
  Start();
  auto r = Curl({"-r", "1000-1999", Url("big.bin")});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.headers["content-range"], "bytes 1000-1999/" + std::to_string(big_.size()));
  EXPECT_EQ(r.body, big_.substr(1000, 1000));
  r = Curl({"-r", "-10", Url("big.bin")});
  EXPECT_EQ(r.body, big_.substr(big_.size() - 10));
  r = Curl({"-r", std::to_string(big_.size()) + "-", Url("big.bin")});
  EXPECT_EQ(r.status, 416);
  r = Curl({"-I", Url("big.bin")});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-length"], std::to_string(big_.size()));
  EXPECT_EQ(r.headers["accept-ranges"], "bytes");

  // curl -C -: a partial file is completed from where it stops.
  std::string out = tmp_ / "curl.bin";
  WriteFile(out, big_.substr(0, 12345));
  std::string log;
  ASSERT_EQ(RunCommand({"curl", "-sS", "-f", "-C", "-", "-o", out, Url("big.bin")}, &log), 0) << log;
  EXPECT_EQ(ReadFileToString(out), big_);
  EXPECT_EQ(BytesServed(tmp_ / "access.log", "big.bin") - 1000 - 10, big_.size() - 12345);
}

TEST_F(ShareServeTest, Aria2cParallelAndResume) {
  Start();
  std::string log;
  ASSERT_EQ(RunCommand({"aria2c", "-q", "-x8", "-s8", "--file-allocation=none", "-d", tmp_.path(), "-o", "a.bin",
                        Url("big.bin")},
                       &log),
            0)
      << log;
  EXPECT_EQ(ReadFileToString(tmp_ / "a.bin"), big_);
  // Interrupted aria2c (its .aria2 control file stays) continues with -c.
  ProcessOptions o;
  o.argv = {"aria2c",    "-q", "-x2",   "-s2",         "--max-download-limit=2M", "--file-allocation=none", "-d",
            tmp_.path(), "-o", "b.bin", Url("big.bin")};
  Process slow(o);
  for (int i = 0; i < 200 && !(fs::exists(tmp_ / "b.bin.aria2") && fs::file_size(tmp_ / "b.bin") > 0); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ::kill(slow.pid(), SIGKILL);
  slow.Wait(std::chrono::seconds(10));
  ASSERT_TRUE(fs::exists(tmp_ / "b.bin.aria2")) << "aria2c finished before it could be interrupted";
  ASSERT_EQ(RunCommand({"aria2c", "-q", "-c", "-x4", "-s4", "--file-allocation=none", "-d", tmp_.path(), "-o", "b.bin",
                        Url("big.bin")},
                       &log),
            0)
      << log;
  EXPECT_EQ(ReadFileToString(tmp_ / "b.bin"), big_);
}

TEST_F(ShareServeTest, SiloGetFileAndDirectoryVerified) {
  Start();
  auto r = RunSilo(tmp_ / "cli", {"get", Url("big.bin"), "-o", tmp_ / "big.bin", "--connections", "4"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ReadFileToString(tmp_ / "big.bin"), big_);
  EXPECT_NE(r.err.find("1 verified"), std::string::npos) << r.err;

  r = RunSilo(tmp_ / "cli", {"get", Url(""), "-o", tmp_ / "tree"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ReadFileToString(tmp_ / "tree/big.bin"), big_);
  EXPECT_EQ(ReadFileToString(tmp_ / "tree/sub/a b.txt"), "hello");
  EXPECT_EQ(ReadFileToString(tmp_ / "tree/sub/deeper/c.txt"), "deep");
  EXPECT_EQ(fs::read_symlink(tmp_ / "tree/inside"), "sub/deeper/c.txt");
  EXPECT_FALSE(fs::exists(fs::symlink_status(tmp_ / "tree/escape_dir"))) << "absolute link out: skipped";
  EXPECT_FALSE(fs::exists(fs::symlink_status(tmp_ / "tree/escape"))) << "relative link out: skipped";
  EXPECT_FALSE(fs::exists(tmp_ / "tree/sub/server.key")) << "denied glob not listed";
  EXPECT_FALSE(fs::exists(tmp_ / "tree/private")) << "denied directory not listed";
  EXPECT_NE(r.err.find("3 verified"), std::string::npos) << r.err;

  // Again: nothing moves.
  uint64_t before = BytesServed(tmp_ / "access.log", "/files/data/");
  r = RunSilo(tmp_ / "cli", {"get", Url(""), "-o", tmp_ / "tree"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("3 unchanged"), std::string::npos) << r.err;
  uint64_t listing = BytesServed(tmp_ / "access.log", "/files/data/") - before;
  EXPECT_LT(listing, 4096u) << "only the listing and the probe";
}

TEST_F(ShareServeTest, SiloGetKilledResumesWithTheRest) {
  Start();
  std::string out = tmp_ / "big.bin";
  std::string state = tmp_ / ".big.bin.silo-get.state";
  ProcessOptions o;
  o.argv = {SILO_BINARY,     "--store", tmp_ / "cli",   "get", Url("big.bin"), "-o", out,
            "--connections", "2",       "--limit-rate", "4M"};
  o.stdout_path = tmp_ / "first.log";
  o.stderr_path = tmp_ / "first.log";
  Process first(o);
  for (int i = 0; i < 600 && StateDone(state) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_GT(StateDone(state), 0u) << ReadFileToString(tmp_ / "first.log");
  ::kill(first.pid(), SIGKILL);
  first.Wait(std::chrono::seconds(10));
  uint64_t done = StateDone(state);
  ASSERT_LT(done, big_.size());
  ASSERT_FALSE(fs::exists(out));

  uint64_t before = BytesServed(tmp_ / "access.log", "big.bin");
  auto r = RunSilo(tmp_ / "cli", {"get", Url("big.bin"), "-o", out});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming"), std::string::npos) << r.err;
  EXPECT_EQ(ReadFileToString(out), big_);
  EXPECT_EQ(BytesServed(tmp_ / "access.log", "big.bin") - before, big_.size() - done) << "only the rest moved";
}

TEST_F(ShareServeTest, FollowDirectorySeesNewAndAppendedFiles) {
  Start();
  ProcessOptions o;
  o.argv = {SILO_BINARY, "--store",       tmp_ / "cli", "get",        Url("sub/"),
            "-o",        tmp_ / "mirror", "--follow",   "--interval", "100ms"};
  o.stdout_path = tmp_ / "follow.log";
  o.stderr_path = tmp_ / "follow.log";
  Process follow(o);
  auto wait_for = [&](const std::string& path, const std::string& want) {
    for (int i = 0; i < 400; ++i) {
      if (fs::exists(path) && ReadFileToString(path) == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  ASSERT_TRUE(wait_for(tmp_ / "mirror/a b.txt", "hello")) << ReadFileToString(tmp_ / "follow.log");
  {
    std::ofstream app(share_ + "/sub/a b.txt", std::ios::app);
    app << " world";
  }
  WriteFile(share_ + "/sub/deeper/new.txt", "new file");
  EXPECT_TRUE(wait_for(tmp_ / "mirror/a b.txt", "hello world")) << ReadFileToString(tmp_ / "follow.log");
  EXPECT_TRUE(wait_for(tmp_ / "mirror/deeper/new.txt", "new file")) << ReadFileToString(tmp_ / "follow.log");
  follow.Stop();
}

TEST_F(ShareServeTest, SnapshotsServedFromTheStore) {
  auto snap = RunSilo(tmp_ / "store", {"snapshot", share_, "--name", "docs"});
  ASSERT_EQ(snap.code, 0) << snap.err;
  Start();
  auto r = RunSilo(tmp_ / "cli", {"get", server_->url() + "/snapshots/docs/", "-o", tmp_ / "restored"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ReadFileToString(tmp_ / "restored/big.bin"), big_);
  EXPECT_EQ(ReadFileToString(tmp_ / "restored/sub/deeper/c.txt"), "deep");
  EXPECT_FALSE(fs::exists(tmp_ / "restored/sub/server.key")) << "deny rules apply to snapshots";
  auto c = Curl({"-r", "5-9", server_->url() + "/snapshots/docs/big.bin"});
  EXPECT_EQ(c.status, 206);
  EXPECT_EQ(c.body, big_.substr(5, 5));
}

TEST_F(ShareServeTest, TraversalAndDenyRulesRefused) {
  Start();
  EXPECT_EQ(Status(Url("inside")), 200);
  EXPECT_EQ(Status(Url("../outside/passwd")), 403);
  EXPECT_EQ(Status(Url("sub/../../outside/passwd")), 403);
  EXPECT_EQ(Status(Url("%2e%2e/outside/passwd")), 403);
  EXPECT_EQ(Status(Url("%2E%2E%2Foutside%2Fpasswd")), 403);
  EXPECT_EQ(Status(Url("escape")), 403);
  EXPECT_EQ(Status(Url("escape_dir/passwd")), 403);
  EXPECT_EQ(Status(server_->url() + "/files/data/" + tmp_.path() + "/outside/passwd"), 404)
      << "an absolute path is looked up inside the share";
  EXPECT_EQ(Status(Url("sub/server.key")), 403);
  EXPECT_EQ(Status(Url("private/p.txt")), 403);
  EXPECT_EQ(Status(Url("nothing")), 404);
  EXPECT_EQ(Status(server_->url() + "/files/nosuch/x"), 404);
  auto r = Curl({"--path-as-is", Url("../outside/passwd")});
  EXPECT_EQ(r.body.find("root:x"), std::string::npos);
  // silo get names the refusal.
  auto g = RunSilo(tmp_ / "cli", {"get", Url("sub/server.key"), "-o", tmp_ / "k"});
  EXPECT_EQ(g.code, 2);
  EXPECT_NE(g.err.find("403"), std::string::npos) << g.err;
  EXPECT_FALSE(fs::exists(tmp_ / "k"));
  server_->Stop();
}

TEST_F(ShareServeTest, DeniedNetworkGets403) {
  // SiloServer waits for /healthz, which the allow list refuses too: start it by hand.
  int port = FreeLoopbackPort();
  ProcessOptions o;
  o.argv = {
      SILO_BINARY, "--store",        tmp_ / "store", "serve",      "--listen", "127.0.0.1:" + std::to_string(port),
      "--share",   "data=" + share_, "--allow",      "10.0.0.0/8", "--allow",  "fd00::/8"};
  o.stdout_path = tmp_ / "serve.log";
  o.stderr_path = tmp_ / "serve.log";
  Process server(o);
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  int status = 0;
  for (int i = 0; i < 200 && status <= 0; ++i) {
    status = Curl({base + "/healthz"}).status;
    if (status <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(status, 403) << ReadFileToString(tmp_ / "serve.log");
  EXPECT_EQ(Status(base + "/files/data/big.bin"), 403);
  EXPECT_EQ(Status(base + "/v2/"), 403) << "the allow list covers every route";
  EXPECT_EQ(server.Stop(), 0);
}

TEST_F(ShareServeTest, TokensAndHtpasswdForReadAndWrite) {
  std::string htpasswd = tmp_ / "htpasswd";
  std::string out;
  ASSERT_EQ(RunCommand({"htpasswd", "-B", "-C", "5", "-b", "-c", htpasswd, "reader", "pw1"}, &out), 0) << out;
  Start({"--read-token", "rtok", "--write-token", "wtok", "--read-htpasswd", htpasswd});
  EXPECT_EQ(Status(Url("sub/a%20b.txt")), 401);
  auto r = Curl({Url("sub/a%20b.txt")});
  EXPECT_NE(r.headers["www-authenticate"].find("Basic"), std::string::npos);
  EXPECT_EQ(Status(Url("sub/a%20b.txt"), {"-H", "Authorization: Bearer wrong"}), 401);
  EXPECT_EQ(Status(Url("sub/a%20b.txt"), {"-H", "Authorization: Bearer rtok"}), 200);
  EXPECT_EQ(Status(Url("sub/a%20b.txt"), {"-H", "Authorization: Bearer wtok"}), 200);
  EXPECT_EQ(Status(Url("sub/a%20b.txt"), {"-u", "reader:pw1"}), 200);
  EXPECT_EQ(Status(Url("sub/a%20b.txt"), {"-u", "reader:nope"}), 401);
  // Writing needs the write token (the share then refuses the method itself).
  EXPECT_EQ(Status(Url("x"), {"-X", "PUT", "-H", "Authorization: Bearer rtok", "--data", "x"}), 401);
  EXPECT_EQ(Status(Url("x"), {"-X", "PUT", "-H", "Authorization: Bearer wtok", "--data", "x"}), 405);
  EXPECT_EQ(Status(server_->url() + "/healthz"), 200) << "health checks need no credentials";

  auto g = RunSilo(tmp_ / "cli", {"get", Url("sub/"), "-o", tmp_ / "t"});
  EXPECT_EQ(g.code, 2);
  EXPECT_NE(g.err.find("401"), std::string::npos) << g.err;
  EXPECT_NE(g.err.find("--token"), std::string::npos) << g.err;
  g = RunSilo(tmp_ / "cli", {"get", Url("sub/"), "-o", tmp_ / "t", "--token", "rtok"});
  ASSERT_EQ(g.code, 0) << g.err;
  EXPECT_EQ(ReadFileToString(tmp_ / "t/a b.txt"), "hello");
  g = RunSilo(tmp_ / "cli", {"get", Url("sub/a%20b.txt"), "-o", tmp_ / "u.txt", "--user", "reader:pw1"});
  ASSERT_EQ(g.code, 0) << g.err;
}

}  // namespace
}  // namespace silo::testing
