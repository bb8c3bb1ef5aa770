// GoogleTest fixture: each test gets its own temporary directory and an open store in it.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"
#include "tests/support/temp_dir.h"

namespace silo::testing {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  // Closes and reopens the store (small chunks unless a test sets options_ first).
  void Reopen() {
    store_.reset();
    auto s = store::Store::Open(store_path(), options_);
    ASSERT_TRUE(s.ok()) << s.status().message();
    store_ = std::move(s).value();
  }
  void Close() { store_.reset(); }
  // Puts `data`; a failure fails the test (and returns an empty ObjectInfo).
  store::ObjectInfo MustPut(std::string_view data, const store::PutOptions& options = {}) {
    auto r = store_->Put(AsBytes(data), options);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : store::ObjectInfo{};
  }
  std::string store_path() const { return tmp_ / "store"; }

  TempDir tmp_;
  store::OpenOptions options_;
  std::unique_ptr<store::Store> store_;
};

// Deterministic pseudo-random bytes (xorshift), so tests are reproducible.
std::string RandomBytes(size_t n, uint64_t seed);
// Writes `data` to `path`.
void WriteFile(const std::string& path, std::string_view data);
std::string ReadFileToString(const std::string& path);
// The non-empty lines of `text`.
std::vector<std::string> Lines(const std::string& text);
// `s` without trailing newlines and spaces.
std::string Trim(std::string s);

// Flips one byte inside every occurrence of `needle` in the files of a closed store;
// false when the bytes were not found.
bool CorruptStoredBytes(const std::string& store_path, std::string_view needle);
// Rewrites the format record of a closed store (to test refusing newer formats).
bool SetFormatVersionForTest(const std::string& store_path, int version);

}  // namespace silo::testing
