// Shared plumbing for the `silo` commands: global options, opening the store, and
// turning a Status into a message and an exit code. Each command lives in its own file
// and registers itself with Register<Name>(); see CONTRIBUTING.md.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>

#include "store/store.h"
#include "util/json.h"  // JsonQuote for --json output
#include "util/result.h"

namespace silo::cmd {

// Exit codes, as in docs/ARCHITECTURE.md.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // some items failed
inline constexpr int kExitUsage = 2;   // usage or configuration error
inline constexpr int kExitInterrupted = 130;

struct Globals {
  std::string store_path;  // --store, else $SILO_STORE, else ~/.local/share/silo
  bool debug = false;
  bool quiet = false;
};

struct Context {
  Globals globals;
  // Set by the chosen subcommand's callback; returns the exit code.
  std::function<int()> run;
};

enum class Access { kRead, kWrite };

// Opens the store named by the globals; prints the error and returns null on failure.
std::unique_ptr<store::Store> OpenStore(const Globals& g, Access access);

// Prints "silo: <message>" to stderr and returns the exit code for `status`.
int Fail(const Status& status);
int ExitCodeFor(const Status& status);
// Prints an informational line to stderr unless --quiet.
void Note(const Globals& g, const std::string& line);

void RegisterPut(CLI::App& app, Context& ctx);
void RegisterCat(CLI::App& app, Context& ctx);
void RegisterStat(CLI::App& app, Context& ctx);
void RegisterRef(CLI::App& app, Context& ctx);
void RegisterGc(CLI::App& app, Context& ctx);
void RegisterFsck(CLI::App& app, Context& ctx);
void RegisterDu(CLI::App& app, Context& ctx);
void RegisterPull(CLI::App& app, Context& ctx);
void RegisterImages(CLI::App& app, Context& ctx);
// Directory snapshots (issue 5).
void RegisterSnapshot(CLI::App& app, Context& ctx);
void RegisterRestore(CLI::App& app, Context& ctx);
void RegisterSnapshots(CLI::App& app, Context& ctx);
void RegisterLs(CLI::App& app, Context& ctx);
void RegisterDiff(CLI::App& app, Context& ctx);
void RegisterForget(CLI::App& app, Context& ctx);
void RegisterTreeIndex(CLI::App& app, Context& ctx);
void RegisterArchive(CLI::App& app, Context& ctx);
void RegisterImport(CLI::App& app, Context& ctx);
void RegisterGet(CLI::App& app, Context& ctx);
void RegisterConfig(CLI::App& app, Context& ctx);
void RegisterServe(CLI::App& app, Context& ctx);
// Push, mirror, gather, tree (issue 4).
void RegisterPush(CLI::App& app, Context& ctx);
void RegisterMirror(CLI::App& app, Context& ctx);
void RegisterGather(CLI::App& app, Context& ctx);
void RegisterTree(CLI::App& app, Context& ctx);
void RegisterExport(CLI::App& app, Context& ctx);
void RegisterBatchExport(CLI::App& app, Context& ctx);
void RegisterSync(CLI::App& app, Context& ctx);
void RegisterTracker(CLI::App& app, Context& ctx);

// Reads non-empty, non-comment lines from FILE ("-" for stdin).
Result<std::vector<std::string>> ReadListFile(const std::string& path);

}  // namespace silo::cmd
