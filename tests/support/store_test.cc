#include "tests/support/store_test.h"

#include <rocksdb/db.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace silo::testing {

std::string RandomBytes(size_t n, uint64_t seed) {
  std::string out(n, '\0');
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  size_t i = 0;
  while (i < n) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    size_t k = std::min<size_t>(8, n - i);
    std::memcpy(out.data() + i, &x, k);
    i += k;
  }
  return out;
}

void WriteFile(const std::string& path, std::string_view data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw std::runtime_error("cannot write " + path);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::string ReadFileToString(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(std::move(line));
  }
  return out;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

bool CorruptStoredBytes(const std::string& store_path, std::string_view needle) {
  bool found = false;
  for (const auto& entry : std::filesystem::directory_iterator(store_path)) {
    if (!entry.is_regular_file()) continue;
    std::string content = ReadFileToString(entry.path());
    for (size_t pos = content.find(needle); pos != std::string::npos; pos = content.find(needle, pos + 1)) {
      content[pos + needle.size() / 2] ^= 0x5a;
      found = true;
      WriteFile(entry.path(), content);
    }
  }
  return found;
}

bool SetFormatVersionForTest(const std::string& store_path, int version) {
  rocksdb::DB* raw = nullptr;
  std::vector<std::string> names;
  if (!rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), store_path, &names).ok()) return false;
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (const auto& n : names) descs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  if (!rocksdb::DB::Open(rocksdb::DBOptions(), store_path, descs, &handles, &raw).ok()) return false;
  std::unique_ptr<rocksdb::DB> db(raw);
  bool ok = db->Put(rocksdb::WriteOptions(), handles[0], "format", std::to_string(version)).ok();
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  return ok;
}

}  // namespace silo::testing
