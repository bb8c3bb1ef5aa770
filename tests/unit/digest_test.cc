#include "store/digest.h"

#include <gtest/gtest.h>

namespace silo::store {
namespace {

constexpr const char* kHello = "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

TEST(Digest, ParsesAndFormatsSha256) {
  auto d = Digest::Parse(kHello);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_TRUE(d->is_sha256());
  EXPECT_EQ(d->ToString(), kHello);
  EXPECT_EQ(d->Short(), "sha256:5891b5b522d5");
  EXPECT_EQ(d->raw().size(), 32u);
}

TEST(Digest, ParsesSha1AndUppercaseHex) {
  auto d = Digest::Parse("sha1:F572D396FAE9206628714FB2CE00F72E94F2258F");
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->is_sha256());
  EXPECT_EQ(d->ToString(), "sha1:f572d396fae9206628714fb2ce00f72e94f2258f");
}

TEST(Digest, RejectsMalformedInputWithTheInputNamed) {
  for (const char* bad : {"", "sha256", "sha256:", "md5:abcd", "sha256:xyz",
                          "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be0",
                          "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03a",
                          "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6beZZ"}) {
    auto d = Digest::Parse(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().code(), Code::kInvalidArgument);
    EXPECT_NE(d.status().message().find(std::string("'") + bad + "'"), std::string::npos) << d.status().message();
  }
}

TEST(Digest, OrdersAndCompares) {
  auto a = *Digest::Parse(kHello);
  auto b = Digest::Sha256(Sha256::Of(AsBytes("other")));
  EXPECT_NE(a, b);
  EXPECT_EQ(a, *Digest::Parse(kHello));
  EXPECT_TRUE((a < b) != (b < a));
}

}  // namespace
}  // namespace silo::store
