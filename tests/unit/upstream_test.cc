// --upstream REGISTRY[=URL] parsing (transfer/server/upstream.h): accepted forms and clear
// errors naming the input.
#include "transfer/server/upstream.h"

#include <gtest/gtest.h>

namespace silo::server {
namespace {

TEST(UpstreamSpec, ParsesARegistryAndAnOptionalUrl) {
  auto a = ParseUpstreamSpec("docker.io=http://127.0.0.1:5001");
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->registry, "docker.io");
  EXPECT_EQ(a->endpoint, "http://127.0.0.1:5001");
  auto b = ParseUpstreamSpec("127.0.0.1:5001");
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->registry, "127.0.0.1:5001");
  EXPECT_EQ(b->endpoint, "");
  auto c = ParseUpstreamSpec("quay.io=https://mirror.example:8443/");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->endpoint, "https://mirror.example:8443");
}

TEST(UpstreamSpec, RefusesMalformedInputNamingIt) {
  for (const char* bad :
       {"", "=http://x", "a b", "docker.io=ftp://x", "docker.io=http://x/path", "docker.io=http://"}) {
    auto r = ParseUpstreamSpec(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find(std::string("\"") + bad + "\""), std::string::npos) << r.status().message();
  }
}

TEST(Upstreams, FindsOnlyTheRegistriesAdded) {
  Upstreams ups;
  EXPECT_TRUE(ups.empty());
  ups.Add({"docker.io", "http://127.0.0.1:5001"}, {});
  EXPECT_FALSE(ups.empty());
  ASSERT_NE(ups.Find("docker.io"), nullptr);
  EXPECT_EQ(ups.Find("docker.io")->fetch.registry(), "docker.io");
  EXPECT_EQ(ups.Find("quay.io"), nullptr);
}

}  // namespace
}  // namespace silo::server
