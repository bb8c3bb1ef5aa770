#include "transfer/batch_export.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <map>
#include <random>

#include "index/image.h"
#include "transfer/image_import.h"
#include "util/fd.h"

namespace silo::transfer {
namespace {

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string(s);
}

bool SafeName(std::string_view s) {
  return !s.empty() && s != "." && s != ".." && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

struct RecordRow {
  std::string sync_name, artifact, digest;
};

Result<std::vector<RecordRow>> ReadRecordKeeping(const std::string& path) {
  std::vector<RecordRow> rows;
  std::ifstream in(path);
  if (!in) return rows;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    line = Trim(line);
    if (line.empty()) continue;
    if (n == 1 && line.starts_with("sync_name")) continue;
    size_t a = line.find(','), b = line.rfind(',');
    if (a == std::string::npos || a == b) {
      return Status::InvalidArgument(path + " line " + std::to_string(n) + ": expected sync_name,artifact,digest");
    }
    rows.push_back({Trim(line.substr(0, a)), Trim(line.substr(a + 1, b - a - 1)), Trim(line.substr(b + 1))});
  }
  return rows;
}

Status WriteRecordKeeping(const std::string& dir, const std::string& path, const std::vector<RecordRow>& rows) {
  std::string text = "sync_name,artifact,digest\n";
  for (const auto& r : rows) text += r.sync_name + "," + r.artifact + "," + r.digest + "\n";
  std::mt19937_64 rng{std::random_device{}()};
  std::string temp = dir + "/.silo-tmp-" + std::to_string(rng());
  Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return Status::FromErrno("create " + temp, errno);
  Status s;
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) || ::fsync(fd.get()) != 0) {
    s = Status::FromErrno("write " + temp, errno);
  }
  fd.Close();
  if (s.ok() && ::rename(temp.c_str(), path.c_str()) != 0) s = Status::FromErrno("rename to " + path, errno);
  if (!s.ok()) ::unlink(temp.c_str());
  return s;
}

int NumberOf(const std::string& name) {
  if (name.size() < 7 || name[6] != '-') return 0;
  for (int i = 0; i < 6; ++i) {
    if (name[i] < '0' || name[i] > '9') return 0;
  }
  return std::stoi(name.substr(0, 6));
}

bool Exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

}  // namespace

Result<std::vector<BatchRow>> ParseBatchCsv(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("batch file " + path + ": cannot be read");
  std::vector<BatchRow> rows;
  std::string line;
  bool header = false;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    line = Trim(line);
    if (line.empty()) continue;
    size_t comma = line.find(',');
    if (comma == std::string::npos || line.find(',', comma + 1) != std::string::npos) {
      return Status::InvalidArgument(path + " line " + std::to_string(n) + ": expected name,artifact");
    }
    BatchRow row{Trim(line.substr(0, comma)), Trim(line.substr(comma + 1))};
    if (!header) {
      if (row.name != "name" || row.artifact != "artifact") {
        return Status::InvalidArgument(path + " line " + std::to_string(n) + ": the first row must be name,artifact");
      }
      header = true;
      continue;
    }
    if (!SafeName(row.name) || row.artifact.empty()) {
      return Status::InvalidArgument(path + " line " + std::to_string(n) + ": name '" + row.name +
                                     "' must be letters, digits, '.', '_', '-', and an artifact is needed");
    }
    rows.push_back(std::move(row));
  }
  if (!header) return Status::InvalidArgument(path + ": empty (expected a name,artifact header and rows)");
  std::map<std::string, size_t> last;
  for (size_t i = 0; i < rows.size(); ++i) last[rows[i].name] = i;
  std::vector<BatchRow> out;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (last[rows[i].name] == i) out.push_back(rows[i]);
  }
  return out;
}

Result<BatchStats> BatchExport(store::Store& store, const std::string& csv, const std::string& sync_dir,
                               const BatchOptions& opts) {
  SILO_ASSIGN_OR_RETURN(auto rows, ParseBatchCsv(csv));
  if (::mkdir(sync_dir.c_str(), 0755) != 0 && errno != EEXIST) return Status::FromErrno("mkdir " + sync_dir, errno);
  const std::string record_path = sync_dir + "/" + opts.record_file;
  SILO_ASSIGN_OR_RETURN(auto records, ReadRecordKeeping(record_path));

  // What earlier files carried: their silo-export.json, or (file gone) the image's graph.
  index::ExportBase base;
  int number = 0;
  for (const auto& r : records) {
    number = std::max(number, NumberOf(r.sync_name));
    std::string file = sync_dir + "/" + r.sync_name;
    std::vector<std::string> parts;
    if (Exists(file)) {
      parts = {file};
    } else if (Exists(file + ".000")) {
      SILO_ASSIGN_OR_RETURN(auto groups, ResolveArchiveInputs({file + ".000"}));
      parts = groups[0];
    }
    if (!parts.empty()) {
      SILO_ASSIGN_OR_RETURN(auto rec, ReadArchiveRecord(parts).WithContext(record_path));
      rec.second.name = r.sync_name;
      base.Add(rec.first, rec.second);
      continue;
    }
    SILO_ASSIGN_OR_RETURN(auto d, store::Digest::Parse(r.digest).WithContext(record_path));
    auto graph = index::LoadImageGraph(store, d);
    if (!graph.ok()) {
      return Status::NotFound(record_path + ": " + r.sync_name + " is neither in " + sync_dir +
                              " nor its artifact in the store; cannot tell which blobs it carried");
    }
    index::ExportRecord rec;
    for (const auto& m : graph->manifests) rec.blobs.push_back({m.digest.ToString(), m.bytes.size(), ""});
    for (const auto& b : graph->blobs) rec.blobs.push_back({b.digest, b.size, ""});
    base.Add(rec, {r.sync_name, ""});
  }
  if (DIR* d = ::opendir(sync_dir.c_str())) {
    while (dirent* e = ::readdir(d)) number = std::max(number, NumberOf(e->d_name));
    ::closedir(d);
  }

  std::string ext = opts.compression == Compression::kZstd   ? ".tar.zst"
                    : opts.compression == Compression::kGzip ? ".tar.gz"
                                                             : ".tar";
  BatchStats stats;
  for (const auto& row : rows) {
    SILO_ASSIGN_OR_RETURN(auto refs, index::FindImages(store, row.artifact).WithContext("batch " + row.name));
    if (refs.size() != 1) {
      return Status::InvalidArgument("batch " + row.name + ": artifact " + row.artifact + " names " +
                                     std::to_string(refs.size()) + " images; give one reference");
    }
    const std::string digest = refs[0].target.ToString();
    bool done = std::any_of(records.begin(), records.end(),
                            [&](const RecordRow& r) { return r.artifact == row.artifact && r.digest == digest; });
    if (done) {
      stats.skipped++;
      if (opts.on_file) opts.on_file("", row, nullptr);
      continue;
    }
    char prefix[16];
    std::snprintf(prefix, sizeof prefix, "%06d-", ++number);
    std::string file = prefix + row.name + ext;
    ExportOptions eo;
    eo.format = ExportFormat::kOciArchive;
    eo.compression = opts.compression;
    eo.zstd_threads = opts.zstd_threads;
    eo.base = &base;
    eo.progress = opts.progress;
    SILO_ASSIGN_OR_RETURN(auto st,
                          ExportImages(store, {{refs[0].name.substr(6), refs[0].target}}, sync_dir + "/" + file, eo)
                              .WithContext("batch " + row.name));
    base.Add(st.record, {file, st.archive_sha256});
    records.push_back({file, row.artifact, digest});
    SILO_TRY(WriteRecordKeeping(sync_dir, record_path, records));
    stats.files++;
    stats.bytes += st.archive_bytes;
    stats.blobs_omitted += st.blobs_omitted;
    if (opts.on_file) opts.on_file(file, row, &st);
  }
  return stats;
}

}  // namespace silo::transfer
