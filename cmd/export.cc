// silo export IMAGE…|-f LIST -o OUT: images from the store into an OCI layout directory or
// an archive (tar, tar.gz, tar.zst; oci-archive or docker-archive), optionally split
// (archives) and incremental (--tracker NAME, --since ARCHIVE|LAYOUT|TRACKER).
#include <sys/stat.h>

#include <cstdio>

#include "cmd/command.h"
#include "index/export_record.h"
#include "index/image.h"
#include "transfer/archive_io.h"
#include "transfer/image_export.h"
#include "transfer/image_import.h"
#include "util/progress.h"
#include "util/units.h"

namespace silo::cmd {
namespace {

struct ExportArgs {
  std::vector<std::string> images;
  std::string file;
  std::string out;
  std::string format = "oci-archive";
  std::string compression;
  std::string split;
  std::string tracker;
  std::vector<std::string> since;
  std::vector<std::string> platforms;
  std::string platform;
  int zstd_level = 3;
};

bool IsDir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool Exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

int RunExport(const Globals& g, const ExportArgs& a) {
  std::vector<std::string> names = a.images;
  if (!a.file.empty()) {
    auto list = ReadListFile(a.file);
    if (!list.ok()) return Fail(list.status());
    names.insert(names.end(), list->begin(), list->end());
  }
  if (names.empty()) return Fail(Status::InvalidArgument("export: give IMAGE… or -f LIST"));
  transfer::ExportOptions opts;
  // Where and how: a directory (existing, or a name without an archive suffix) is a layout.
  auto by_name = transfer::CompressionOfPath(a.out);
  bool layout = IsDir(a.out) || (!by_name && a.compression.empty() && a.format == "oci-archive" &&
                                 a.out.find('.') == std::string::npos);
  if (a.format == "oci-archive") {
    opts.format = layout ? transfer::ExportFormat::kOciLayout : transfer::ExportFormat::kOciArchive;
  } else if (a.format == "docker-archive") {
    opts.format = transfer::ExportFormat::kDockerArchive;
  } else if (a.format == "oci-layout" || a.format == "oci") {
    opts.format = transfer::ExportFormat::kOciLayout;
  } else {
    return Fail(
        Status::InvalidArgument("--format " + a.format + ": expected oci-archive, oci-layout or docker-archive"));
  }
  if (opts.format != transfer::ExportFormat::kOciLayout) {
    if (!a.compression.empty()) {
      auto c = transfer::ParseCompression(a.compression);
      if (!c.ok()) return Fail(c.status());
      opts.compression = *c;
    } else if (by_name) {
      opts.compression = *by_name;
    } else {
      return Fail(Status::InvalidArgument("export -o " + a.out +
                                          ": name the archive .tar, .tar.gz or .tar.zst, or give --compression"));
    }
  } else if (!a.split.empty()) {
    return Fail(Status::InvalidArgument("export -o " + a.out +
                                        ": --split needs an archive (name it .tar, .tar.gz or .tar.zst); a layout "
                                        "directory is not split"));
  }
  if (!a.split.empty()) {
    auto s = ParseSize(a.split);
    if (!s.ok()) return Fail(s.status().WithContext("--split"));
    if (*s < 4096) return Fail(Status::InvalidArgument("--split " + a.split + ": at least 4K"));
    opts.split_size = *s;
  }
  for (const auto& p : a.platforms) {
    auto plat = index::Platform::Parse(p);
    if (!plat.ok()) return Fail(plat.status());
    opts.platforms.push_back(*plat);
  }
  if (!a.platform.empty()) {
    auto plat = index::Platform::Parse(a.platform);
    if (!plat.ok()) return Fail(plat.status());
    opts.docker_platform = *plat;
  }
  opts.zstd_level = a.zstd_level;
  opts.tracker = a.tracker;
  if (!a.tracker.empty()) {
    auto v = index::ValidateTrackerName(a.tracker);
    if (!v.ok()) return Fail(v);
  }

  auto store = OpenStore(g, Access::kWrite);
  if (!store) return kExitUsage;
  std::vector<transfer::ExportImage> images;
  for (const auto& n : names) {
    auto refs = index::FindImages(*store, n);
    if (!refs.ok()) return Fail(refs.status());
    for (const auto& r : *refs) images.push_back({r.name.substr(6), r.target});
  }
  index::ExportBase base;
  bool incremental = false;
  if (!a.tracker.empty()) {
    auto t = index::LoadTracker(*store, a.tracker);
    if (!t.ok()) return Fail(t.status());
    base = std::move(*t);
    incremental = true;
  }
  for (const auto& s : a.since) {
    incremental = true;
    if (IsDir(s)) {
      auto rec = transfer::ReadLayoutRecord(s);
      if (!rec.ok()) return Fail(rec.status().WithContext("--since " + s));
      base.Add(rec->first, rec->second);
    } else if (Exists(s) || Exists(s + ".000")) {
      auto groups = transfer::ResolveArchiveInputs({Exists(s) ? s : s + ".000"});
      if (!groups.ok()) return Fail(groups.status());
      auto rec = transfer::ReadArchiveRecord((*groups)[0]);
      if (!rec.ok()) return Fail(rec.status().WithContext("--since " + s));
      base.Add(rec->first, rec->second);
    } else {
      auto t = index::LoadTracker(*store, s);
      if (!t.ok()) return Fail(t.status().WithContext("--since " + s));
      if (t->archive_sha256.empty()) {
        return Fail(Status::NotFound("--since " + s + ": no such archive, and no tracker of that name"));
      }
      for (auto& [k, v] : t->carried) base.carried.try_emplace(k, v);
      for (auto& [k, v] : t->archive_sha256) base.archive_sha256.try_emplace(k, v);
    }
  }
  if (incremental) opts.base = &base;

  Progress progress("export", 0);
  opts.progress = &progress;
  auto r = transfer::ExportImages(*store, images, a.out, opts);
  progress.Finish();
  if (!r.ok()) return Fail(r.status());
  for (const auto& p : r->paths) std::printf("%s\n", p.c_str());
  std::fflush(stdout);
  std::string what = std::to_string(r->images) + " images, " + std::to_string(r->blobs_written) + " blobs (" +
                     FormatBytes(r->bytes_written) + ") written";
  if (opts.format == transfer::ExportFormat::kOciLayout) {
    what += ", " + std::to_string(r->blobs_present) + " already there";
  } else {
    what += "; archive " + FormatBytes(r->archive_bytes) +
            (r->paths.size() > 1 ? " in " + std::to_string(r->paths.size()) + " parts" : "") + ", sha256 " +
            r->archive_sha256.substr(0, 12);
  }
  if (incremental) {
    what += "; " + std::to_string(r->blobs_omitted) + " blobs (" + FormatBytes(r->bytes_omitted) +
            ") left out, carried by " + std::to_string(r->record.requires_archives.size()) + " earlier archive(s)";
  }
  Note(g, "export " + a.out + ": " + what + ", " + FormatDuration(progress.elapsed_seconds()));
  return kExitOk;
}

}  // namespace

void RegisterExport(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<ExportArgs>();
  auto* sub = app.add_subcommand("export", "Export images to an OCI layout directory or archive (oci/docker)");
  sub->add_option("images", a->images, "Images (references, or a prefix ending in / or *)");
  sub->add_option("-f,--file", a->file, "Read image references from FILE (one per line, - for stdin)");
  sub->add_option("-o,--output", a->out, "Output: a directory (OCI layout) or OUT.tar, .tar.gz, .tar.zst")->required();
  sub->add_option("--format", a->format, "oci-archive (default; a directory is a layout), oci-layout, docker-archive");
  sub->add_option("--compression", a->compression, "none, gzip or zstd (default: from the name)");
  sub->add_option("--split", a->split, "Write parts OUT.000, OUT.001… of at most SIZE, and OUT.sha256");
  sub->add_option("--tracker", a->tracker,
                  "Incremental: leave out blobs earlier exports under NAME carried; record this one");
  sub->add_option("--since", a->since,
                  "Incremental: leave out blobs this earlier ARCHIVE, LAYOUT (or TRACKER) carried");
  sub->add_option("--platform", a->platform, "docker-archive: the platform taken from an index (linux/amd64)");
  sub->add_option("--platforms", a->platforms, "Only these platforms of indexes (os/arch[/variant])")->delimiter(',');
  sub->add_option("--zstd-level", a->zstd_level, "zstd level (1-19)")->check(CLI::Range(1, 19));
  sub->callback([&ctx, a] { ctx.run = [&ctx, a] { return RunExport(ctx.globals, *a); }; });
}

}  // namespace silo::cmd
