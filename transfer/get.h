// `silo get`: fetching a file or a whole directory tree over HTTP (hsync's client side).
//
// Against `silo serve` (transfer/share.h) a directory comes from one recursive listing,
// every file is verified against the SHA-256 the server reports, and --follow keeps an
// append-only file or a directory in step. Against any plain HTTP server with Range
// support (nginx) single files work too, checked by size only.
//
// A large file is cut into parts fetched over several connections at once, written into a
// temporary file beside the output (".NAME.silo-get") and renamed over the output only
// once complete and verified. Progress is kept in ".NAME.silo-get.state" (rewritten
// atomically as parts finish, and on interruption), so a later run with the same URL and
// output continues where the last one stopped, even after kill -9, provided the remote
// file is unchanged (same size and digest or validator). Memory stays bounded (libcurl's
// buffers plus one hashing buffer) whatever the size.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "transfer/http.h"
#include "util/progress.h"
#include "util/result.h"

namespace silo::transfer {

struct GetOptions {
  std::string url;     // http(s)://HOST:PORT/files/SHARE/PATH, a snapshot URL, or any URL
  std::string output;  // file or directory to write
  // A file is cut into at most `parts` parts of at least `min_part_size` bytes (0: one part
  // per 8 MiB). `connections` parts are fetched at once.
  int parts = 0;
  int connections = 8;
  uint64_t min_part_size = 8 << 20;
  // hsync's Data_timeout: a transfer that stays below 1 KiB/s this long fails, and so does a
  // connection attempt. hsync's Max_timeout_retry: each part is retried this many times
  // (continuing from where it stopped) after a network failure or a 5xx answer.
  std::chrono::seconds timeout{60};
  int retries = 5;
  // Keep polling every `interval` and fetch what was appended or added, until interrupted.
  bool follow = false;
  std::chrono::milliseconds interval{2000};
  // "Authorization" value sent with every request ("Bearer …", "Basic …"); empty: none.
  std::string authorization;
  HttpOptions http;  // timeouts are taken from `timeout`
  Progress::Mode progress_mode = Progress::Mode::kAuto;
  // Informational lines (skipped entries, follow updates); may be null.
  std::function<void(const std::string&)> on_note;
};

struct GetStats {
  uint64_t files = 0;            // files written or brought up to date
  uint64_t files_unchanged = 0;  // already present and verified: nothing fetched
  uint64_t dirs = 0;
  uint64_t symlinks = 0;
  uint64_t skipped = 0;         // entries not materialized (noted through on_note)
  uint64_t bytes_fetched = 0;   // body bytes received over the network
  uint64_t bytes_resumed = 0;   // bytes a previous run had already fetched
  uint64_t verified = 0;        // files checked against a server digest
  uint64_t unverified = 0;      // files the server gave no digest for (size checked)
  uint64_t follow_updates = 0;  // changes picked up while following
  double seconds = 0;
};

// Fetches options.url into options.output. Errors name the URL or path: HTTP errors with
// the server's status and message (401 suggests --token), a digest mismatch (the
// temporary file is removed; nothing visible), an unwritable output, an interruption
// (progress is saved first). With `follow`, returns only when interrupted (Interrupted
// status, stats filled in as far as they got).
Result<GetStats> Get(const GetOptions& options, GetStats* stats_out = nullptr);

// One-line summary: "3 files, 1.0 GiB fetched in 2.1s (488 MiB/s), 3 verified".
std::string FormatGetSummary(const GetStats& stats);

}  // namespace silo::transfer
