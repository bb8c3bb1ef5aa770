#include "index/export_record.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <tuple>

#include "util/json.h"

namespace silo::index {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

constexpr std::string_view kBlobPrefix = "b/";
constexpr std::string_view kArchivePrefix = "a/";

constexpr std::string_view kTrackerList = "export-trackers";

// "a/<archive>" values: "<sha256>" (before trackers were listed) or
// "<sha256> <time_ns> <seq> <blobs> <bytes>"; nullopt when neither.
std::optional<TrackedExport> ParseArchiveValue(std::string_view value) {
  TrackedExport e;
  size_t sp = value.find(' ');
  e.sha256 = std::string(value.substr(0, sp));
  if (sp == std::string_view::npos) return e;
  std::string rest(value.substr(sp + 1));
  long long time_ns = 0;
  unsigned long long seq = 0, blobs = 0, bytes = 0;
  int used = 0;
  if (std::sscanf(rest.c_str(), "%lld %llu %llu %llu%n", &time_ns, &seq, &blobs, &bytes, &used) != 4 ||
      static_cast<size_t>(used) != rest.size()) {
    return std::nullopt;
  }
  e.time_ns = time_ns;
  e.seq = seq;
  e.blobs = blobs;
  e.bytes = bytes;
  return e;
}

std::string Space(std::string_view name) {
  return "export/" + std::string(name);
}

Status Bad(const std::string& why) {
  return Status::InvalidArgument(std::string(kExportRecordName) + ": " + why);
}

std::string Get(object o, std::string_view key) {
  std::string_view v;
  if (o[key].get(v) == simdjson::SUCCESS) return std::string(v);
  return {};
}

Result<std::vector<ExportedBlob>> Blobs(object o, std::string_view key) {
  std::vector<ExportedBlob> out;
  array a;
  if (o[key].get(a) != simdjson::SUCCESS) return out;
  for (auto e : a) {
    object b;
    if (e.get(b) != simdjson::SUCCESS) return Bad(std::string(key) + ": an entry is not an object");
    ExportedBlob blob;
    blob.digest = Get(b, "digest");
    int64_t size = -1;
    if (blob.digest.size() != 71 || !blob.digest.starts_with("sha256:") || b["size"].get(size) != simdjson::SUCCESS ||
        size < 0) {
      return Bad(std::string(key) + ": entry '" + blob.digest + "' lacks a sha256 digest or a size");
    }
    blob.size = static_cast<uint64_t>(size);
    blob.archive = Get(b, "archive");
    out.push_back(std::move(blob));
  }
  return out;
}

}  // namespace

std::string EncodeExportRecord(const ExportRecord& r) {
  auto blobs = [](const std::vector<ExportedBlob>& v, bool with_archive) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) {
      s += (i ? ",\n    " : "\n    ");
      s += "{\"digest\":" + JsonQuote(v[i].digest) + ",\"size\":" + std::to_string(v[i].size);
      if (with_archive) s += ",\"archive\":" + JsonQuote(v[i].archive);
      s += "}";
    }
    return s + (v.empty() ? "]" : "\n  ]");
  };
  std::string s = "{\n  \"silo_export\": 1,\n  \"tracker\": " + JsonQuote(r.tracker) + ",\n  \"images\": [";
  for (size_t i = 0; i < r.images.size(); ++i) {
    s += (i ? ",\n    " : "\n    ");
    s += "{\"name\":" + JsonQuote(r.images[i].name) + ",\"digest\":" + JsonQuote(r.images[i].digest) + "}";
  }
  s += r.images.empty() ? "]" : "\n  ]";
  s += ",\n  \"requires\": [";
  for (size_t i = 0; i < r.requires_archives.size(); ++i) {
    s += (i ? ",\n    " : "\n    ");
    s += "{\"name\":" + JsonQuote(r.requires_archives[i].name) +
         ",\"sha256\":" + JsonQuote(r.requires_archives[i].sha256) + "}";
  }
  s += r.requires_archives.empty() ? "]" : "\n  ]";
  s += ",\n  \"blobs\": " + blobs(r.blobs, false);
  s += ",\n  \"omitted\": " + blobs(r.omitted, true);
  return s + "\n}\n";
}

Result<ExportRecord> ParseExportRecord(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  element root;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS) return Bad("not valid JSON");
  object o;
  if (root.get(o) != simdjson::SUCCESS) return Bad("top level is not an object");
  int64_t version = 0;
  if (o["silo_export"].get(version) != simdjson::SUCCESS || version != 1) {
    return Bad("unknown version (silo_export must be 1)");
  }
  ExportRecord r;
  r.tracker = Get(o, "tracker");
  array a;
  if (o["images"].get(a) == simdjson::SUCCESS) {
    for (auto e : a) {
      object i;
      if (e.get(i) != simdjson::SUCCESS) return Bad("images: an entry is not an object");
      r.images.push_back({Get(i, "name"), Get(i, "digest")});
    }
  }
  if (o["requires"].get(a) == simdjson::SUCCESS) {
    for (auto e : a) {
      object i;
      if (e.get(i) != simdjson::SUCCESS) return Bad("requires: an entry is not an object");
      r.requires_archives.push_back({Get(i, "name"), Get(i, "sha256")});
    }
  }
  SILO_ASSIGN_OR_RETURN(r.blobs, Blobs(o, "blobs"));
  SILO_ASSIGN_OR_RETURN(r.omitted, Blobs(o, "omitted"));
  return r;
}

void ExportBase::Add(const ExportRecord& record, const ArchiveId& archive) {
  archive_sha256[archive.name] = archive.sha256;
  for (const auto& req : record.requires_archives) archive_sha256.try_emplace(req.name, req.sha256);
  for (const auto& b : record.omitted) carried.try_emplace(b.digest, b.archive);
  for (const auto& b : record.blobs) carried.try_emplace(b.digest, archive.name);
}

Status ValidateTrackerName(std::string_view name) {
  if (name.empty() || name.size() > 100) return Status::InvalidArgument("tracker name must be 1-100 bytes");
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return Status::InvalidArgument("tracker name '" + std::string(name) + "': only letters, digits, '.', '_', '-'");
    }
  }
  if (name == "." || name == "..") return Status::InvalidArgument("tracker name '" + std::string(name) + "'");
  return Status::Ok();
}

Result<ExportBase> LoadTracker(store::Store& store, std::string_view name) {
  SILO_TRY(ValidateTrackerName(name));
  ExportBase base;
  SILO_TRY(store.ScanIndex(Space(name), "", [&](std::string_view key, std::string_view value) {
    if (key.starts_with(kBlobPrefix)) {
      base.carried.emplace(std::string(key.substr(kBlobPrefix.size())), std::string(value));
    } else if (key.starts_with(kArchivePrefix)) {
      base.archive_sha256.emplace(std::string(key.substr(kArchivePrefix.size())),
                                  std::string(value.substr(0, value.find(' '))));
    }
    return true;
  }));
  return base;
}

Status RecordExport(store::Store& store, std::string_view name, const ArchiveId& archive,
                    const std::vector<ExportedBlob>& blobs, int64_t time_ns) {
  SILO_TRY(ValidateTrackerName(name));
  uint64_t seq = 0;
  SILO_TRY(store.ScanIndex(Space(name), kArchivePrefix, [&](std::string_view, std::string_view value) {
    if (auto e = ParseArchiveValue(value)) seq = std::max(seq, e->seq);
    return true;
  }));
  std::vector<std::string> keys;
  keys.reserve(blobs.size());
  for (const auto& b : blobs) keys.push_back(std::string(kBlobPrefix) + b.digest);
  SILO_ASSIGN_OR_RETURN(auto have, store.GetIndexMany(Space(name), keys));
  std::vector<std::pair<std::string, std::optional<std::string>>> changes;
  changes.reserve(blobs.size() + 1);
  uint64_t added = 0, bytes = 0;
  for (size_t i = 0; i < blobs.size(); ++i) {
    // The first archive that carried a blob stays its carrier.
    if (have[i]) continue;
    changes.emplace_back(std::move(keys[i]), archive.name);
    ++added;
    bytes += blobs[i].size;
  }
  changes.emplace_back(std::string(kArchivePrefix) + archive.name,
                       archive.sha256 + " " + std::to_string(time_ns) + " " + std::to_string(seq + 1) + " " +
                           std::to_string(added) + " " + std::to_string(bytes));
  SILO_TRY(store.PutIndex(kTrackerList, name, ""));
  return store.WriteIndex(Space(name), changes);
}

Result<std::vector<std::string>> ListTrackers(store::Store& store) {
  std::vector<std::string> names;
  SILO_TRY(store.ScanIndex(kTrackerList, "", [&](std::string_view key, std::string_view) {
    names.emplace_back(key);
    return true;
  }));
  return names;
}

Result<std::optional<TrackerSummary>> DescribeTracker(store::Store& store, std::string_view name) {
  SILO_TRY(ValidateTrackerName(name));
  TrackerSummary t;
  t.name = std::string(name);
  bool any = false;
  Status bad = Status::Ok();
  SILO_TRY(store.ScanIndex(Space(name), "", [&](std::string_view key, std::string_view value) {
    any = true;
    if (key.starts_with(kBlobPrefix)) {
      t.blobs++;
    } else if (key.starts_with(kArchivePrefix)) {
      auto e = ParseArchiveValue(value);
      if (!e) {
        bad = Status::Corruption("tracker " + std::string(name) + ": unreadable entry for archive " +
                                 std::string(key.substr(kArchivePrefix.size())));
        return false;
      }
      e->archive = std::string(key.substr(kArchivePrefix.size()));
      t.bytes += e->bytes;
      t.exports.push_back(std::move(*e));
    }
    return true;
  }));
  SILO_TRY(bad);
  if (!any) return std::optional<TrackerSummary>();
  std::stable_sort(t.exports.begin(), t.exports.end(), [](const TrackedExport& a, const TrackedExport& b) {
    return std::tie(a.seq, a.time_ns) < std::tie(b.seq, b.time_ns);
  });
  return std::optional<TrackerSummary>(std::move(t));
}

Status RemoveTracker(store::Store& store, std::string_view name) {
  SILO_TRY(ValidateTrackerName(name));
  SILO_ASSIGN_OR_RETURN(auto listed, store.GetIndex(kTrackerList, name));
  bool any = false;
  SILO_TRY(store.ScanIndex(Space(name), "", [&](std::string_view, std::string_view) {
    any = true;
    return false;
  }));
  if (!listed && !any) {
    return Status::NotFound("no tracker named '" + std::string(name) + "' (silo tracker ls lists them)");
  }
  // Entries first: a crash in between leaves a listed, empty tracker, which rm removes.
  SILO_TRY(store.DropIndex(Space(name)));
  std::pair<std::string, std::optional<std::string>> drop{std::string(name), std::nullopt};
  return store.WriteIndex(kTrackerList, {&drop, 1});
}

}  // namespace silo::index
