// silo put FILE|- ...: store files, print their digests.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <optional>
#include <thread>

#include "cmd/command.h"
#include "transfer/local_file.h"
#include "util/interrupt.h"
#include "util/progress.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct PutArgs {
  std::vector<std::string> files;
  std::string files_from;
  std::string expect;
  std::string expect_size;
  std::vector<std::string> links;
  std::string ref;
  bool sha1 = false;
};

uint64_t FileSize(const std::string& path) {
  struct stat st {};
  return path != "-" && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
}

int RunPut(const Globals& g, PutArgs& a) {
  if (!a.files_from.empty()) {
    auto list = ReadListFile(a.files_from);
    if (!list.ok()) return Fail(list.status());
    a.files.insert(a.files.end(), list->begin(), list->end());
  }
  if (a.files.empty()) return Fail(Status::InvalidArgument("put: name a FILE, - for stdin, or --files-from LIST"));
  store::PutOptions opts;
  opts.sha1_alias = a.sha1;
  opts.ref = a.ref;
  if (!a.expect.empty()) {
    auto d = store::Digest::Parse(a.expect);
    if (!d.ok()) return Fail(d.status().WithContext("--expect"));
    opts.expected_digest = *d;
  }
  if (!a.expect_size.empty()) {
    auto n = ParseSize(a.expect_size);
    if (!n.ok()) return Fail(n.status().WithContext("--expect-size"));
    opts.expected_size = *n;
  }
  for (const auto& l : a.links) {
    auto d = store::Digest::Parse(l);
    if (!d.ok()) return Fail(d.status().WithContext("--link"));
    opts.links.push_back(*d);
  }
  if (a.files.size() > 1 && (opts.expected_digest || opts.expected_size || !a.ref.empty())) {
    return Fail(Status::InvalidArgument("put: --expect, --expect-size and --ref take a single FILE"));
  }
  auto store = OpenStore(g, Access::kWrite);
  if (!store) return kExitUsage;

  uint64_t total = 0;
  for (const auto& f : a.files) total += FileSize(f);
  Progress progress("put", total);
  // Several files are stored in parallel (each large one is parallel inside too); the
  // digests are printed in input order.
  struct Outcome {
    std::optional<Result<store::ObjectInfo>> result;
  };
  std::vector<Outcome> outcomes(a.files.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next++) < a.files.size();) {
      if (Interrupted()) return;
      outcomes[i].result = transfer::PutFile(*store, a.files[i], opts, &progress);
    }
  };
  size_t threads = a.files.size() > 1 ? std::clamp<size_t>(std::thread::hardware_concurrency(), 2, 8) : 1;
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  progress.Finish();

  uint64_t failed = 0, new_bytes = 0, existed = 0;
  const bool many = a.files.size() > 1 || !a.files_from.empty();
  for (size_t i = 0; i < a.files.size(); ++i) {
    const auto& r = outcomes[i].result;
    if (!r) continue;  // not started: interrupted
    if (!r->ok()) {
      if (r->status().code() != Code::kInterrupted) {
        Fail(r->status());
        ++failed;
      }
      continue;
    }
    const auto& info = r->value();
    new_bytes += info.new_stored_bytes;
    existed += info.existed ? 1 : 0;
    if (many) {
      std::printf("%s  %s\n", info.digest.ToString().c_str(), a.files[i].c_str());
    } else {
      std::printf("%s\n", info.digest.ToString().c_str());
    }
  }
  std::fflush(stdout);
  if (Interrupted()) return Fail(Status::Interrupted("put interrupted; objects not yet committed were not stored"));
  double secs = progress.elapsed_seconds();
  Note(g, "put: " + std::to_string(a.files.size() - failed) + " object(s), " + FormatBytes(progress.done()) +
              " read, " + FormatBytes(new_bytes) + " newly stored, " + std::to_string(existed) + " already present, " +
              FormatDuration(secs) + " (" + FormatRate(progress.done(), secs) + ")" +
              (failed ? ", " + std::to_string(failed) + " failed" : ""));
  return failed ? kExitFailed : kExitOk;
}

}  // namespace

void RegisterPut(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<PutArgs>();
  auto* sub = app.add_subcommand("put", "Store files (or stdin) and print their digests");
  sub->add_option("files", a->files, "Files to store; - reads stdin");
  sub->add_option("--files-from", a->files_from, "Read the files to store from LIST (one per line; - for stdin)");
  sub->add_option("--expect", a->expect, "Refuse the content unless it has this digest (sha256:… or sha1:…)");
  sub->add_option("--expect-size", a->expect_size, "Refuse the content unless it has this size");
  sub->add_option("--link", a->links, "Declare that the object references DIGEST (repeatable; kept alive by gc)");
  sub->add_option("--ref", a->ref, "Point the ref NAME at the stored object");
  sub->add_flag("--sha1", a->sha1, "Also record a sha1: alias for the content");
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunPut(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
