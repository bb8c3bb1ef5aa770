// The file-share protocol of `silo serve` (hsyncd's role), independent of the HTTP server
// that carries it: the server hands over method, target and a few headers, and sends back
// the ShareResponse (small bodies in memory; files and store objects as open handles that
// the server streams).
//
//   GET|HEAD /files/                         JSON list of shares
//   GET|HEAD /files/NAME/PATH                a file (single Range → 206, If-Range honoured)
//   GET      /files/NAME/PATH?stat           {"type","size","mtime","mode","digest"}
//   GET      /files/NAME/DIR/?list[&recursive=1][&digest=1]   JSON entries
//   GET|HEAD /snapshots/SNAP/PATH            the same for snapshots in the store (SNAP is
//                                            NAME or NAME@ID as `silo snapshots` shows them)
//
// docs/ARCHITECTURE.md ("File shares") describes the JSON. Paths are confined to the share:
// ".." and encoded separators are refused (403), every open goes through openat2 with
// RESOLVE_BENEATH so a symlink pointing out of the share is refused (403) while one inside
// it is followed. Digests of plain files are computed on demand and cached in the store's
// index space "share-digest" keyed by (path, inode, size, mtime, ctime).
//
// Thread-safe: Handle() may run on many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/store.h"
#include "transfer/access.h"
#include "util/fd.h"
#include "util/result.h"

namespace silo::transfer {

struct ShareConfig {
  std::string name;  // [A-Za-z0-9._-]+
  std::string dir;
  // "NAME=DIR" as --share takes it; InvalidArgument naming the text otherwise.
  static Result<ShareConfig> Parse(std::string_view text);
};

struct ShareRequest {
  std::string_view method;  // "GET", "HEAD", …
  std::string_view target;  // request target as received ("/files/a/b%20c?stat")
  std::string_view range;   // Range header, empty when absent
  std::string_view if_range;
};

// One answer. The body is one of: `body` (in memory), `file` (content_length bytes from
// file_offset; the response owns the descriptor), `object` (content_length bytes from the
// reader's current position; the store must outlive the response).
struct ShareResponse {
  int status = 200;
  // Besides Content-Length, which the server sets from content_length.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Fd file;
  uint64_t file_offset = 0;
  std::unique_ptr<store::ObjectReader> object;
  uint64_t content_length = 0;  // of the body (also for HEAD, which sends none)
  std::string error;            // why, for the access log (empty on success)

  // The response header `name` (exact case as set here), empty when absent.
  std::string Header(std::string_view name) const;
};

class ShareService {
 public:
  // Opens each share's directory (error naming the share when it is missing or not a
  // directory; duplicate names refused). `store` may be null: then /snapshots/ answers 404
  // and digests are computed without a cache. `access` and `store` must outlive the service.
  static Result<std::unique_ptr<ShareService>> Create(const std::vector<ShareConfig>& shares,
                                                      const AccessControl* access, store::Store* store);
  ~ShareService();

  // Whether `target` belongs to this service ("/files…", "/snapshots…").
  static bool Matches(std::string_view target);

  // Answers one request. Peer and credential checks are the server's (AccessControl::
  // CheckPeer/CheckAuth, before routing); path rules (deny globs and directories,
  // confinement) are applied here. Never fails: errors become 4xx/5xx responses.
  ShareResponse Handle(const ShareRequest& request) const;

 private:
  struct Impl;
  explicit ShareService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Single byte range of a resource of `size` bytes from a Range header value: nullopt when
// the header is absent, not "bytes=", or lists several ranges (the whole body is sent
// then); {start, end (inclusive)} otherwise; start > end signals "not satisfiable" (416).
struct RangeSpec {
  uint64_t start = 0;
  uint64_t end = 0;
  bool satisfiable() const { return start <= end; }
};
std::optional<RangeSpec> ParseRangeHeader(std::string_view value, uint64_t size);

}  // namespace silo::transfer
