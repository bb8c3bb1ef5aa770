#include "cmd/serve_shares.h"

#include "transfer/server/share_routes.h"

namespace silo::cmd {

void AddShareOptions(CLI::App& sub, ShareArgs& a) {
  sub.add_option("--share", a.shares, "Serve directory DIR under /files/NAME/ (NAME=DIR; several allowed)");
  sub.add_option("--allow", a.allow, "Only clients in this network (CIDR, IPv4 or IPv6; several allowed)");
  sub.add_option("--deny-file", a.deny_files, "Never serve names matching GLOB (a '/' in it: the share path)");
  sub.add_option("--deny-dir", a.deny_dirs, "Never serve this directory (share-relative or absolute) or beneath");
  sub.add_option("--read-token", a.read_tokens, "Bearer token that grants reading (several allowed)");
  sub.add_option("--write-token", a.write_tokens, "Bearer token that grants writing and reading (several allowed)");
  sub.add_option("--read-htpasswd", a.read_htpasswd, "htpasswd file (bcrypt: htpasswd -B) of users who may read");
  sub.add_option("--write-htpasswd", a.write_htpasswd, "htpasswd file of users who may write and read");
}

Result<ShareSetup> SetUpShares(const ShareArgs& a, store::Store& store, server::Router& router) {
  transfer::AccessPolicy p;
  for (const auto& c : a.allow) {
    SILO_ASSIGN_OR_RETURN(transfer::Cidr cidr, transfer::Cidr::Parse(c));
    p.allow.push_back(cidr);
  }
  p.deny_files = a.deny_files;
  p.deny_dirs = a.deny_dirs;
  for (const auto& t : a.read_tokens)
    if (t.empty()) return Status::InvalidArgument("--read-token: empty token");
  for (const auto& t : a.write_tokens)
    if (t.empty()) return Status::InvalidArgument("--write-token: empty token");
  p.read_tokens = a.read_tokens;
  p.write_tokens = a.write_tokens;
  if (!a.read_htpasswd.empty()) {
    SILO_ASSIGN_OR_RETURN(p.read_htpasswd, transfer::Htpasswd::Load(a.read_htpasswd));
  }
  if (!a.write_htpasswd.empty()) {
    SILO_ASSIGN_OR_RETURN(p.write_htpasswd, transfer::Htpasswd::Load(a.write_htpasswd));
  }
  std::vector<transfer::ShareConfig> configs;
  for (const auto& s : a.shares) {
    SILO_ASSIGN_OR_RETURN(transfer::ShareConfig c, transfer::ShareConfig::Parse(s));
    configs.push_back(std::move(c));
  }
  ShareSetup setup;
  setup.access = std::make_unique<transfer::AccessControl>(std::move(p));
  SILO_ASSIGN_OR_RETURN(setup.shares, transfer::ShareService::Create(configs, setup.access.get(), &store));
  server::SetAccessPolicy(router, *setup.access);
  server::AddShareRoutes(router, *setup.shares);
  return setup;
}

}  // namespace silo::cmd
