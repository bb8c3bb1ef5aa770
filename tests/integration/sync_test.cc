// `silo sync` between two real stores: `silo serve` on one (the source), the `silo` binary
// syncing into the other; images pulled from a real CNCF registry and a directory
// snapshot. Also the writing commands on a store a running server owns.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "tests/integration/serve_support.h"
#include "tests/integration/silo_cli.h"
#include "tests/support/imagegen.h"
#include "tests/support/process.h"
#include "tests/support/registry.h"
#include "tests/support/store_test.h"

namespace silo::testing {
namespace {

namespace fs = std::filesystem;

// A number field of the --json report.
uint64_t Field(const std::string& json, const std::string& name) {
  std::smatch m;
  std::regex re("\"" + name + "\":([0-9]+)");
  if (!std::regex_search(json, m, re)) throw std::runtime_error("no " + name + " in " + json);
  return std::stoull(m[1]);
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Every sha256:… digest in `text`, once.
std::set<std::string> Digests(const std::string& text) {
  std::set<std::string> out;
  std::regex re("sha256:[0-9a-f]{64}");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    out.insert(it->str());
  }
  return out;
}

class SyncTest : public RegistrySuite {
 protected:
  std::string src() const { return tmp_ / "src"; }
  std::string dst() const { return tmp_ / "dst"; }
  std::unique_ptr<SiloServer> Serve(std::vector<std::string> extra = {}) {
    return std::make_unique<SiloServer>(src(), tmp_ / "serve.log", std::move(extra));
  }
  void Pull(const std::string& store, const std::vector<std::string>& refs) {
    std::vector<std::string> args = {"pull", "--plain-http", registry_->host_port(), "--failed-file",
                                     tmp_ / "failed.txt"};
    args.insert(args.end(), refs.begin(), refs.end());
    auto r = RunSilo(store, args);
    ASSERT_EQ(r.code, 0) << r.err;
  }
  // A directory with small files, a nested directory, a symlink and files over 1 MiB.
  void MakeTree(const std::string& dir, int big_files, size_t big_size) {
    fs::create_directories(dir + "/sub/deeper");
    WriteFile(dir + "/a.txt", "alpha\n");
    WriteFile(dir + "/sub/b.txt", "bravo\n");
    WriteFile(dir + "/sub/deeper/c.bin", RandomBytes(100000, 3));
    WriteFile(dir + "/empty", "");
    fs::create_symlink("a.txt", dir + "/link");
    for (int i = 0; i < big_files; ++i) WriteFile(dir + "/big" + std::to_string(i), RandomBytes(big_size, 100 + i));
  }
  CliResult Sync(const std::string& url, std::vector<std::string> args) {
    std::vector<std::string> argv = {"sync", url};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunSilo(dst(), argv);
  }
};

TEST_F(SyncTest, CopiesImagesAndSnapshotsAndMovesOnlyWhatIsMissing) {
  Pull(src(), {refs_->at(0), refs_->at(1)});
  MakeTree(tmp_ / "data", 2, 3 << 20);
  auto snap = RunSilo(src(), {"snapshot", "--sha1", "--name", "docs", tmp_ / "data"});
  ASSERT_EQ(snap.code, 0) << snap.err;
  auto server = Serve({"--read-token", "sesame"});

  auto first = Sync(server->url(), {"--token", "sesame", "--json", refs_->at(0), refs_->at(1), "snapshot/docs"});
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_GT(Field(first.out, "objects_fetched"), 10u) << first.out;
  EXPECT_EQ(Field(first.out, "objects_fetched"), Field(first.out, "objects_missing"));
  EXPECT_GT(Field(first.out, "bytes_fetched"), 6u << 20);

  // The receiver holds the same images (same digests) and the snapshot.
  auto src_images = RunSilo(src(), {"images", "--json"});
  auto dst_images = RunSilo(dst(), {"images", "--json"});
  ASSERT_EQ(dst_images.code, 0) << dst_images.err;
  EXPECT_EQ(Digests(src_images.out), Digests(dst_images.out)) << dst_images.out;
  EXPECT_EQ(Digests(dst_images.out).size(), 2u) << dst_images.out;
  auto fsck = RunSilo(dst(), {"fsck"});
  EXPECT_EQ(fsck.code, 0) << fsck.out << fsck.err;
  auto restore = RunSilo(dst(), {"restore", "docs", tmp_ / "restored"});
  ASSERT_EQ(restore.code, 0) << restore.err;
  std::string diff;
  EXPECT_EQ(RunCommand({"diff", "-r", "--no-dereference", tmp_ / "data", tmp_ / "restored"}, &diff), 0) << diff;
  // File contents keep their SHA-1 alias (dsync and git name files by SHA-1).
  std::string sum;
  ASSERT_EQ(RunCommand({"sha1sum", tmp_ / "data/a.txt"}, &sum), 0);
  auto by_sha1 = RunSilo(dst(), {"cat", "sha1:" + sum.substr(0, 40)});
  EXPECT_EQ(by_sha1.code, 0) << by_sha1.err;
  EXPECT_EQ(by_sha1.out, "alpha\n");
  // An image the receiver syncs can be pushed on: every blob is there.
  auto tree = RunSilo(dst(), {"tree", refs_->at(0)});
  EXPECT_EQ(tree.code, 0) << tree.err;

  // Again: nothing moves.
  auto second = Sync(server->url(), {"--token", "sesame", refs_->at(0), refs_->at(1), "snapshot/docs"});
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_NE(second.err.find(" 0 objects, 0 bytes"), std::string::npos) << second.err;
  EXPECT_NE(second.out.find("(unchanged)"), std::string::npos) << second.out;

  // One more image on the server: only the objects of its graph the receiver lacks move.
  server->Stop();
  Pull(src(), {refs_->at(2)});
  auto graph = RunSilo(src(), {"tree", "--json", refs_->at(2)});
  ASSERT_EQ(graph.code, 0) << graph.err;
  size_t lacking = 0;
  for (const auto& d : Digests(graph.out)) lacking += RunSilo(dst(), {"stat", d}).code != 0;
  ASSERT_GT(lacking, 0u);
  server = Serve({"--read-token", "sesame"});
  auto third = Sync(server->url(), {"--token", "sesame", "--json", refs_->at(0), refs_->at(2)});
  ASSERT_EQ(third.code, 0) << third.err;
  EXPECT_EQ(Field(third.out, "objects_fetched"), lacking) << third.out;
  fsck = RunSilo(dst(), {"fsck"});
  EXPECT_EQ(fsck.code, 0) << fsck.out << fsck.err;
}

TEST_F(SyncTest, SelectsByPrefixAndRefNameAndReportsWhatMatchesNothing) {
  Pull(src(), {refs_->at(0), refs_->at(1)});
  auto server = Serve();
  // Every image of the registry, by prefix as `silo images` shows names.
  auto all = Sync(server->url(), {"--json", registry_->host_port() + "/*"});
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_EQ(Digests(RunSilo(dst(), {"images", "--json"}).out), Digests(RunSilo(src(), {"images", "--json"}).out));
  // A ref that exists and a name that does not: the first is synced, the second reported.
  auto refs = RunSilo(src(), {"ref", "ls", "image/"});
  std::string first_ref = refs.out.substr(72, refs.out.find('\n') - 72);
  auto mixed = Sync(server->url(), {first_ref, registry_->host_port() + "/no/such:image"});
  EXPECT_EQ(mixed.code, 1) << mixed.err;
  EXPECT_NE(mixed.err.find("no/such:image"), std::string::npos) << mixed.err;
  EXPECT_NE(mixed.out.find(first_ref), std::string::npos) << mixed.out;
  auto none = Sync(server->url(), {"snapshot/nothing"});
  EXPECT_EQ(none.code, 1) << none.err;
  EXPECT_NE(none.err.find("nothing"), std::string::npos) << none.err;
  // Not a URL, and a port where no silo listens.
  EXPECT_EQ(Sync("localhost:1", {"x"}).code, 2);
  auto refused = Sync("http://127.0.0.1:" + std::to_string(FreeLoopbackPort()), {"x"});
  EXPECT_EQ(refused.code, 1) << refused.err;
  EXPECT_NE(refused.err.find("127.0.0.1"), std::string::npos) << refused.err;
}

TEST_F(SyncTest, AWrongOrMissingTokenIsRefused) {
  MakeTree(tmp_ / "data", 0, 0);
  ASSERT_EQ(RunSilo(src(), {"snapshot", "--name", "docs", tmp_ / "data"}).code, 0);
  auto server = Serve({"--read-token", "sesame"});
  for (std::vector<std::string> args :
       {std::vector<std::string>{"--token", "wrong", "snapshot/docs"}, std::vector<std::string>{"snapshot/docs"},
        std::vector<std::string>{"--user", "x:wrong", "snapshot/docs"}}) {
    auto r = Sync(server->url(), args);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("401"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("access refused"), std::string::npos) << r.err;
  }
  EXPECT_EQ(RunSilo(dst(), {"snapshots"}).out.find("docs"), std::string::npos);
  // The token as a Basic password works too.
  auto ok = Sync(server->url(), {"--user", "anyone:sesame", "snapshot/docs"});
  EXPECT_EQ(ok.code, 0) << ok.err;
  // Raw requests: the sync routes are reads, so a read token is enough, none is not.
  auto anon = Curl({"-X", "POST", "--data-binary", "snapshot/docs", server->url() + "/silo/v1/sync/resolve"});
  EXPECT_EQ(anon.status, 401);
  auto bad = Curl({"-X", "POST", "-H", "Authorization: Bearer sesame", "--data-binary", "sha256:zz",
                   server->url() + "/silo/v1/sync/objects"});
  EXPECT_EQ(bad.status, 400) << bad.body;
}

TEST_F(SyncTest, AServerKilledMidSyncAndRestartedResumes) {
  MakeTree(tmp_ / "data", 24, 2 << 20);
  ASSERT_EQ(RunSilo(src(), {"snapshot", "--name", "bulk", tmp_ / "data"}).code, 0);
  auto server = Serve();
  // One object per request, slowly, so the server can be killed with most still to come.
  Process::Options o;
  o.argv = {SILO_BINARY, "--store",      dst(), "sync",         server->url(), "-j",
            "1",         "--batch-size", "1",   "--limit-rate", "8M",          "snapshot/bulk"};
  o.stdout_path = tmp_ / "sync1.out";
  o.stderr_path = tmp_ / "sync1.err";
  Process sync(o);
  // Wait for a few object responses to complete, then kill the server outright.
  auto count = [&] {
    std::string log = server->log();
    size_t n = 0;
    for (size_t at = log.find("/silo/v1/sync/objects"); at != std::string::npos;
         at = log.find("/silo/v1/sync/objects", at + 1))
      ++n;
    return n;
  };
  for (int i = 0; i < 6000 && count() < 3 && sync.Running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(count(), 3u) << server->log() << ReadFileToString(tmp_ / "sync1.err");
  ASSERT_EQ(::kill(server->process().pid(), SIGKILL), 0);
  server->process().Wait(std::chrono::seconds(30));
  auto code = sync.Wait(std::chrono::seconds(120));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 1) << ReadFileToString(tmp_ / "sync1.err");
  std::string err1 = ReadFileToString(tmp_ / "sync1.err");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(err1, m, std::regex("sync: ([0-9]+) object\\(s\\)"))) << err1;
  uint64_t planned = std::stoull(m[1]);
  EXPECT_EQ(RunSilo(dst(), {"snapshots"}).out.find("bulk"), std::string::npos);

  // The pidfile of the killed server is stale; a new server starts on the same store.
  server = Serve();
  auto again = Sync(server->url(), {"--json", "snapshot/bulk"});
  ASSERT_EQ(again.code, 0) << again.err;
  uint64_t fetched = Field(again.out, "objects_fetched");
  EXPECT_GT(fetched, 0u);
  EXPECT_LE(fetched + 2, planned) << "the first run's committed objects were fetched again: " << again.out;
  auto restore = RunSilo(dst(), {"restore", "bulk", tmp_ / "restored"});
  ASSERT_EQ(restore.code, 0) << restore.err;
  std::string diff;
  EXPECT_EQ(RunCommand({"diff", "-r", "--no-dereference", tmp_ / "data", tmp_ / "restored"}, &diff), 0) << diff;
  auto fsck = RunSilo(dst(), {"fsck"});
  EXPECT_EQ(fsck.code, 0) << fsck.out << fsck.err;
}

// A server that sends bytes not matching the digest it named: nothing becomes visible.
TEST_F(SyncTest, AnObjectThatFailsVerificationIsNotStored) {
  std::string good = "the real content\n";
  std::string digest = DigestOf(good);
  // A stand-in for silo serve that lies about one object's bytes (same size, other bytes).
  WriteFile(tmp_ / "liar.py", R"(import http.server, struct, sys
digest = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.endswith("/resolve"):
            body = ("ref export/liar " + digest + "\n").encode()
        elif self.path.endswith("/links"):
            body = (digest + " 17 -\n").encode()
        else:
            body = bytes.fromhex(digest[7:]) + struct.pack(">Q", 17) + b"not the content!\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
)");
  int port = FreeLoopbackPort();
  Process::Options o;
  o.argv = {"python3", tmp_ / "liar.py", std::to_string(port), digest};
  o.stdout_path = tmp_ / "liar.log";
  o.stderr_path = tmp_ / "liar.log";
  Process liar(o);
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  for (int i = 0; i < 200 && Curl({"-X", "POST", "-d", "x", url + "/silo/v1/sync/resolve"}).status != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto r = Sync(url, {"export/liar"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find(digest), std::string::npos) << r.err;
  EXPECT_NE(RunSilo(dst(), {"stat", digest}).code, 0);
  EXPECT_NE(RunSilo(dst(), {"ref", "get", "export/liar"}).code, 0);
  liar.Stop();
}

TEST_F(SyncTest, WritingCommandsOnAServedStoreAreForwardedOrRefused) {
  // The source: another server to sync from.
  MakeTree(tmp_ / "data", 1, 2 << 20);
  ASSERT_EQ(RunSilo(src(), {"snapshot", "--name", "docs", tmp_ / "data"}).code, 0);
  auto source = Serve();
  // The receiving store is served too, with write credentials required from users.
  WriteFile(tmp_ / "x", "payload\n");
  auto put = RunSilo(dst(), {"put", tmp_ / "x"});
  ASSERT_EQ(put.code, 0) << put.err;
  std::string digest = Trim(put.out.substr(0, put.out.find(' ')));
  SiloServer owner(dst(), tmp_ / "owner.log", {"--write-token", "w"});
  std::string pid = std::to_string(owner.process().pid());

  // Forwarded: ref set / rm and sync run in the server.
  auto set = RunSilo(dst(), {"ref", "set", "export/x", digest});
  EXPECT_EQ(set.code, 0) << set.err;
  EXPECT_EQ(Trim(RunSilo(dst(), {"ref", "get", "export/x"}).out), digest);
  auto clash = RunSilo(dst(), {"ref", "set", "--create-only", "export/x", digest});
  EXPECT_EQ(clash.code, 1) << clash.err;
  EXPECT_NE(clash.err.find("409"), std::string::npos) << clash.err;
  auto rm = RunSilo(dst(), {"ref", "rm", "export/x"});
  EXPECT_EQ(rm.code, 0) << rm.err;
  EXPECT_NE(RunSilo(dst(), {"ref", "get", "export/x"}).code, 0);
  auto sync = RunSilo(dst(), {"sync", source->url(), "snapshot/docs"});
  EXPECT_EQ(sync.code, 0) << sync.err;
  EXPECT_NE(sync.err.find("pid " + pid), std::string::npos) << sync.err;
  EXPECT_NE(RunSilo(dst(), {"snapshots"}).out.find("docs"), std::string::npos);

  // Refused, naming the server and how to stop it; never a lock error.
  MakeTree(tmp_ / "more", 0, 0);
  std::vector<std::vector<std::string>> refused = {
      {"put", tmp_ / "x"},         {"gc"},
      {"snapshot", tmp_ / "more"}, {"forget", "docs", "--keep-last", "1"},
      {"fsck", "--repair"},        {"import", "--snapshot", "pkg", tmp_ / "none.tar"},
  };
  for (const auto& args : refused) {
    auto r = RunSilo(dst(), args);
    EXPECT_NE(r.code, 0) << args[0];
    EXPECT_NE(r.err.find("silo serve (pid " + pid), std::string::npos) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("serve stop"), std::string::npos) << args[0] << ": " << r.err;
    EXPECT_EQ(r.err.find("LOCK"), std::string::npos) << args[0] << ": " << r.err;
  }
  owner.Stop();
  // Once stopped, the commands work directly again.
  EXPECT_EQ(RunSilo(dst(), {"gc"}).code, 0);
}

}  // namespace
}  // namespace silo::testing
