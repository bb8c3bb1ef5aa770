// `silo get` against a plain HTTP server (nginx with Range support): a file in parallel
// parts, kill -9 mid-transfer and a re-run that moves only the rest (counted in nginx's
// access log), an unchanged file not fetched again, clean errors; and the config file
// (`silo config show`, flags over file over defaults).
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/integration/silo_cli.h"
#include "tests/support/nginx.h"
#include "tests/support/process.h"
#include "tests/support/store_test.h"

namespace silo::testing {
namespace {

namespace fs = std::filesystem;

// Sum of the per-part byte counts in a .silo-get.state file (0 when absent).
uint64_t StateDone(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  uint64_t parts = 0, sum = 0;
  while (std::getline(in, line)) {
    if (line.rfind("parts ", 0) == 0) {
      parts = std::stoull(line.substr(6));
      for (uint64_t i = 0; i < parts && std::getline(in, line); ++i) sum += std::stoull(line);
    }
  }
  return sum;
}

class GetNginxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(tmp_ / "www");
    nginx_ = std::make_unique<Nginx>(tmp_ / "nginx", tmp_ / "www");
    nginx_->Start();
  }
  TempDir tmp_;
  std::unique_ptr<Nginx> nginx_;
};

TEST_F(GetNginxTest, FileInPartsThenUnchanged) {
  std::string data = RandomBytes(20 << 20, 11);
  WriteFile(tmp_ / "www/big.bin", data);
  auto r = RunSilo(tmp_ / "store", {"get", nginx_->url("big.bin"), "-o", tmp_ / "big.bin", "--connections", "4"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ReadFileToString(tmp_ / "big.bin"), data);
  EXPECT_NE(r.err.find("checked by size only"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp_ / ".big.bin.silo-get")) << "no temp file left behind";
  EXPECT_FALSE(fs::exists(tmp_ / ".big.bin.silo-get.state"));
  // 20 MiB in 8 MiB parts: three ranged requests.
  std::string log = ReadFileToString(nginx_->access_log_path());
  EXPECT_NE(log.find("\"bytes=0-8388607\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"bytes=16777216-20971519\""), std::string::npos) << log;
  EXPECT_EQ(nginx_->BytesSent(), data.size());

  // Same size and Last-Modified: nothing is fetched again.
  auto again = RunSilo(tmp_ / "store", {"get", nginx_->url("big.bin"), "-o", tmp_ / "big.bin"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("1 unchanged"), std::string::npos) << again.err;
  EXPECT_EQ(nginx_->BytesSent(), data.size());

  // Into an existing directory: the URL's file name.
  fs::create_directories(tmp_ / "dir");
  auto into = RunSilo(tmp_ / "store", {"get", nginx_->url("big.bin"), "-o", tmp_ / "dir"});
  ASSERT_EQ(into.code, 0) << into.err;
  EXPECT_EQ(fs::file_size(tmp_ / "dir/big.bin"), data.size());
}

TEST_F(GetNginxTest, KilledMidTransferResumesWithTheRest) {
  std::string data = RandomBytes(48 << 20, 12);
  WriteFile(tmp_ / "www/big.bin", data);
  std::string out = tmp_ / "big.bin";
  std::string state = tmp_ / ".big.bin.silo-get.state";
  ProcessOptions o;
  o.argv = {SILO_BINARY,     "--store", tmp_ / "store", "get", nginx_->url("big.bin"), "-o", out,
            "--connections", "2",       "--limit-rate", "4M"};
  o.stdout_path = tmp_ / "first.log";
  o.stderr_path = tmp_ / "first.log";
  Process first(o);
  // Wait until at least one part is recorded, then kill without warning.
  for (int i = 0; i < 600 && StateDone(state) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_GT(StateDone(state), 0u) << ReadFileToString(tmp_ / "first.log");
  ::kill(first.pid(), SIGKILL);
  first.Wait(std::chrono::seconds(10));
  ASSERT_FALSE(fs::exists(out)) << "nothing visible before the whole file is verified";
  uint64_t done = StateDone(state);
  ASSERT_LT(done, data.size()) << "killed too late to test resuming";

  uint64_t before = nginx_->BytesSent();
  auto r = RunSilo(tmp_ / "store", {"get", nginx_->url("big.bin"), "-o", out});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming"), std::string::npos) << r.err;
  EXPECT_EQ(ReadFileToString(out), data);
  EXPECT_EQ(nginx_->BytesSent() - before, data.size() - done) << "only the missing bytes moved";
  EXPECT_FALSE(fs::exists(state));
}

TEST_F(GetNginxTest, ChangedRemoteFileStartsOver) {
  std::string data = RandomBytes(24 << 20, 13);
  WriteFile(tmp_ / "www/f.bin", data);
  std::string out = tmp_ / "f.bin";
  std::string state = tmp_ / ".f.bin.silo-get.state";
  ProcessOptions o;
  o.argv = {SILO_BINARY,     "--store", tmp_ / "store", "get", nginx_->url("f.bin"), "-o", out,
            "--connections", "1",       "--limit-rate", "4M"};
  o.stdout_path = tmp_ / "first.log";
  o.stderr_path = tmp_ / "first.log";
  Process first(o);
  for (int i = 0; i < 600 && StateDone(state) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_GT(StateDone(state), 0u);
  ::kill(first.pid(), SIGKILL);
  first.Wait(std::chrono::seconds(10));
  // The remote file changes (new ETag): the saved progress no longer applies.
  std::string changed = RandomBytes(24 << 20, 14);
  WriteFile(tmp_ / "www/f.bin.new", changed);
  fs::rename(tmp_ / "www/f.bin.new", tmp_ / "www/f.bin");
  auto r = RunSilo(tmp_ / "store", {"get", nginx_->url("f.bin"), "-o", out});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("resuming"), std::string::npos) << r.err;
  EXPECT_EQ(ReadFileToString(out), changed);
}

TEST_F(GetNginxTest, ErrorsNameTheUrlAndLeaveNothing) {
  auto r = RunSilo(tmp_ / "store", {"get", nginx_->url("missing.bin"), "-o", tmp_ / "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("404"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("missing.bin"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp_ / "x"));
  int port = FreeLoopbackPort();
  r = RunSilo(tmp_ / "store", {"get", "http://127.0.0.1:" + std::to_string(port) + "/f", "-o", tmp_ / "x", "--retries",
                               "1", "--timeout", "5s"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(std::to_string(port)), std::string::npos) << r.err;
  r = RunSilo(tmp_ / "store", {"get", "ftp://example/x", "-o", tmp_ / "x"});
  EXPECT_EQ(r.code, 2) << r.err;
  r = RunSilo(tmp_ / "store", {"get", nginx_->url("x"), "-o", tmp_ / "x", "--connections", "0"});
  EXPECT_EQ(r.code, 2) << r.err;
  r = RunSilo(tmp_ / "store", {"get", nginx_->url("x"), "-o", tmp_ / "x", "--timeout", "soon"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("--timeout"), std::string::npos) << r.err;
}

TEST_F(GetNginxTest, FollowSeesAppendedData) {
  std::string served = tmp_ / "www/app.log";
  std::string first = RandomBytes(100000, 15);
  WriteFile(served, first);
  std::string out = tmp_ / "app.log";
  ProcessOptions o;
  o.argv = {SILO_BINARY, "--store", tmp_ / "store", "get",        nginx_->url("app.log"),
            "-o",        out,       "--follow",     "--interval", "100ms"};
  o.stdout_path = tmp_ / "follow.log";
  o.stderr_path = tmp_ / "follow.log";
  Process follow(o);
  auto wait_for = [&](const std::string& want) {
    for (int i = 0; i < 400; ++i) {
      if (fs::exists(out) && ReadFileToString(out) == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  ASSERT_TRUE(wait_for(first)) << ReadFileToString(tmp_ / "follow.log");
  uint64_t before = nginx_->BytesSent();
  std::string more = RandomBytes(5000, 16);
  {
    std::ofstream app(served, std::ios::app | std::ios::binary);
    app << more;
  }
  ASSERT_TRUE(wait_for(first + more)) << ReadFileToString(tmp_ / "follow.log");
  EXPECT_EQ(nginx_->BytesSent() - before, more.size()) << "only the appended bytes moved";
  {
    std::ofstream app(served, std::ios::app | std::ios::binary);
    app << "tail";
  }
  ASSERT_TRUE(wait_for(first + more + "tail"));
  EXPECT_EQ(follow.Stop(), 130) << "SIGTERM ends following as an interruption";
  std::string log = ReadFileToString(tmp_ / "follow.log");
  EXPECT_NE(log.find("follow"), std::string::npos) << log;
}

// The config file: flags over file over defaults, and `silo config show` says which.
class ConfigCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(tmp_ / "home");
    ::setenv("SILO_HOME", (tmp_ / "home").c_str(), 1);
  }
  void TearDown() override { ::unsetenv("SILO_HOME"); }
  TempDir tmp_;
};

TEST_F(ConfigCliTest, ShowsEffectiveValuesAndSources) {
  WriteFile(tmp_ / "home/silo.conf", "# test\n[get]\nconnections = 3\nretries = \"7\"\n");
  auto r = RunSilo(tmp_ / "store", {"config", "show"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::string conf = tmp_ / "home/silo.conf";
  EXPECT_NE(r.out.find("# " + conf), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("connections = 3    # " + conf + ":3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("retries = 7    # " + conf + ":4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("timeout = 60s    # default"), std::string::npos) << r.out;
  r = RunSilo(tmp_ / "store", {"config", "path"});
  EXPECT_EQ(Trim(r.out), conf);
}

TEST_F(ConfigCliTest, BadFilesAreNamedWithTheLine) {
  WriteFile(tmp_ / "home/silo.conf", "[get]\nconnections = 3\nbogus = 1\n");
  auto r = RunSilo(tmp_ / "store", {"config", "show"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("silo.conf:3: unknown key get.bogus"), std::string::npos) << r.err;
  r = RunSilo(tmp_ / "store", {"get", "http://127.0.0.1:1/x", "-o", tmp_ / "x"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("silo.conf:3"), std::string::npos) << r.err;

  WriteFile(tmp_ / "home/silo.conf", "[get]\nconnections = many\n");
  r = RunSilo(tmp_ / "store", {"get", "http://127.0.0.1:1/x", "-o", tmp_ / "x"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("silo.conf:2: get.connections"), std::string::npos) << r.err;

  WriteFile(tmp_ / "home/silo.conf", "connections = 3\n");
  r = RunSilo(tmp_ / "store", {"config", "show"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("outside a [section]"), std::string::npos) << r.err;
}

TEST_F(ConfigCliTest, FlagsOverFileOverDefaults) {
  // The file's --connections 0 would be refused; a flag overrides it.
  WriteFile(tmp_ / "home/silo.conf", "[get]\nconnections = 0\n");
  std::string www = tmp_ / "www";
  fs::create_directories(www);
  WriteFile(www + "/f", "hello");
  Nginx nginx(tmp_ / "nginx", www);
  nginx.Start();
  auto r = RunSilo(tmp_ / "store", {"get", nginx.url("f"), "-o", tmp_ / "f"});
  EXPECT_EQ(r.code, 2) << "the file's value applies";
  EXPECT_NE(r.err.find("--connections"), std::string::npos) << r.err;
  r = RunSilo(tmp_ / "store", {"get", nginx.url("f"), "-o", tmp_ / "f", "--connections", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ReadFileToString(tmp_ / "f"), "hello");
}

}  // namespace
}  // namespace silo::testing
