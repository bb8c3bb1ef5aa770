// Running the `silo` binary from integration tests, with stdout and stderr kept apart.
#pragma once

#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace silo::testing {

struct CliResult {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `silo --store STORE ARGS...` to completion (5 minutes at most); stdin is /dev/null
// unless `stdin_path` names a file to feed it.
CliResult RunSilo(const std::string& store, const std::vector<std::string>& args, const std::string& stdin_path = "");

}  // namespace silo::testing
