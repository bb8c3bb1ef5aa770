// The server side of `silo sync` (the protocol is described in transfer/sync.h):
// POST /silo/v1/sync/resolve, /silo/v1/sync/links and /silo/v1/sync/objects. The access
// policy treats these as reads (transfer/server/share_routes.h), so a client that may pull
// may sync. The objects answer streams store readers one after the other through the
// server's bounded piece reader: memory stays a few MiB whatever the objects' sizes.
//
// Thread-safe: handlers run concurrently on the server's pool.
#pragma once

#include "store/store.h"
#include "transfer/server/router.h"

namespace silo::server {

class SyncApi {
 public:
  // `store` must outlive the API and every response it returned.
  explicit SyncApi(store::Store& store) : store_(store) {}
  void Register(Router& router);

  Response Resolve(Request& req);
  Response Links(Request& req);
  Response Objects(Request& req);

 private:
  store::Store& store_;
};

// Whether `path` is one of the sync routes (read access suffices for them).
bool IsSyncPath(std::string_view path);

}  // namespace silo::server
