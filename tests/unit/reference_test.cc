#include "index/reference.h"

#include <gtest/gtest.h>

namespace silo::index {
namespace {

TEST(Reference, DockerDefaults) {
  auto r = ParseReference("nginx");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ToString(), "docker.io/library/nginx:latest");
  EXPECT_EQ(ParseReference("bitnami/redis:7")->ToString(), "docker.io/bitnami/redis:7");
  EXPECT_EQ(ParseReference("localhost/app")->registry, "localhost");
}

TEST(Reference, RegistriesPortsAndDigests) {
  const std::string dig = "sha256:" + std::string(64, 'a');
  auto r = ParseReference("127.0.0.1:5000/team/app:1.0@" + dig);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->registry, "127.0.0.1:5000");
  EXPECT_EQ(r->repository, "team/app");
  EXPECT_EQ(r->tag, "1.0");
  EXPECT_EQ(r->digest, dig);
  EXPECT_EQ(r->Identifier(), dig);
  auto p = ParseReference("registry.example.com:443/app");
  EXPECT_EQ(p->tag, "latest");
  EXPECT_EQ(ParseReference("app", "127.0.0.1:5000")->ToString(), "127.0.0.1:5000/app:latest");
}

TEST(Reference, RejectsMalformed) {
  for (const char* bad : {"", "UPPER/case", "app:", "app@sha256:abc", "a//b", "app:bad tag", "-app"}) {
    auto r = ParseReference(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
}

}  // namespace
}  // namespace silo::index
