// Moving bytes between local files (or stdin/stdout) and the store.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "store/store.h"
#include "util/progress.h"

namespace silo::transfer {

// Streams `path` ("-" for stdin) into the store. Progress (if given) counts bytes read.
// Interrupted (SIGINT/SIGTERM) or mismatched content leaves nothing visible.
Result<store::ObjectInfo> PutFile(store::Store& store, const std::string& path, const store::PutOptions& options,
                                  Progress* progress);

struct ByteRange {
  uint64_t start = 0;
  std::optional<uint64_t> end;  // inclusive, as in HTTP; nullopt = to the end

  // "START-END", "START-" or "-SUFFIX" (the last SUFFIX bytes).
  static Result<ByteRange> Parse(std::string_view text);
};

// Writes the object (or a range of it) to file descriptor `fd`. A range that starts past
// the end is an error; one that ends past it is clipped.
Status CatObject(store::Store& store, const store::Digest& digest, std::optional<ByteRange> range, int fd);

}  // namespace silo::transfer
