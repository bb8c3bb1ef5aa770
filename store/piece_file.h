// Where the bytes of an ObjectPiece also live as a file, so a server can send them with
// sendfile(2) (no copy through user space) instead of writing them from memory.
#pragma once

#include <cstdint>
#include <optional>

#include "store/store.h"

namespace silo::store {

struct PieceFile {
  int fd = -1;          // owned by the piece's owner: valid while piece.owner lives
  uint64_t offset = 0;  // of piece.bytes in the file
};

// The file behind `piece` when it came from a store's chunk cache (which keeps chunks in
// memfds); nullopt for any other piece. Thread-safe; the file is never written again.
std::optional<PieceFile> FileOfPiece(const ObjectPiece& piece);

}  // namespace silo::store
