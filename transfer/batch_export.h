// batch-export (ace-dt's mirror batch-serialize): a BATCH.csv of "name,artifact" rows into
// numbered archives in a SYNC-DIR, 000001-<name>.tar[.gz|.zst], with record-keeping.csv
// ("sync_name,artifact,digest") as the tracker: each new archive leaves out every blob an
// archive already listed there carried (read from their silo-export.json).
//
// Rows: a header "name,artifact" first (spaces around fields and "# comments" ignored);
// when a name repeats, only its last row counts. A row whose artifact and digest are
// already in record-keeping.csv is skipped (nothing new to carry). Numbering continues
// after the highest number in record-keeping.csv or in the directory.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "store/store.h"
#include "transfer/archive_io.h"
#include "transfer/image_export.h"
#include "util/result.h"

namespace silo::transfer {

struct BatchRow {
  std::string name;
  std::string artifact;
};

// Parses BATCH.csv (the latest row per name kept, in the order of those rows).
// InvalidArgument naming the file and line.
Result<std::vector<BatchRow>> ParseBatchCsv(const std::string& path);

struct BatchOptions {
  Compression compression = Compression::kNone;
  int zstd_threads = 0;
  std::string record_file = "record-keeping.csv";  // inside the sync dir
  Progress* progress = nullptr;
  // Called before and after each row (file name, artifact, stats or null when skipped).
  std::function<void(const std::string& file, const BatchRow& row, const ExportStats* stats)> on_file;
};

struct BatchStats {
  uint64_t files = 0;
  uint64_t skipped = 0;
  uint64_t bytes = 0;  // archive bytes written
  uint64_t blobs_omitted = 0;
};

// Writes one archive per new row of `csv` into `sync_dir` (created if missing) and appends
// its record-keeping row (the file replaced atomically after each archive). Artifacts must
// be images in the store (NotFound naming them otherwise).
Result<BatchStats> BatchExport(store::Store& store, const std::string& csv, const std::string& sync_dir,
                               const BatchOptions& options);

}  // namespace silo::transfer
