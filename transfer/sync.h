// `silo sync URL REF…`: copies images and snapshots from another silo's `silo serve` into
// the local store, moving only the objects the local store lacks. The graph is walked with
// the links the store keeps (store/store.h), never by parsing formats, so images and
// snapshots are copied the same way.
//
// The protocol (server side: transfer/server/sync_api.h). Every request is a POST with a
// text body of one item per line and is checked like a read (GET) by the server's access
// policy: the same bearer token or htpasswd user that may pull may sync.
//
//   POST /silo/v1/sync/resolve   body: selectors, one per line:
//                                  image/REGISTRY/REPO:TAG   one image ref
//                                  image/PREFIX* or PREFIX/  every image ref below it
//                                  snapshot/NAME             every snapshot of NAME
//                                  snapshot/NAME@ID          one snapshot (ID prefix)
//                                  anything else             an image name as `silo images`
//                                                            shows it (host:5000/app:1.0,
//                                                            host:5000/team/*)
//     200 text: "ref NAME sha256:HEX" per ref selected, "none SELECTOR<TAB>MESSAGE" per
//     selector that selects nothing.
//   POST /silo/v1/sync/links     body: sha256:HEX per line (at most kMaxDigestsPerRequest)
//     200 text, one line per digest in request order: "sha256:HEX SIZE ALIAS LINK…" (the
//     object's size; ALIAS "sha1" when the object has a SHA-1 alias, else "-"; the objects
//     it links to), or "sha256:HEX -" when the server lacks it.
//   POST /silo/v1/sync/objects   body: sha256:HEX per line (at most kMaxDigestsPerRequest)
//     200 application/x-silo-objects with an exact Content-Length: for each object the
//     server has, in request order, a frame of 32 bytes SHA-256, 8 bytes size (big-endian)
//     and the object's bytes; objects it lacks are left out. The body is streamed from the
//     store (bounded memory on both sides, whatever the sizes).
//
// The client:
//   1. resolves the selectors to (ref, root digest) pairs;
//   2. walks the graph one level at a time: one batched Missing() on the local store for
//      the level, one `links` request for what is missing; the next level is the links of
//      the missing objects (an object the local store has is complete below it: objects
//      are committed only after everything they link to);
//   3. fetches the missing objects children first (by height in the missing graph, so an
//      object's links are stored before it), in batches over a few connections, each
//      object written through an ObjectWriter that verifies its size and digest before
//      commit and records the links the server reported;
//   4. sets the refs.
// An interrupted sync keeps every object committed so far; running it again fetches only
// what is still missing. Running it when nothing is missing moves no object.
//
// Thread safety: a Syncer runs one Sync() at a time; its counters may be read from any
// thread while it runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "store/store.h"
#include "transfer/http.h"
#include "util/result.h"

namespace silo::transfer {

inline constexpr size_t kMaxDigestsPerRequest = 20000;
inline constexpr std::string_view kSyncObjectsType = "application/x-silo-objects";

struct SyncOptions {
  std::string url;  // the server's base URL: http://host:port (a trailing '/' is ignored)
  // Sent as "Authorization: …" on every request when non-empty ("Bearer TOKEN",
  // "Basic base64(user:password)").
  std::string authorization;
  HttpOptions http;
  int connections = 4;  // object batches fetched at once
  // A batch of small objects ends at this many objects or bytes (a larger object is a
  // batch of its own).
  size_t batch_objects = 4096;
  uint64_t batch_bytes = 64ull << 20;
  // Only resolve and plan; fetch nothing, set no ref.
  bool dry_run = false;
  // Called once the plan is known (objects and bytes to fetch), then with each chunk of
  // bytes received. May be null. Called from the Sync() thread and worker threads.
  std::function<void(uint64_t objects, uint64_t bytes)> on_plan;
  std::function<void(uint64_t bytes)> on_bytes;
};

struct SyncedRef {
  std::string name;
  store::Digest target;
  bool changed = false;  // the local ref did not point there before
};

struct SyncReport {
  std::vector<SyncedRef> refs;
  // Selectors that selected nothing on the server, with its message.
  std::vector<std::pair<std::string, std::string>> unmatched;
  uint64_t objects_checked = 0;   // digests looked up in the local store
  uint64_t objects_missing = 0;   // of those, missing locally (the plan)
  uint64_t objects_fetched = 0;   // committed by this run
  uint64_t bytes_fetched = 0;     // object bytes committed by this run
  uint64_t absent_on_server = 0;  // linked objects the server lacks too (partial images)
  uint64_t levels = 0;            // graph levels walked
  uint64_t requests = 0;          // HTTP requests made
  double seconds = 0;
};

class Syncer {
 public:
  // `store` must outlive the Syncer.
  Syncer(store::Store& store, SyncOptions options);
  ~Syncer();

  // Copies what `selectors` select on the server (see the protocol above). An error when
  // the server cannot be reached or refuses (naming it and the status), when an object
  // fails verification, or when interrupted; objects committed before stay (a re-run
  // resumes). Selectors matching nothing are listed in the report, not errors, unless
  // none matched at all (NotFound).
  Result<SyncReport> Sync(const std::vector<std::string>& selectors);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace silo::transfer
