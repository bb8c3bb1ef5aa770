// The pure parts of `silo serve`: repository name mapping, Range parsing, routing,
// percent-decoding and listen addresses.
#include "transfer/server/server.h"

#include <gtest/gtest.h>

#include "transfer/server/access_log.h"
#include "transfer/server/repo_map.h"
#include "transfer/server/router.h"

namespace silo::server {
namespace {

TEST(RepoMap, NamesWithARegistryMapToItsRefs) {
  auto nginx = MapRepository("docker.io/library/nginx", "localhost");
  ASSERT_TRUE(nginx.ok());
  EXPECT_EQ(nginx->registry, "docker.io");
  EXPECT_EQ(nginx->repository, "library/nginx");
  EXPECT_EQ(nginx->TagRef("1.25"), "image/docker.io/library/nginx:1.25");

  auto port = MapRepository("127.0.0.1_5000/team/app", "localhost");
  ASSERT_TRUE(port.ok());
  EXPECT_EQ(port->registry, "127.0.0.1:5000");
  EXPECT_EQ(port->repository, "team/app");
  auto local = MapRepository("localhost/app", "silo.example");
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(local->registry, "localhost");
  EXPECT_EQ(local->repository, "app");
}

TEST(RepoMap, PlainNamesGoToTheDefaultRegistry) {
  for (std::string name : {"app", "team/app", "a-b/c__d/e.f"}) {
    auto loc = MapRepository(name, "localhost");
    ASSERT_TRUE(loc.ok()) << name;
    EXPECT_EQ(loc->registry, "localhost");
    EXPECT_EQ(loc->repository, name);
  }
  // A single component is a repository even when it looks like a host.
  auto single = MapRepository("my.app", "localhost");
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->registry, "localhost");
  EXPECT_EQ(single->repository, "my.app");
}

TEST(RepoMap, InvalidNamesAreRefusedNamingTheInput) {
  for (std::string name : {"", "App", "a//b", "/a", "a/", "a..b", "-a", "a_", "a:5000/b", "a/b c", "a/../b"}) {
    auto loc = MapRepository(name, "localhost");
    EXPECT_FALSE(loc.ok()) << name;
    if (!loc.ok()) {
      EXPECT_NE(loc.status().message().find("\"" + name + "\""), std::string::npos);
    }
  }
}

TEST(RepoMap, ServedNamesRoundTrip) {
  struct Case {
    RepoLocation loc;
    std::optional<std::string> want;
  } cases[] = {
      {{"docker.io", "library/nginx"}, "docker.io/library/nginx"},
      {{"127.0.0.1:5000", "team/app"}, "127.0.0.1_5000/team/app"},
      {{"localhost", "app"}, "app"},
      {{"localhost", "docker.io/x"}, "localhost/docker.io/x"},  // the short form would mean docker.io
      {{"quay.io", "Upper"}, std::nullopt},                     // not a valid name
      {{"myregistry", "app"}, std::nullopt},                    // "myregistry/app" would mean localhost
  };
  for (const auto& c : cases) {
    auto served = ServedName(c.loc, "localhost");
    EXPECT_EQ(served, c.want) << c.loc.registry << "/" << c.loc.repository;
    if (served) {
      auto back = MapRepository(*served, "localhost");
      ASSERT_TRUE(back.ok());
      EXPECT_EQ(*back, c.loc);
    }
  }
}

TEST(RepoMap, ImageRefsSplitAtTheirTagOrDigest) {
  auto tag = ParseImageRef("image/127.0.0.1:5000/team/app:1.0");
  ASSERT_TRUE(tag);
  EXPECT_EQ(tag->location.registry, "127.0.0.1:5000");
  EXPECT_EQ(tag->location.repository, "team/app");
  EXPECT_EQ(tag->tag, "1.0");
  auto dig = ParseImageRef("image/docker.io/library/nginx@sha256:abc");
  ASSERT_TRUE(dig);
  EXPECT_EQ(dig->location.repository, "library/nginx");
  EXPECT_EQ(dig->digest, "sha256:abc");
  EXPECT_FALSE(ParseImageRef("snapshot/x/1"));
  EXPECT_FALSE(ParseImageRef("image/docker.io/nginx"));
  EXPECT_TRUE(ValidTag("v1.0-rc_1"));
  EXPECT_FALSE(ValidTag(".hidden"));
  EXPECT_FALSE(ValidTag(std::string(129, 'a')));
}

TEST(Range, SingleRangesAndTheirLimits) {
  ByteRange r;
  EXPECT_EQ(ParseRange("bytes=0-9", 100, &r), RangeResult::kRange);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(r.last, 9u);
  EXPECT_EQ(ParseRange("bytes=90-", 100, &r), RangeResult::kRange);
  EXPECT_EQ(r.size(), 10u);
  EXPECT_EQ(ParseRange("bytes=-5", 100, &r), RangeResult::kRange);
  EXPECT_EQ(r.first, 95u);
  EXPECT_EQ(ParseRange("bytes=-500", 100, &r), RangeResult::kRange);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(ParseRange("bytes=50-5000", 100, &r), RangeResult::kRange);
  EXPECT_EQ(r.last, 99u);
  EXPECT_EQ(ParseRange("bytes=100-", 100, &r), RangeResult::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=-0", 100, &r), RangeResult::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=0-", 0, &r), RangeResult::kUnsatisfiable);
  for (std::string bad : {"", "bytes=", "bytes=a-b", "bytes=5-1", "items=0-1", "bytes=0-1,5-6", "bytes=1"}) {
    EXPECT_EQ(ParseRange(bad, 100, &r), RangeResult::kNone) << bad;
  }
}

TEST(Router, LongestPrefixWinsAndExactPathsMatchExactly) {
  Router router;
  router.Add("/v2/", [](Request&) { return Response::Text(200, "v2"); });
  router.Add("/v2/_catalog", [](Request&) { return Response::Text(200, "catalog"); });
  router.Add("/files/", [](Request&) { return Response::Text(200, "files"); });
  Request req;
  auto body = [&](std::string_view path) -> std::string {
    const Handler* h = router.Find(path);
    return h ? (*h)(req).body : "none";
  };
  EXPECT_EQ(body("/v2/app/tags/list"), "v2");
  EXPECT_EQ(body("/v2/_catalog"), "catalog");
  EXPECT_EQ(body("/v2/_catalogue"), "v2");
  EXPECT_EQ(body("/files/a/b"), "files");
  EXPECT_EQ(body("/filesx"), "none");
  EXPECT_EQ(body("/"), "none");
}

TEST(Request, HeadersAndQueryParameters) {
  Request req;
  req.headers = {{"Content-Type", "a"}, {"X-Thing", "b"}};
  req.query = "n=10&last=a%2Fb&flag&plus=a+b";
  EXPECT_EQ(req.Header("content-type"), "a");
  EXPECT_FALSE(req.Header("missing"));
  EXPECT_EQ(req.QueryParam("n"), "10");
  EXPECT_EQ(req.QueryParam("last"), "a/b");
  EXPECT_EQ(req.QueryParam("flag"), "");
  EXPECT_EQ(req.QueryParam("plus"), "a b");
  EXPECT_FALSE(req.QueryParam("nope"));
  EXPECT_EQ(*PercentDecode("%2e%2E/x"), "../x");
  EXPECT_FALSE(PercentDecode("%2").ok());
  EXPECT_FALSE(PercentDecode("%zz").ok());
  EXPECT_FALSE(PercentDecode("a%00b").ok());
}

TEST(Listen, AddressesParseAndBadOnesNameTheInput) {
  auto v4 = ParseListenAddress("127.0.0.1:5000");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 5000);
  auto v6 = ParseListenAddress("[::1]:0");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  auto any = ParseListenAddress(":8080");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->host, "0.0.0.0");
  for (std::string bad : {"5000", "host:5000", "1.2.3.4:99999", "::1:5000", "[::1]5000", "1.2.3.4:"}) {
    auto r = ParseListenAddress(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find(bad), std::string::npos);
    }
  }
}

TEST(AccessLog, ValuesAreQuotedOnlyWhenNeeded) {
  EXPECT_EQ(LogfmtValue("/v2/app"), "/v2/app");
  EXPECT_EQ(LogfmtValue("a b"), "\"a b\"");
  EXPECT_EQ(LogfmtValue("q\"x"), "\"q\\\"x\"");
  EXPECT_EQ(LogfmtValue(""), "\"\"");
  EXPECT_EQ(LogfmtValue("a\nb"), "\"a\\x0ab\"");
}

}  // namespace
}  // namespace silo::server
