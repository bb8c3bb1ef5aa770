// Access control: CIDR matching (IPv4, IPv6, mapped), htpasswd files made by the real
// `htpasswd` tool, tokens for read and write, deny globs and directories, and the decoding
// of request paths that must never leave a share.
#include "transfer/access.h"

#include <gtest/gtest.h>

#include "tests/support/process.h"
#include "tests/support/store_test.h"
#include "transfer/http.h"

namespace silo::testing {
namespace {

using transfer::AccessControl;
using transfer::AccessPolicy;
using transfer::Cidr;
using transfer::Need;

TEST(CidrTest, MatchesIpv4Ipv6AndMapped) {
  auto net = Cidr::Parse("10.0.0.0/8");
  ASSERT_TRUE(net.ok()) << net.status().message();
  EXPECT_TRUE(net->Contains("10.1.2.3"));
  EXPECT_TRUE(net->Contains("::ffff:10.200.0.1"));
  EXPECT_FALSE(net->Contains("127.0.0.1"));
  EXPECT_FALSE(net->Contains("11.0.0.1"));
  EXPECT_FALSE(net->Contains("::1"));
  EXPECT_FALSE(net->Contains("not an address"));

  auto odd = Cidr::Parse("192.168.1.128/25");
  ASSERT_TRUE(odd.ok());
  EXPECT_TRUE(odd->Contains("192.168.1.200"));
  EXPECT_FALSE(odd->Contains("192.168.1.100"));

  auto v6 = Cidr::Parse("fd00::/8");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(v6->Contains("fd12:3456::1"));
  EXPECT_TRUE(v6->Contains("[fd12::1]"));
  EXPECT_FALSE(v6->Contains("fe80::1"));
  EXPECT_FALSE(v6->Contains("10.0.0.1"));

  auto host = Cidr::Parse("::1");
  ASSERT_TRUE(host.ok());
  EXPECT_TRUE(host->Contains("::1"));
  EXPECT_FALSE(host->Contains("::2"));
  EXPECT_EQ(host->ToString(), "::1/128");

  auto all = Cidr::Parse("0.0.0.0/0");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->Contains("8.8.8.8"));
}

TEST(CidrTest, RefusesMalformed) {
  for (const char* bad : {"10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/", "10.0.0.0/x", "host.example", ""}) {
    auto c = Cidr::Parse(bad);
    EXPECT_FALSE(c.ok()) << bad;
    if (!c.ok()) {
      EXPECT_NE(c.status().message().find(bad), std::string::npos) << c.status().message();
    }
  }
}

TEST(AccessTest, PeerAllowList) {
  AccessPolicy p;
  p.allow.push_back(*Cidr::Parse("10.0.0.0/8"));
  AccessControl ac(p);
  EXPECT_EQ(ac.CheckPeer("127.0.0.1").status, 403);
  EXPECT_TRUE(ac.CheckPeer("10.9.9.9").allowed());
  AccessControl open{AccessPolicy{}};
  EXPECT_TRUE(open.CheckPeer("127.0.0.1").allowed());
}

TEST(AccessTest, TokensSeparateForReadAndWrite) {
  AccessPolicy p;
  p.read_tokens = {"r-token"};
  p.write_tokens = {"w-token"};
  AccessControl ac(p);
  EXPECT_EQ(ac.CheckAuth("", Need::kRead).status, 401);
  EXPECT_TRUE(ac.CheckAuth("Bearer r-token", Need::kRead).allowed());
  EXPECT_TRUE(ac.CheckAuth("bearer  w-token", Need::kRead).allowed());  // write implies read
  EXPECT_EQ(ac.CheckAuth("Bearer r-token", Need::kWrite).status, 401);
  EXPECT_TRUE(ac.CheckAuth("Bearer w-token", Need::kWrite).allowed());
  EXPECT_EQ(ac.CheckAuth("Bearer r-tokenX", Need::kRead).status, 401);
  EXPECT_EQ(ac.CheckAuth("Digest abc", Need::kRead).status, 401);
  // A token as the Basic password.
  EXPECT_TRUE(ac.CheckAuth("Basic " + transfer::Base64Encode("any:r-token"), Need::kRead).allowed());

  AccessPolicy only_write;
  only_write.write_tokens = {"w"};
  AccessControl w(only_write);
  EXPECT_TRUE(w.CheckAuth("", Need::kRead).allowed()) << "no read credentials: reading is open";
  EXPECT_EQ(w.CheckAuth("", Need::kWrite).status, 401);
  AccessPolicy only_read;
  only_read.read_tokens = {"r"};
  AccessControl r(only_read);
  EXPECT_TRUE(r.CheckAuth("", Need::kWrite).allowed()) << "no write credentials: writing is open";
  EXPECT_EQ(r.CheckAuth("", Need::kRead).status, 401);
}

TEST(AccessTest, HtpasswdFromTheRealTool) {
  TempDir tmp;
  std::string file = tmp / "htpasswd";
  std::string out;
  ASSERT_EQ(RunCommand({"htpasswd", "-B", "-C", "5", "-b", "-c", file, "alice", "s3cret"}, &out), 0) << out;
  ASSERT_EQ(RunCommand({"htpasswd", "-s", "-b", file, "bob", "hunter2"}, &out), 0) << out;
  auto h = transfer::Htpasswd::Load(file);
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(h->size(), 2u);
  EXPECT_TRUE(h->Check("alice", "s3cret"));
  EXPECT_TRUE(h->Check("alice", "s3cret"));  // from the cache
  EXPECT_FALSE(h->Check("alice", "s3cret "));
  EXPECT_FALSE(h->Check("alice", "hunter2"));
  EXPECT_TRUE(h->Check("bob", "hunter2"));
  EXPECT_FALSE(h->Check("bob", "s3cret"));
  EXPECT_FALSE(h->Check("carol", "s3cret"));

  AccessPolicy p;
  p.write_htpasswd = *h;
  AccessControl ac(p);
  EXPECT_TRUE(ac.CheckAuth("Basic " + transfer::Base64Encode("alice:s3cret"), Need::kWrite).allowed());
  EXPECT_EQ(ac.CheckAuth("Basic " + transfer::Base64Encode("alice:nope"), Need::kWrite).status, 401);
  EXPECT_EQ(ac.CheckAuth("Basic !!!", Need::kWrite).status, 401);
}

TEST(AccessTest, HtpasswdRefusesUnsupportedAndMalformed) {
  TempDir tmp;
  std::string file = tmp / "htpasswd";
  std::string out;
  ASSERT_EQ(RunCommand({"htpasswd", "-m", "-b", "-c", file, "md5user", "pw"}, &out), 0) << out;
  auto h = transfer::Htpasswd::Load(file);
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.status().message().find("md5user"), std::string::npos) << h.status().message();
  EXPECT_NE(h.status().message().find(":1:"), std::string::npos) << h.status().message();
  EXPECT_FALSE(transfer::Htpasswd::Parse("# c\n\nnocolon\n", "x").ok());
  EXPECT_FALSE(transfer::Htpasswd::Parse("plain:password\n", "x").ok());
  EXPECT_FALSE(transfer::Htpasswd::Load(tmp / "missing").ok());
}

TEST(AccessTest, DenyGlobsAndDirectories) {
  AccessPolicy p;
  p.deny_files = {"*.key", ".git", "logs/*.old"};
  p.deny_dirs = {"private/", "/srv/abs/secret"};
  AccessControl ac(p);
  EXPECT_TRUE(ac.CheckPath("", "").allowed());
  EXPECT_TRUE(ac.CheckPath("a/b.txt", "").allowed());
  EXPECT_EQ(ac.CheckPath("a/server.key", "").status, 403);
  EXPECT_EQ(ac.CheckPath("server.key", "").status, 403);
  EXPECT_EQ(ac.CheckPath("repo/.git/config", "").status, 403) << "a denied directory name denies beneath";
  EXPECT_EQ(ac.CheckPath("logs/a.old", "").status, 403);
  EXPECT_TRUE(ac.CheckPath("x/logs/a.old", "").allowed()) << "a glob with '/' matches the whole path";
  EXPECT_EQ(ac.CheckPath("private", "").status, 403);
  EXPECT_EQ(ac.CheckPath("private/x/y", "").status, 403);
  EXPECT_TRUE(ac.CheckPath("privateer/x", "").allowed());
  EXPECT_EQ(ac.CheckPath("s/x", "/srv/abs/secret/x").status, 403);
  EXPECT_TRUE(ac.CheckPath("s/x", "/srv/abs/secretive/x").allowed());
}

TEST(AccessTest, DecodeSharePathConfines) {
  auto ok = [](std::string_view in) {
    auto r = transfer::DecodeSharePath(in);
    return r.ok() ? *r : "ERROR: " + r.status().message();
  };
  EXPECT_EQ(ok(""), "");
  EXPECT_EQ(ok("a/b%20c/d.txt"), "a/b c/d.txt");
  EXPECT_EQ(ok("a//./b/"), "a/b");
  EXPECT_EQ(ok("/etc/passwd"), "etc/passwd") << "a leading slash stays inside the share";
  EXPECT_EQ(ok("%252e%252e"), "%2e%2e") << "decoded once only";
  EXPECT_EQ(ok("..."), "...");
  for (const char* bad :
       {"..", "a/../../etc", "%2e%2e/x", "%2E%2e", "a%2f..%2fb", "%2fetc%2fpasswd", "a%00b", "a\\..", "%zz", "%2"}) {
    EXPECT_FALSE(transfer::DecodeSharePath(bad).ok()) << bad;
  }
  EXPECT_EQ(transfer::EncodeSharePath("a b/c%d"), "a%20b/c%25d");
  EXPECT_EQ(ok(transfer::EncodeSharePath("x y/\xff.bin")), "x y/\xff.bin");
}

}  // namespace
}  // namespace silo::testing
