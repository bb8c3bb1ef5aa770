// File shares and access control on the silo server: the routes of transfer/share.h
// (/files/…, /snapshots/…) and the access check of transfer/access.h, wired into a Router.
#pragma once

#include "transfer/access.h"
#include "transfer/server/router.h"
#include "transfer/share.h"

namespace silo::server {

// Registers /files and /snapshots (and everything beneath) on `router`, answered by
// `shares`, which must outlive the router. Ranges are left to the server (Response::ranges);
// an If-Range that no longer matches the file's ETag or Last-Modified drops the Range.
void AddShareRoutes(Router& router, const transfer::ShareService& shares);

// Installs the access check (before routing, for every path): the client address against
// --allow (403), then credentials (401 with a Basic challenge): GET and HEAD need read
// access, other methods write access. /healthz needs no credentials. `access` must
// outlive the router.
void SetAccessPolicy(Router& router, const transfer::AccessControl& access);

}  // namespace silo::server
