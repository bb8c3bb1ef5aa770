// Human-readable sizes and durations, and their parsing for command-line flags.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/result.h"

namespace silo {

// "1.5 GiB", "312 B".
std::string FormatBytes(uint64_t bytes);
// "512 MiB/s" for bytes over seconds.
std::string FormatRate(uint64_t bytes, double seconds);
// "1h02m", "3.2s".
std::string FormatDuration(double seconds);
// "4096", "64K", "1.5GiB", "2g" (binary multiples).
Result<uint64_t> ParseSize(std::string_view text);
// "90s", "15m", "1h", "0", "2d".
Result<std::chrono::seconds> ParseDuration(std::string_view text);

}  // namespace silo
