// silo ls SNAPSHOT[:PATH] [-l] [-r]: list what a snapshot holds.
#include "cmd/command.h"
#include "cmd/snapshot_util.h"
#include "util/interrupt.h"

namespace silo::cmd {
namespace {

struct LsArgs {
  std::string snapshot;
  bool longform = false;
  bool recursive = false;
};

// Names are bytes: show control bytes and '\\' escaped so each entry stays on one line.
std::string Printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

void PrintEntry(const index::TreeEntry& e, const std::string& path, bool longform) {
  std::string shown = Printable(path) + (e.type == index::EntryType::kDir ? "/" : "");
  if (!longform) {
    std::printf("%s\n", shown.c_str());
    return;
  }
  std::string extra = e.type == index::EntryType::kSymlink ? " -> " + Printable(e.target) : "";
  std::printf("%c%04o %u:%u %12llu %s UTC %s%s\n", index::TypeChar(e.type), e.mode, e.uid, e.gid,
              static_cast<unsigned long long>(e.size), index::FormatTime(e.mtime_ns).c_str(), shown.c_str(),
              extra.c_str());
}

Status List(store::Store& store, const store::Digest& tree, const std::string& prefix, const LsArgs& a) {
  if (Interrupted()) return Status::Interrupted("ls interrupted");
  SILO_ASSIGN_OR_RETURN(index::Tree t, index::LoadTree(store, tree));
  for (const auto& e : t.entries) {
    std::string path = prefix.empty() ? e.name : prefix + "/" + e.name;
    PrintEntry(e, path, a.longform);
    if (a.recursive && e.type == index::EntryType::kDir) SILO_TRY(List(store, e.digest, path, a));
  }
  return Status::Ok();
}

int RunLs(const Globals& g, const LsArgs& a) {
  auto store = OpenStore(g, Access::kRead);
  if (!store) return kExitUsage;
  auto r = ResolveSnapshotPath(*store, a.snapshot);
  if (!r.ok()) return Fail(r.status().WithContext("ls"));
  if (r->entry.type != index::EntryType::kDir) {
    PrintEntry(r->entry, r->entry.name, a.longform);
    return kExitOk;
  }
  Status s = List(*store, r->entry.digest, "", a);
  return s.ok() ? kExitOk : Fail(s.WithContext("ls " + a.snapshot));
}

}  // namespace

void RegisterLs(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<LsArgs>();
  auto* sub = app.add_subcommand("ls", "List a snapshot's entries (NAME, NAME@ID, optionally :PATH)");
  sub->add_option("snapshot", a->snapshot, "NAME, NAME@ID, NAME:PATH")->required();
  sub->add_flag("-l,--long", a->longform, "Type, mode, owner, size, mtime");
  sub->add_flag("-r,--recursive", a->recursive, "Descend into directories");
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunLs(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
