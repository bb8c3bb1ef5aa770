// Running a helper program (credential helpers) with input on stdin, capturing stdout.
#pragma once

#include <string>
#include <vector>

#include "util/result.h"

namespace silo {

// Runs argv (PATH lookup, no shell) with `input` on stdin; returns its stdout when it
// exits 0, else an error with its exit status and stderr.
Result<std::string> RunProgram(const std::vector<std::string>& argv, const std::string& input);

}  // namespace silo
