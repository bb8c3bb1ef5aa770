// A per-test temporary directory, removed when the test ends (kept when SILO_KEEP_TMP is
// set, for debugging). Lives under $TMPDIR (default /tmp).
#pragma once

#include <string>

namespace silo::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace silo::testing
