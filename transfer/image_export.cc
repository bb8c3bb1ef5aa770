#include "transfer/image_export.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <simdjson.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <set>

#include "index/image.h"
#include "util/fd.h"
#include "util/hash.h"
#include "util/interrupt.h"
#include "util/json.h"

namespace silo::transfer {
namespace {

constexpr size_t kBuffer = 1 << 20;
constexpr std::string_view kRefNameKey = "org.opencontainers.image.ref.name";
constexpr std::string_view kOciLayout = "{\"imageLayoutVersion\":\"1.0.0\"}";

struct WriteFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using ArchiveWriter = std::unique_ptr<archive, WriteFree>;
using ArchiveEntry = std::unique_ptr<archive_entry, EntryFree>;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The last component of `path` ("out" for "dir/out/").
std::string BaseName(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string TempIn(const std::string& dir) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[40];
  std::snprintf(buf, sizeof buf, "/.silo-tmp-%016llx", static_cast<unsigned long long>(rng()));
  return dir + buf;
}

// One blob to write: a manifest (bytes in memory) or a blob streamed from the store.
struct PlannedBlob {
  store::Digest digest;
  uint64_t size = 0;
  const std::string* bytes = nullptr;  // manifests
};

struct Plan {
  std::map<store::Digest, std::string> manifests;  // digest -> exact bytes
  std::map<store::Digest, uint64_t> blobs;         // configs and layers written
  std::vector<PlannedBlob> order;                  // everything written, by digest
  std::string index_json;
  std::string docker_manifest_json;  // docker-archive only
  index::ExportRecord record;
  uint64_t blobs_omitted = 0, bytes_omitted = 0;
};

struct IndexEntry {
  std::string media_type;
  std::string digest;
  uint64_t size = 0;
  std::map<std::string, std::string> annotations;
  std::string platform_json;  // raw, when the entry had one
};

std::string EncodeIndexEntry(const IndexEntry& e) {
  std::string s = "{\"mediaType\":" + JsonQuote(e.media_type) + ",\"digest\":" + JsonQuote(e.digest) +
                  ",\"size\":" + std::to_string(e.size);
  if (!e.platform_json.empty()) s += ",\"platform\":" + e.platform_json;
  if (!e.annotations.empty()) {
    s += ",\"annotations\":{";
    bool first = true;
    for (const auto& [k, v] : e.annotations) {
      s += (first ? "" : ",") + JsonQuote(k) + ":" + JsonQuote(v);
      first = false;
    }
    s += "}";
  }
  return s + "}";
}

std::string EncodeIndex(std::vector<IndexEntry> entries) {
  std::sort(entries.begin(), entries.end(), [](const IndexEntry& a, const IndexEntry& b) {
    auto na = a.annotations.count(std::string(kRefNameKey)) ? a.annotations.at(std::string(kRefNameKey)) : "";
    auto nb = b.annotations.count(std::string(kRefNameKey)) ? b.annotations.at(std::string(kRefNameKey)) : "";
    return std::tie(na, a.digest) < std::tie(nb, b.digest);
  });
  std::string s = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[";
  for (size_t i = 0; i < entries.size(); ++i) s += (i ? "," : "") + EncodeIndexEntry(entries[i]);
  return s + "]}\n";
}

const index::ImageManifest* PickPlatform(const index::ImageGraph& g, const index::Platform& want) {
  const auto& top = g.manifests.back();
  if (!top.parsed.is_index()) return &top;
  for (const auto& m : g.manifests) {
    if (!m.parsed.is_index() && m.platform && m.platform->Matches(want)) return &m;
  }
  return nullptr;
}

Result<Plan> MakePlan(store::Store& store, const std::vector<ExportImage>& images, const ExportOptions& opts) {
  Plan plan;
  std::vector<IndexEntry> entries;
  std::string docker = "[";
  std::set<std::string> names;
  index::GraphOptions gopts;
  gopts.platforms = opts.platforms;
  std::map<std::string, uint64_t> omitted;  // digest -> size
  for (const auto& img : images) {
    if (!names.insert(img.name).second) continue;
    SILO_ASSIGN_OR_RETURN(auto graph, index::LoadImageGraph(store, img.digest, gopts).WithContext(img.name));
    if (!graph.missing_blobs.empty()) {
      return Status::NotFound("image " + img.name + " is incomplete in the store: blob " +
                              graph.missing_blobs[0].digest + " is missing (pull it again)");
    }
    for (const auto& m : graph.manifests) plan.manifests.emplace(m.digest, m.bytes);
    for (const auto& b : graph.blobs) {
      SILO_ASSIGN_OR_RETURN(auto d, store::Digest::Parse(b.digest));
      if (plan.manifests.count(d)) continue;
      if (opts.base && opts.base->carried.count(b.digest)) {
        omitted.emplace(b.digest, b.size);
        continue;
      }
      plan.blobs.emplace(d, b.size);
    }
    const auto& top = graph.manifests.back();
    IndexEntry e;
    e.media_type = top.media_type;
    e.digest = top.digest.ToString();
    e.size = top.bytes.size();
    e.annotations[std::string(kRefNameKey)] = img.name;
    entries.push_back(e);
    plan.record.images.push_back({img.name, e.digest});
    if (opts.format == ExportFormat::kDockerArchive) {
      index::Platform want = opts.docker_platform.value_or(index::Platform{"linux", "amd64", ""});
      const auto* m = PickPlatform(graph, want);
      if (!m) {
        return Status::NotFound("image " + img.name + " has no " + want.ToString() +
                                " manifest in the store (docker-archive holds one platform; choose it with "
                                "--platform)");
      }
      std::string tags = img.name.find('@') == std::string::npos ? JsonQuote(img.name) : "";
      docker += std::string(docker.size() > 1 ? "," : "") +
                "{\"Config\":" + JsonQuote("blobs/sha256/" + m->parsed.config.digest.substr(7)) + ",\"RepoTags\":[" +
                tags + "],\"Layers\":[";
      for (size_t i = 0; i < m->parsed.layers.size(); ++i) {
        docker += (i ? "," : "") + JsonQuote("blobs/sha256/" + m->parsed.layers[i].digest.substr(7));
      }
      docker += "]}";
    }
  }
  docker += "]\n";
  if (opts.format == ExportFormat::kDockerArchive) plan.docker_manifest_json = docker;
  plan.index_json = EncodeIndex(entries);
  std::sort(plan.record.images.begin(), plan.record.images.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  for (const auto& [d, bytes] : plan.manifests) plan.order.push_back({d, bytes.size(), &bytes});
  for (const auto& [d, size] : plan.blobs) plan.order.push_back({d, size, nullptr});
  std::sort(plan.order.begin(), plan.order.end(),
            [](const PlannedBlob& a, const PlannedBlob& b) { return a.digest < b.digest; });
  for (const auto& b : plan.order) plan.record.blobs.push_back({b.digest.ToString(), b.size, ""});
  std::set<std::string> required;
  for (const auto& [d, size] : omitted) {
    const std::string& archive = opts.base->carried.at(d);
    plan.record.omitted.push_back({d, size, archive});
    required.insert(archive);
    plan.blobs_omitted++;
    plan.bytes_omitted += size;
  }
  for (const auto& a : required) {
    auto it = opts.base->archive_sha256.find(a);
    plan.record.requires_archives.push_back({a, it == opts.base->archive_sha256.end() ? "" : it->second});
  }
  plan.record.tracker = opts.tracker;
  return plan;
}

// Streams a blob from the store through `sink(data, n)`, checking its size.
template <typename Sink>
Status StreamBlob(store::Store& store, const PlannedBlob& b, std::vector<uint8_t>& buf, Progress* progress,
                  Sink&& sink) {
  if (b.bytes) {
    SILO_TRY(sink(reinterpret_cast<const uint8_t*>(b.bytes->data()), b.bytes->size()));
    if (progress) progress->Add(b.bytes->size());
    return Status::Ok();
  }
  SILO_ASSIGN_OR_RETURN(auto reader, store.NewReader(b.digest).WithContext("blob " + b.digest.ToString()));
  uint64_t total = 0;
  for (;;) {
    if (Interrupted()) return Status::Interrupted("export interrupted; nothing was written");
    SILO_ASSIGN_OR_RETURN(size_t n, reader->Read({buf.data(), buf.size()}).WithContext("blob " + b.digest.ToString()));
    if (n == 0) break;
    SILO_TRY(sink(buf.data(), n));
    total += n;
    if (progress) progress->Add(n);
  }
  if (total != b.size) {
    return Status::Integrity("blob " + b.digest.ToString() + " has " + std::to_string(total) +
                             " bytes, its manifest says " + std::to_string(b.size));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- archives

struct CallbackState {
  PartWriter* parts;
  Status error;
};

la_ssize_t WriteCallback(archive* a, void* client, const void* buf, size_t n) {
  auto* st = static_cast<CallbackState*>(client);
  Status s = st->parts->Write(buf, n);
  if (!s.ok()) {
    st->error = s;
    archive_set_error(a, EIO, "%s", s.message().c_str());
    return -1;
  }
  return static_cast<la_ssize_t>(n);
}

class TarWriter {
 public:
  TarWriter(PartWriter& parts, Compression c) : state_{&parts, Status::Ok()}, compression_(c) {}

  Status Open() {
    a_.reset(archive_write_new());
    if (!a_) return Status::IO("archive_write_new failed");
    archive* a = a_.get();
    SILO_TRY(Check(archive_write_set_format_pax_restricted(a), "tar format"));
    if (compression_ == Compression::kGzip) {
      SILO_TRY(Check(archive_write_add_filter_gzip(a), "gzip filter"));
      SILO_TRY(Check(archive_write_set_options(a, "gzip:!timestamp"), "gzip options"));
    } else {
      SILO_TRY(Check(archive_write_add_filter_none(a), "filter"));
    }
    if (compression_ != Compression::kNone) archive_write_set_bytes_in_last_block(a, 1);
    return Check(archive_write_open(a, &state_, nullptr, WriteCallback, nullptr), "open");
  }

  Status Header(const std::string& path, bool dir, uint64_t size) {
    ArchiveEntry entry(archive_entry_new());
    if (!entry) return Status::IO("archive_entry_new failed");
    archive_entry* ae = entry.get();
    archive_entry_copy_pathname(ae, path.c_str());
    archive_entry_set_filetype(ae, dir ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(ae, dir ? 0755 : 0644);
    archive_entry_set_uid(ae, 0);
    archive_entry_set_gid(ae, 0);
    archive_entry_set_mtime(ae, 0, 0);
    if (!dir) archive_entry_set_size(ae, static_cast<la_int64_t>(size));
    return Check(archive_write_header(a_.get(), ae), "write " + path);
  }

  Status Data(const uint8_t* data, size_t n) {
    while (n > 0) {
      la_ssize_t w = archive_write_data(a_.get(), data, n);
      if (w <= 0) return Failure("write data");
      data += w;
      n -= static_cast<size_t>(w);
    }
    return Status::Ok();
  }

  Status Finish() { return Check(archive_write_finish_entry(a_.get()), "finish entry"); }

  Status File(const std::string& path, std::string_view bytes) {
    SILO_TRY(Header(path, false, bytes.size()));
    SILO_TRY(Data(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    return Finish();
  }

  Status Close() { return Check(archive_write_close(a_.get()), "close"); }

 private:
  Status Failure(const std::string& what) {
    if (!state_.error.ok()) return state_.error;
    const char* m = archive_error_string(a_.get());
    return Status::IO(what + ": " + (m ? m : "libarchive error"));
  }
  Status Check(int rc, const std::string& what) { return rc >= ARCHIVE_WARN ? Status::Ok() : Failure(what); }

  CallbackState state_;
  Compression compression_;
  ArchiveWriter a_;
};

Status WriteArchive(store::Store& store, const Plan& plan, const std::string& out, const ExportOptions& opts,
                    ExportStats& stats) {
  PartWriter parts(out, opts.split_size, opts.compression == Compression::kZstd, opts.zstd_threads, opts.zstd_level);
  TarWriter tar(parts, opts.compression);
  SILO_TRY(tar.Open());
  SILO_TRY(tar.File("oci-layout", kOciLayout));
  SILO_TRY(tar.File(std::string(index::kExportRecordName), index::EncodeExportRecord(plan.record)));
  SILO_TRY(tar.File("index.json", plan.index_json));
  if (!plan.docker_manifest_json.empty()) SILO_TRY(tar.File("manifest.json", plan.docker_manifest_json));
  SILO_TRY(tar.Header("blobs/", true, 0));
  SILO_TRY(tar.Finish());
  SILO_TRY(tar.Header("blobs/sha256/", true, 0));
  SILO_TRY(tar.Finish());
  std::vector<uint8_t> buf(kBuffer);
  for (const auto& b : plan.order) {
    SILO_TRY(tar.Header("blobs/sha256/" + b.digest.hex(), false, b.size));
    SILO_TRY(StreamBlob(store, b, buf, opts.progress, [&](const uint8_t* d, size_t n) { return tar.Data(d, n); }));
    SILO_TRY(tar.Finish());
    stats.blobs_written++;
    stats.bytes_written += b.size;
  }
  SILO_TRY(tar.Close());
  SILO_TRY(parts.Commit());
  stats.archive_bytes = parts.bytes();
  stats.archive_sha256 = parts.sha256_hex();
  stats.paths = parts.paths();
  return Status::Ok();
}

// ---------------------------------------------------------------- layouts

Status MakeDirs(const std::string& path) {
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) return Status::FromErrno("mkdir " + cur, errno);
  }
  return Status::Ok();
}

// Writes `path` through a temporary file and a rename; `fill` writes the content.
template <typename Fill>
Status AtomicWrite(const std::string& dir, const std::string& path, Fill&& fill) {
  std::string temp = TempIn(dir);
  Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return Status::FromErrno("create " + temp, errno);
  auto write_all = [&](const uint8_t* d, size_t n) -> Status {
    while (n > 0) {
      ssize_t w = ::write(fd.get(), d, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno("write " + path, errno);
      }
      d += w;
      n -= static_cast<size_t>(w);
    }
    return Status::Ok();
  };
  Status s = fill(write_all);
  if (s.ok() && ::fsync(fd.get()) != 0) s = Status::FromErrno("fsync " + temp, errno);
  fd.Close();
  if (s.ok() && ::rename(temp.c_str(), path.c_str()) != 0) s = Status::FromErrno("rename to " + path, errno);
  if (!s.ok()) ::unlink(temp.c_str());
  return s;
}

Result<std::vector<IndexEntry>> ReadLayoutIndex(const std::string& path) {
  std::vector<IndexEntry> out;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return out;
    return Status::FromErrno("open " + path, errno);
  }
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) return Status::FromErrno("read " + path, errno);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > index::kMaxManifestSize) return Status::Corruption(path + ": larger than 4 MiB");
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::padded_string padded(text);
  simdjson::dom::array arr;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS || root["manifests"].get(arr) != simdjson::SUCCESS) {
    return Status::Corruption(path + ": not an OCI index (refusing to overwrite it)");
  }
  for (auto m : arr) {
    IndexEntry e;
    std::string_view v;
    if (m["mediaType"].get(v) == simdjson::SUCCESS) e.media_type = std::string(v);
    if (m["digest"].get(v) != simdjson::SUCCESS) return Status::Corruption(path + ": an entry has no digest");
    e.digest = std::string(v);
    int64_t size = 0;
    if (m["size"].get(size) != simdjson::SUCCESS || size < 0) return Status::Corruption(path + ": bad size");
    e.size = static_cast<uint64_t>(size);
    simdjson::dom::element p;
    if (m["platform"].get(p) == simdjson::SUCCESS) e.platform_json = simdjson::minify(p);
    simdjson::dom::object ann;
    if (m["annotations"].get(ann) == simdjson::SUCCESS) {
      for (auto [k, val] : ann) {
        std::string_view sv;
        if (val.get(sv) == simdjson::SUCCESS) e.annotations[std::string(k)] = std::string(sv);
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

// `with_record`: an incremental export, whose silo-export.json is written before
// index.json; its SHA-256 is the layout's identity (stats.archive_sha256).
Status WriteLayout(store::Store& store, const Plan& plan, const std::string& out, const ExportOptions& opts,
                   bool with_record, ExportStats& stats) {
  const std::string blobs_dir = out + "/blobs/sha256";
  SILO_TRY(MakeDirs(blobs_dir));
  struct stat st;
  if (::stat((out + "/oci-layout").c_str(), &st) != 0) {
    SILO_TRY(AtomicWrite(out, out + "/oci-layout", [&](auto& w) {
      return w(reinterpret_cast<const uint8_t*>(kOciLayout.data()), kOciLayout.size());
    }));
  }
  if (with_record) {
    std::string record = index::EncodeExportRecord(plan.record);
    SILO_TRY(AtomicWrite(out, out + "/" + std::string(index::kExportRecordName),
                         [&](auto& w) { return w(reinterpret_cast<const uint8_t*>(record.data()), record.size()); }));
    stats.archive_sha256 = ToHex(Sha256::Of(AsBytes(record)));
  }
  std::vector<uint8_t> buf(kBuffer);
  for (const auto& b : plan.order) {
    std::string path = blobs_dir + "/" + b.digest.hex();
    if (::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == b.size) {
      stats.blobs_present++;
      continue;
    }
    SILO_TRY(AtomicWrite(blobs_dir, path, [&](auto& w) { return StreamBlob(store, b, buf, opts.progress, w); }));
    stats.blobs_written++;
    stats.bytes_written += b.size;
  }
  // index.json: merged with what is there, under a lock so concurrent exports keep each
  // other's images.
  std::string lock_path = out + "/index.json.lock";
  Fd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!lock.valid()) return Status::FromErrno("open " + lock_path, errno);
  while (::flock(lock.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return Status::FromErrno("lock " + lock_path, errno);
  }
  SILO_ASSIGN_OR_RETURN(auto entries, ReadLayoutIndex(out + "/index.json"));
  std::set<std::string> ours;
  for (const auto& i : plan.record.images) ours.insert(i.name);
  std::vector<IndexEntry> merged;
  for (auto& e : entries) {
    auto it = e.annotations.find(std::string(kRefNameKey));
    if (it != e.annotations.end() && ours.count(it->second)) continue;  // replaced by this export
    merged.push_back(std::move(e));
  }
  simdjson::dom::parser parser;
  simdjson::padded_string padded(plan.index_json);
  simdjson::dom::element root;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS) return Status::Corruption("index.json: internal error");
  for (auto m : root["manifests"].get_array()) {
    IndexEntry e;
    e.media_type = std::string(m["mediaType"].get_string().value());
    e.digest = std::string(m["digest"].get_string().value());
    e.size = static_cast<uint64_t>(m["size"].get_int64().value());
    for (auto [k, v] : m["annotations"].get_object())
      e.annotations[std::string(k)] = std::string(v.get_string().value());
    merged.push_back(std::move(e));
  }
  std::string index_json = EncodeIndex(std::move(merged));
  SILO_TRY(AtomicWrite(out, out + "/index.json", [&](auto& w) {
    return w(reinterpret_cast<const uint8_t*>(index_json.data()), index_json.size());
  }));
  stats.paths = {out};
  return Status::Ok();
}

}  // namespace

Result<ExportStats> ExportImages(store::Store& store, const std::vector<ExportImage>& images, const std::string& out,
                                 const ExportOptions& options) {
  if (images.empty()) return Status::InvalidArgument("export: no images given");
  if (!options.tracker.empty()) SILO_TRY(index::ValidateTrackerName(options.tracker));
  SILO_ASSIGN_OR_RETURN(Plan plan, MakePlan(store, images, options));
  ExportStats stats;
  stats.images = plan.record.images.size();
  stats.manifests = plan.manifests.size();
  stats.blobs_omitted = plan.blobs_omitted;
  stats.bytes_omitted = plan.bytes_omitted;
  if (options.format == ExportFormat::kOciLayout) {
    if (options.split_size)
      return Status::InvalidArgument("export " + out + ": --split needs an archive, not a layout");
    // An incremental layout holds this export alone, with its record: merging it into an
    // earlier layout would leave a record that no longer says what the directory needs.
    const bool incremental = options.base || !options.tracker.empty();
    struct stat st;
    if (incremental && ::stat((out + "/index.json").c_str(), &st) == 0) {
      return Status::InvalidArgument("export " + out +
                                     ": an incremental (--tracker/--since) layout export needs a new directory; "
                                     "this one already holds index.json");
    }
    SILO_TRY(WriteLayout(store, plan, out, options, incremental, stats).WithContext("export " + out));
    if (!options.tracker.empty()) {
      SILO_TRY(
          index::RecordExport(store, options.tracker, {BaseName(out), stats.archive_sha256}, plan.record.blobs, NowNs())
              .WithContext("tracker " + options.tracker));
    }
  } else {
    SILO_TRY(WriteArchive(store, plan, out, options, stats).WithContext("export " + out));
    if (!options.tracker.empty()) {
      SILO_TRY(
          index::RecordExport(store, options.tracker, {BaseName(out), stats.archive_sha256}, plan.record.blobs, NowNs())
              .WithContext("tracker " + options.tracker));
    }
  }
  stats.record = std::move(plan.record);
  return stats;
}

}  // namespace silo::transfer
