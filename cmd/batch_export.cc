// silo batch-export BATCH.csv SYNC-DIR (ace-dt's mirror batch-serialize): numbered
// incremental archives with record-keeping.csv as the tracker.
#include "transfer/batch_export.h"

#include <cstdio>

#include "cmd/command.h"
#include "util/progress.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct BatchArgs {
  std::string csv;
  std::string dir;
  std::string compression = "none";
};

int RunBatchExport(const Globals& g, const BatchArgs& a) {
  transfer::BatchOptions opts;
  auto c = transfer::ParseCompression(a.compression);
  if (!c.ok()) return Fail(c.status());
  opts.compression = *c;
  auto store = OpenStore(g, Access::kWrite);
  if (!store) return kExitUsage;
  Progress progress("batch-export", 0);
  opts.progress = &progress;
  opts.on_file = [&](const std::string& file, const transfer::BatchRow& row, const transfer::ExportStats* st) {
    progress.Finish();
    if (!st) {
      Note(g, row.name + ": " + row.artifact + " already serialized (record-keeping.csv); skipped");
      return;
    }
    std::printf("%s/%s\n", a.dir.c_str(), file.c_str());
    std::fflush(stdout);
    Note(g, file + ": " + row.artifact + ", " + std::to_string(st->blobs_written) + " blobs (" +
                FormatBytes(st->bytes_written) + ") written, " + std::to_string(st->blobs_omitted) + " (" +
                FormatBytes(st->bytes_omitted) + ") carried earlier; " + FormatBytes(st->archive_bytes));
  };
  auto r = transfer::BatchExport(*store, a.csv, a.dir, opts);
  progress.Finish();
  if (!r.ok()) return Fail(r.status());
  Note(g, "batch-export " + a.dir + ": " + std::to_string(r->files) + " files (" + FormatBytes(r->bytes) + "), " +
              std::to_string(r->skipped) + " rows already serialized, " + std::to_string(r->blobs_omitted) +
              " blobs left out as carried earlier, " + FormatDuration(progress.elapsed_seconds()));
  return kExitOk;
}

}  // namespace

void RegisterBatchExport(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<BatchArgs>();
  auto* sub = app.add_subcommand("batch-export", "Serialize a name,artifact CSV into numbered incremental archives");
  sub->add_option("batch", a->csv, "BATCH.csv: a name,artifact header, then rows")->required();
  sub->add_option("sync-dir", a->dir, "SYNC-DIR: archives and record-keeping.csv")->required();
  sub->add_option("--compression", a->compression, "none, gzip or zstd");
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunBatchExport(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
