// Archive byte streams: compression by name and option, split parts written and joined,
// bad parts (truncated, corrupt, reordered, missing, unlisted) refused naming the part,
// zstd output that is real zstd and independent of the thread count, nothing visible
// before Commit.
#include "transfer/archive_io.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <filesystem>
#include <fstream>

#include "tests/support/store_test.h"
#include "tests/support/temp_dir.h"

namespace silo::transfer {
namespace {

namespace fs = std::filesystem;
using silo::testing::RandomBytes;
using silo::testing::ReadFileToString;
using silo::testing::TempDir;

// Writes `data` through a PartWriter in uneven pieces and commits.
std::vector<std::string> WriteArchive(const std::string& out, const std::string& data, uint64_t split,
                                      bool zstd = false, int threads = 1, std::string* sha256 = nullptr) {
  PartWriter w(out, split, zstd, threads, 3);
  size_t at = 0, step = 1;
  while (at < data.size()) {
    size_t n = std::min(step, data.size() - at);
    EXPECT_TRUE(w.Write(data.data() + at, n).ok());
    at += n;
    step = step * 3 + 7;
  }
  Status s = w.Commit();
  EXPECT_TRUE(s.ok()) << s.message();
  if (sha256) *sha256 = w.sha256_hex();
  return w.paths();
}

// Reads the archive `first` stands for (ResolveArchiveInputs, then PartReader).
Result<std::string> ReadArchive(const std::string& first) {
  SILO_ASSIGN_OR_RETURN(auto groups, ResolveArchiveInputs({first}));
  if (groups.size() != 1) return Status::Corruption("expected one archive");
  SILO_ASSIGN_OR_RETURN(auto reader, PartReader::Open(groups[0]));
  std::string out;
  char buf[777];
  for (;;) {
    SILO_ASSIGN_OR_RETURN(size_t n, reader->Read(buf, sizeof buf));
    if (n == 0) return out;
    out.append(buf, n);
  }
}

TEST(ArchiveIo, CompressionFromNameAndOption) {
  EXPECT_EQ(CompressionOfPath("a/x.tar"), Compression::kNone);
  EXPECT_EQ(CompressionOfPath("x.tar.gz"), Compression::kGzip);
  EXPECT_EQ(CompressionOfPath("x.tgz"), Compression::kGzip);
  EXPECT_EQ(CompressionOfPath("x.tar.zst"), Compression::kZstd);
  EXPECT_EQ(CompressionOfPath("x.tzst"), Compression::kZstd);
  EXPECT_FALSE(CompressionOfPath("x.zip").has_value());
  EXPECT_FALSE(CompressionOfPath("layout").has_value());
  EXPECT_EQ(*ParseCompression("zstd"), Compression::kZstd);
  EXPECT_EQ(*ParseCompression("gz"), Compression::kGzip);
  EXPECT_EQ(*ParseCompression("none"), Compression::kNone);
  auto bad = ParseCompression("lz4");
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("'lz4'"), std::string::npos);
}

TEST(ArchiveIo, SplitPartsAreJoinedAndChecked) {
  TempDir tmp;
  const std::string data = RandomBytes(10000, 1), out = tmp / "a.tar";
  std::string sha;
  auto paths = WriteArchive(out, data, 3000, false, 1, &sha);
  ASSERT_EQ(paths, (std::vector<std::string>{out + ".000", out + ".001", out + ".002", out + ".003"}));
  EXPECT_EQ(fs::file_size(out + ".003"), 1000u);
  EXPECT_EQ(sha, ToHex(Sha256::Of(AsBytes(data))));
  EXPECT_FALSE(fs::exists(out));
  // The parts list reads as sha256sum's format.
  auto list = silo::testing::Lines(ReadFileToString(PartsListPath(out)));
  ASSERT_EQ(list.size(), 4u);
  EXPECT_EQ(list[1], ToHex(Sha256::Of(AsBytes(data.substr(3000, 3000)))) + "  a.tar.001");
  // Any part stands for all of them, and several parts given are one archive.
  for (const std::string& first : {out + ".000", out + ".002"}) {
    auto got = ReadArchive(first);
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_EQ(*got, data);
  }
  auto groups = ResolveArchiveInputs({out + ".002", out + ".000", tmp / "other.tar"});
  ASSERT_TRUE(groups.ok());
  ASSERT_EQ(groups->size(), 2u);
  EXPECT_EQ((*groups)[0].size(), 4u);
  EXPECT_EQ((*groups)[1], std::vector<std::string>{tmp / "other.tar"});
  // A shorter export under the same name removes the stale parts of the longer one.
  WriteArchive(out, data.substr(0, 4000), 3000);
  EXPECT_FALSE(fs::exists(out + ".002"));
  EXPECT_EQ(*ReadArchive(out + ".000"), data.substr(0, 4000));
}

class BadParts : public ::testing::Test {
 protected:
  void SetUp() override { WriteArchive(out_, data_, 3000); }
  // The error of reading the archive, which must fail.
  std::string Error() {
    auto got = ReadArchive(out_ + ".000");
    EXPECT_FALSE(got.ok());
    return got.ok() ? "" : got.status().message();
  }
  TempDir tmp_;
  std::string data_ = RandomBytes(12000, 2);
  std::string out_ = tmp_ / "b.tar.zst";
};

TEST_F(BadParts, TruncatedPartIsNamed) {
  fs::resize_file(out_ + ".001", 2999);
  EXPECT_NE(Error().find("part " + out_ + ".001: checksum"), std::string::npos) << Error();
}

TEST_F(BadParts, CorruptPartIsNamed) {
  {
    std::fstream f(out_ + ".002", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put(static_cast<char>(data_[6100] ^ 1));
  }
  std::string e = Error();
  EXPECT_NE(e.find("part " + out_ + ".002"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated, corrupted or out of order"), std::string::npos) << e;
}

TEST_F(BadParts, ReorderedPartsAreNamed) {
  fs::rename(out_ + ".000", tmp_ / "swap");
  fs::rename(out_ + ".001", out_ + ".000");
  fs::rename(tmp_ / "swap", out_ + ".001");
  EXPECT_NE(Error().find("part " + out_ + ".000: checksum"), std::string::npos) << Error();
}

TEST_F(BadParts, MissingAndUnlistedPartsAreNamed) {
  fs::rename(out_ + ".003", tmp_ / "kept");
  std::string e = Error();
  EXPECT_NE(e.find("part " + out_ + ".003 is missing"), std::string::npos) << e;
  fs::rename(tmp_ / "kept", out_ + ".003");
  silo::testing::WriteFile(out_ + ".004", "extra");
  e = Error();
  EXPECT_NE(e.find(out_ + ".004 is not in " + out_ + ".sha256"), std::string::npos) << e;
  // A part given by hand that the list does not name.
  fs::remove(out_ + ".004");
  fs::copy_file(out_ + ".001", tmp_ / "c.tar.007");
  auto r = PartReader::Open({out_ + ".000", tmp_ / "c.tar.007"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("part " + tmp_ / "c.tar.007" + " is not listed in " + out_ + ".sha256"),
            std::string::npos)
      << r.status().message();
}

TEST(ArchiveIo, ZstdIsRealZstdAndIndependentOfThreads) {
  TempDir tmp;
  // Compressible data larger than one zstd job, so workers really split it.
  std::string data;
  while (data.size() < (9u << 20)) data += RandomBytes(4096, data.size() % 7) + std::string(4096, 'z');
  std::string sha1, sha4;
  WriteArchive(tmp / "one.tar.zst", data, 0, true, 1, &sha1);
  WriteArchive(tmp / "four.tar.zst", data, 0, true, 4, &sha4);
  EXPECT_EQ(sha1, sha4);
  std::string bytes = ReadFileToString(tmp / "four.tar.zst");
  ASSERT_GE(bytes.size(), 4u);
  EXPECT_EQ(bytes.substr(0, 4), std::string("\x28\xb5\x2f\xfd", 4));
  EXPECT_LT(bytes.size(), data.size());
  // Decompresses to the input.
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  std::string out;
  std::vector<char> buf(ZSTD_DStreamOutSize());
  ZSTD_inBuffer in{bytes.data(), bytes.size(), 0};
  while (in.pos < in.size) {
    ZSTD_outBuffer o{buf.data(), buf.size(), 0};
    size_t rc = ZSTD_decompressStream(dctx.get(), &o, &in);
    ASSERT_FALSE(ZSTD_isError(rc)) << ZSTD_getErrorName(rc);
    out.append(buf.data(), o.pos);
  }
  EXPECT_TRUE(out == data);
}

TEST(ArchiveIo, NothingIsVisibleBeforeCommit) {
  TempDir tmp;
  {
    PartWriter w(tmp / "x.tar", 100, false, 1, 3);
    std::string data = RandomBytes(1000, 3);
    ASSERT_TRUE(w.Write(data.data(), data.size()).ok());
  }  // destroyed without Commit
  EXPECT_TRUE(fs::is_empty(tmp.path())) << fs::directory_iterator(tmp.path())->path();
  // An empty stream still gives a file.
  auto paths = WriteArchive(tmp / "empty.tar", "", 0);
  ASSERT_EQ(paths.size(), 1u);
  EXPECT_EQ(fs::file_size(paths[0]), 0u);
  EXPECT_EQ(ReadArchive(tmp / "nosuch.tar").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace silo::transfer
