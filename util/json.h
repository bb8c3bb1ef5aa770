// Writing JSON by hand in the few places that need it (the CLI's --json output, small records
// and server answers). Parsing is simdjson's job.
#pragma once

#include <string>
#include <string_view>

namespace silo {

// `s` as a JSON string literal, quotes included: '"', '\' and control bytes escaped, every
// other byte (UTF-8 included) as it is.
std::string JsonQuote(std::string_view s);

}  // namespace silo
