#include <gtest/gtest.h>

#include "transfer/local_file.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/result.h"
#include "util/single_flight.h"
#include "util/units.h"

namespace silo {
namespace {

Status Inner() {
  return Status::Integrity("size 1024, manifest says 2048");
}
Status Outer() {
  SILO_TRY(Inner().WithContext("blob sha256:ab"));
  return Status::Ok();
}
Result<int> Half(int v) {
  if (v % 2) return Status::InvalidArgument("odd");
  return v / 2;
}
Result<int> Quarter(int v) {
  SILO_ASSIGN_OR_RETURN(int h, Half(v));
  return Half(h);
}

TEST(Result, ContextAccumulatesAndCodesSurvive) {
  Status s = Outer().WithContext("pull 127.0.0.1:5000/app:1.0");
  EXPECT_EQ(s.code(), Code::kIntegrity);
  EXPECT_EQ(s.message(), "pull 127.0.0.1:5000/app:1.0: blob sha256:ab: size 1024, manifest says 2048");
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().message(), "odd");
}

TEST(Json, QuotesAndEscapes) {
  EXPECT_EQ(JsonQuote(""), "\"\"");
  EXPECT_EQ(JsonQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonQuote("l1\nl2\tx\r"), "\"l1\\nl2\\tx\\r\"");
  EXPECT_EQ(JsonQuote(std::string("\x01\x1f", 2)), "\"\\u0001\\u001f\"");
  EXPECT_EQ(JsonQuote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");  // UTF-8 passes through
}

// Concurrent sharing is exercised by the pull and push integration tests (a blob shared by
// images pulled or pushed together goes over the wire once); here, the sequential contract.
TEST(SingleFlight, RunsWorkAndFreesTheKeyAfterwards) {
  SingleFlight flight;
  int runs = 0;
  auto first = flight.Do("k", [&] {
    ++runs;
    return Status::IO("boom");
  });
  EXPECT_TRUE(first.ran);
  EXPECT_EQ(first.status.code(), Code::kIO);
  auto again = flight.Do("k", [&] {
    ++runs;
    return Status::Ok();
  });
  EXPECT_TRUE(again.ran);
  EXPECT_TRUE(again.status.ok());
  EXPECT_EQ(runs, 2);
}

TEST(Units, ParsesSizesAndDurations) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("64K"), 65536u);
  EXPECT_EQ(*ParseSize("1GiB"), 1ull << 30);
  EXPECT_EQ(*ParseSize("1.5m"), 1572864u);
  EXPECT_FALSE(ParseSize("lots").ok());
  EXPECT_FALSE(ParseSize("5X").ok());
  EXPECT_EQ(ParseDuration("90s")->count(), 90);
  EXPECT_EQ(ParseDuration("1h")->count(), 3600);
  EXPECT_EQ(ParseDuration("0")->count(), 0);
  EXPECT_FALSE(ParseDuration("soon").ok());
  EXPECT_EQ(FormatBytes(1536), "1.50 KiB");
}

TEST(Hash, KnownVectors) {
  EXPECT_EQ(ToHex(Sha256::Of(AsBytes("abc"))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha1 h;
  h.Update(AsBytes("abc"));
  EXPECT_EQ(ToHex(h.Final()), "a9993e364706816aba3e25717850c26c9cd0d89d");
  std::array<uint8_t, 2> out{};
  EXPECT_TRUE(FromHex("ab01", out));
  EXPECT_FALSE(FromHex("zz01", out));
}

TEST(ByteRange, ParsesTheThreeForms) {
  auto a = transfer::ByteRange::Parse("10-19");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->start, 10u);
  EXPECT_EQ(*a->end, 19u);
  auto b = transfer::ByteRange::Parse("5-");
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->end.has_value());
  auto c = transfer::ByteRange::Parse("-3");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c->end, 3u);
  for (const char* bad : {"", "5", "a-b", "9-3", "1-2-3"}) EXPECT_FALSE(transfer::ByteRange::Parse(bad).ok()) << bad;
}

}  // namespace
}  // namespace silo
