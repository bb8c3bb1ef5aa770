// silo.conf parsing: sections, repeated keys, quotes, comments, and errors naming FILE:LINE.
#include "util/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "tests/support/store_test.h"

namespace silo::testing {
namespace {

TEST(ConfigTest, ParsesSectionsListsAndQuotes) {
  auto c = Config::Parse(
      "# comment\n; also\n\n[serve]\nlisten = 127.0.0.1:5000\nshare = a=/x\nshare=b=/y\n[get]\n"
      "  parts =  16  \ntoken = \" spaced \"\n",
      "f.conf");
  ASSERT_TRUE(c.ok()) << c.status().message();
  const ConfigEntry* share = c->Find("serve", "share");
  ASSERT_NE(share, nullptr);
  EXPECT_EQ(share->values, (std::vector<std::string>{"a=/x", "b=/y"}));
  EXPECT_EQ(share->source, "f.conf:6");
  EXPECT_EQ(c->Find("get", "parts")->values.front(), "16");
  EXPECT_EQ(c->Find("get", "token")->values.front(), " spaced ");
  EXPECT_EQ(c->Find("get", "listen"), nullptr);
  EXPECT_EQ(c->entries().size(), 4u);
}

TEST(ConfigTest, ErrorsNameFileAndLine) {
  struct Case {
    const char* text;
    const char* want;
  };
  for (const Case& k : std::vector<Case>{{"key = 1\n", "f:1: key 'key' outside a [section]"},
                                         {"[get]\n\njunk\n", "f:3: expected 'key = value'"},
                                         {"[get\n", "f:1: a section line must end with ']'"},
                                         {"[]\n", "f:1: bad section name"},
                                         {"[get]\n = 3\n", "f:2: bad key"}}) {
    auto c = Config::Parse(k.text, "f");
    ASSERT_FALSE(c.ok()) << k.text;
    EXPECT_NE(c.status().message().find(k.want), std::string::npos) << c.status().message();
  }
}

TEST(ConfigTest, LoadsFromSiloHomeAndToleratesAMissingFile) {
  TempDir tmp;
  ::setenv("SILO_HOME", tmp.path().c_str(), 1);
  EXPECT_EQ(DefaultConfigPath(), tmp / "silo.conf");
  auto missing = Config::Load(DefaultConfigPath());
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->entries().empty());
  WriteFile(tmp / "silo.conf", "[get]\nretries = 2\n");
  auto c = Config::Load(DefaultConfigPath());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->Find("get", "retries")->source, tmp / "silo.conf:2");
  ::unsetenv("SILO_HOME");
}

}  // namespace
}  // namespace silo::testing
