#include "cmd/command.h"

#include <cstdio>
#include <fstream>
#include <iostream>

#include "transfer/server/daemon.h"
#include "util/json.h"
#include "util/progress.h"

namespace silo::cmd {

std::unique_ptr<store::Store> OpenStore(const Globals& g, Access access) {
  store::OpenOptions o;
  o.read_only = access == Access::kRead;
  auto s = store::Store::Open(g.store_path, o);
  if (!s.ok()) {
    // A running `silo serve` owns the store: say so, and what to do instead.
    if (access == Access::kWrite && s.status().code() == Code::kConflict) {
      auto info = server::ReadPidfile(server::PidfilePath(g.store_path));
      if (info.ok() && *info) {
        std::string where;
        for (const auto& e : (*info)->endpoints) where += (where.empty() ? "" : " ") + e;
        Fail(Status::Conflict("store " + g.store_path + " is owned by silo serve (pid " + std::to_string((*info)->pid) +
                              ", on " + where + "); this command cannot run through it: stop it first (silo --store " +
                              g.store_path +
                              " serve stop). While it runs, push images to it (skopeo copy ... "
                              "docker://HOST:PORT/NAME:TAG); pull, sync and ref set/rm are run by it; read-only "
                              "commands work directly."));
        return nullptr;
      }
    }
    Fail(s.status());
    return nullptr;
  }
  if (g.debug) {
    std::fprintf(stderr, "debug: store %s opened %s; chunking %s\n", g.store_path.c_str(),
                 o.read_only ? "read-only" : "for writing", (*s)->chunk_params().Encode().c_str());
  }
  return std::move(s).value();
}

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case Code::kOk:
      return kExitOk;
    case Code::kInvalidArgument:
    case Code::kUnsupported:
      return kExitUsage;
    case Code::kInterrupted:
      return kExitInterrupted;
    default:
      return kExitFailed;
  }
}

int Fail(const Status& status) {
  if (IsDebug()) {
    std::fprintf(stderr, "silo: [%s] %s\n", std::string(CodeName(status.code())).c_str(), status.message().c_str());
    return ExitCodeFor(status);
  }
  std::fprintf(stderr, "silo: %s\n", status.message().c_str());
  return ExitCodeFor(status);
}

void Note(const Globals& g, const std::string& line) {
  if (!g.quiet) std::fprintf(stderr, "%s\n", line.c_str());
}

Result<std::vector<std::string>> ReadListFile(const std::string& path) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path);
    if (!file) return Status::FromErrno("open " + path, errno);
    in = &file;
  }
  std::vector<std::string> out;
  std::string line;
  while (std::getline(*in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    out.push_back(line.substr(start));
  }
  return out;
}

}  // namespace silo::cmd
