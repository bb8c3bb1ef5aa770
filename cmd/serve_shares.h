// The file-share and access-control options of `silo serve` (--share, --allow,
// --deny-file, --deny-dir, tokens and htpasswd for read and write) and their setup on the
// server's router. Kept apart from cmd/serve.cc so the server core stays small.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "store/store.h"
#include "transfer/access.h"
#include "transfer/server/router.h"
#include "transfer/share.h"
#include "util/result.h"

namespace silo::cmd {

struct ShareArgs {
  std::vector<std::string> shares;  // NAME=DIR
  std::vector<std::string> allow;
  std::vector<std::string> deny_files;
  std::vector<std::string> deny_dirs;
  std::vector<std::string> read_tokens;
  std::vector<std::string> write_tokens;
  std::string read_htpasswd;
  std::string write_htpasswd;
};

void AddShareOptions(CLI::App& sub, ShareArgs& a);

// What the routes refer to; must outlive the server.
struct ShareSetup {
  std::unique_ptr<transfer::AccessControl> access;
  std::unique_ptr<transfer::ShareService> shares;
};

// Parses the options, opens the shares and installs the access check and share routes on
// `router`. Errors name the offending option value.
Result<ShareSetup> SetUpShares(const ShareArgs& a, store::Store& store, server::Router& router);

}  // namespace silo::cmd
