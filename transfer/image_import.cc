#include "transfer/image_import.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <set>

#include "index/docker_save.h"
#include "index/image.h"
#include "index/manifest.h"
#include "index/reference.h"
#include "transfer/archive_io.h"
#include "util/fd.h"
#include "util/interrupt.h"

namespace silo::transfer {
namespace {

constexpr size_t kBuffer = 1 << 20;
constexpr std::string_view kRefNameKey = "org.opencontainers.image.ref.name";
constexpr size_t kMaxListed = 20;  // missing blobs named in an error

struct ReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchiveReader = std::unique_ptr<archive, ReadFree>;

bool IsDir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool Exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

std::string Normalize(std::string_view path) {
  while (path.starts_with("./")) path.remove_prefix(2);
  return std::string(path);
}

bool IsHex64(std::string_view s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Reads an archive (parts joined) through libarchive; errors name the part being read.
class ArchiveStream {
 public:
  static Result<std::unique_ptr<ArchiveStream>> Open(const std::vector<std::string>& parts) {
    std::unique_ptr<ArchiveStream> s(new ArchiveStream());
    SILO_ASSIGN_OR_RETURN(s->parts_, PartReader::Open(parts));
    s->a_.reset(archive_read_new());
    if (!s->a_) return Status::IO("archive_read_new failed");
    archive_read_support_filter_all(s->a_.get());
    archive_read_support_format_tar(s->a_.get());
    archive_read_support_format_gnutar(s->a_.get());
    if (archive_read_open(s->a_.get(), s.get(), nullptr, ReadCallback, nullptr) != ARCHIVE_OK) {
      return s->Failure("open");
    }
    return s;
  }

  std::string name() const { return parts_->display_name(); }

  // The next entry's path and size; nullopt at the end.
  Result<std::optional<std::pair<std::string, archive_entry*>>> Next() {
    archive_entry* ae = nullptr;
    int rc = archive_read_next_header(a_.get(), &ae);
    if (rc == ARCHIVE_EOF) {
      // Drain, so the last part's checksum is checked.
      SILO_TRY(Drain());
      return std::optional<std::pair<std::string, archive_entry*>>();
    }
    if (rc < ARCHIVE_WARN) return Failure("read entry");
    const char* p = archive_entry_pathname(ae);
    return std::optional<std::pair<std::string, archive_entry*>>({Normalize(p ? p : ""), ae});
  }

  Result<size_t> Read(uint8_t* buf, size_t n) {
    la_ssize_t r = archive_read_data(a_.get(), buf, n);
    if (r < 0) return Failure("read data");
    return static_cast<size_t>(r);
  }

  Status Skip() {
    if (archive_read_data_skip(a_.get()) < ARCHIVE_WARN) return Failure("skip data");
    return Status::Ok();
  }

 private:
  ArchiveStream() : buf_(kBuffer) {}

  static la_ssize_t ReadCallback(archive* a, void* client, const void** out) {
    auto* s = static_cast<ArchiveStream*>(client);
    auto n = s->parts_->Read(s->buf_.data(), s->buf_.size());
    if (!n.ok()) {
      s->error_ = n.status();
      archive_set_error(a, EIO, "%s", n.status().message().c_str());
      return -1;
    }
    *out = s->buf_.data();
    return static_cast<la_ssize_t>(*n);
  }

  Status Drain() {
    for (;;) {
      SILO_ASSIGN_OR_RETURN(size_t n, parts_->Read(buf_.data(), buf_.size()));
      if (n == 0) return Status::Ok();
    }
  }

  Status Failure(const std::string& what) {
    if (!error_.ok()) return error_;
    const char* m = archive_error_string(a_.get());
    std::string part = parts_->current();
    return Status::Corruption(what + ": " + (m ? m : "libarchive error") +
                              (part.empty() || parts_->paths().size() == 1 ? "" : " (in part " + part + ")"));
  }

  std::unique_ptr<PartReader> parts_;
  ArchiveReader a_;
  std::vector<uint8_t> buf_;
  Status error_;
};

using ReadFn = std::function<Result<size_t>(uint8_t*, size_t)>;

// The import of one archive or layout: blobs as they come, refs at the end.
class Importer {
 public:
  Importer(store::Store& store, const ImageImportOptions& opts, ImageImportStats& stats)
      : store_(store), opts_(opts), stats_(stats), buf_(kBuffer) {}

  Status Record(std::string_view json) {
    SILO_ASSIGN_OR_RETURN(auto rec, index::ParseExportRecord(json));
    std::vector<store::Digest> digests;
    for (const auto& b : rec.omitted) {
      SILO_ASSIGN_OR_RETURN(auto d, store::Digest::Parse(b.digest));
      digests.push_back(d);
      carriers_[b.digest] = b.archive;
    }
    SILO_ASSIGN_OR_RETURN(auto missing, store_.Missing(digests));
    if (!missing.empty()) {
      std::vector<std::string> names;
      for (const auto& d : missing) names.push_back(d.ToString());
      return MissingError("it is incremental and", names);
    }
    record_ = std::move(rec);
    return Status::Ok();
  }

  void Index(std::string json) { index_json_ = std::move(json); }

  // One blob whose path names `hex`, of `size` bytes read through `read`.
  Status Blob(const std::string& hex, uint64_t size, const ReadFn& read, const std::function<Status()>& skip) {
    if (Interrupted()) return Status::Interrupted("import interrupted; no image ref was set");
    SILO_ASSIGN_OR_RETURN(auto digest, store::Digest::Parse("sha256:" + hex));
    files_["blobs/sha256/" + hex] = {digest, size};
    if (store_.Stat(digest).ok()) {
      stats_.blobs_present++;
      return skip();
    }
    store::PutOptions put;
    put.expected_digest = digest;
    put.expected_size = size;
    return Put(std::move(put), size, read, "blob " + digest.ToString()).status();
  }

  // A file that is neither a named blob nor metadata (a docker-archive's config or layer,
  // "<hex>.json", "<hex>/layer.tar"): stored under the digest of its bytes and remembered by
  // path for manifest.json. Unreferenced ones are left to gc.
  Status Other(const std::string& path, uint64_t size, const ReadFn& read) {
    if (Interrupted()) return Status::Interrupted("import interrupted; no image ref was set");
    SILO_ASSIGN_OR_RETURN(auto info, Put({}, size, read, "entry " + path));
    files_[path] = {info.digest, info.size};
    return Status::Ok();
  }

  void DockerManifest(std::string json) { docker_manifest_ = std::move(json); }
  // `path` is a link to `target` (both archive paths).
  void Alias(const std::string& path, const std::string& target) { aliases_[path] = target; }

  // Checks every image of index.json is whole, then sets the refs. Without index.json, a
  // docker-archive's manifest.json gives the images (FinishDocker).
  Status Finish() {
    if (!index_json_ && docker_manifest_) return FinishDocker();
    if (!index_json_) return Status::Corruption("no index.json or manifest.json (not an OCI or docker archive)");
    SILO_ASSIGN_OR_RETURN(auto index, index::ParseManifest(*index_json_, index::media::kOciIndex));
    if (!index.is_index()) return Status::Corruption("index.json is not an image index");
    auto names = Names(*index_json_);
    std::vector<std::pair<std::string, ImportedImage>> refs;
    for (size_t i = 0; i < index.manifests.size(); ++i) {
      const auto& e = index.manifests[i];
      std::string name = i < names.size() ? names[i] : "";
      SILO_ASSIGN_OR_RETURN(auto digest, store::Digest::Parse(e.digest));
      std::string label = name.empty() ? e.digest : name;
      if (!store_.Stat(digest).ok()) {
        return MissingError("image " + label + " is not whole:", {e.digest});
      }
      SILO_ASSIGN_OR_RETURN(auto graph, index::LoadImageGraph(store_, digest).WithContext("image " + label));
      if (!graph.missing_blobs.empty()) {
        std::vector<std::string> missing;
        for (const auto& b : graph.missing_blobs) missing.push_back(b.digest);
        return MissingError("image " + label + " is not whole:", missing);
      }
      ImportedImage img{"", name, e.digest};
      if (name.empty()) {
        Warn("image " + e.digest + " has no name in index.json; stored without a ref (gc may remove it)");
      } else {
        auto ref = index::ParseReference(name, opts_.default_registry);
        if (!ref.ok()) return ref.status().WithContext("index.json name '" + name + "'");
        if (!ref->digest.empty() && ref->digest != e.digest) {
          return Status::Corruption("index.json name '" + name + "' names another digest than " + e.digest);
        }
        img.ref = index::ImageRefName(*ref);
      }
      refs.emplace_back(img.ref, img);
    }
    return RecordImages(std::move(refs));
  }

 private:
  // Sets each image's ref (none for an untagged one) and lists it in the stats; called
  // once every blob and manifest of the archive is stored.
  Status RecordImages(std::vector<std::pair<std::string, ImportedImage>> refs) {
    for (auto& [ref, img] : refs) {
      if (!ref.empty()) {
        SILO_ASSIGN_OR_RETURN(auto d, store::Digest::Parse(img.digest));
        SILO_TRY(store_.SetRef(ref, d).WithContext("ref " + ref));
      }
      stats_.images.push_back(std::move(img));
    }
    return Status::Ok();
  }

  void Count(const store::ObjectInfo& info, uint64_t small) {
    if (info.existed) {
      stats_.blobs_present++;
    } else {
      stats_.blobs_stored++;
      stats_.bytes_stored += info.size;
    }
    if (small) {
      stats_.bytes_read += small;
      if (opts_.progress) opts_.progress->Add(small);
    }
  }

  void Warn(const std::string& m) {
    if (opts_.on_warning) opts_.on_warning(m);
  }

  Status MissingError(const std::string& what, const std::vector<std::string>& digests) {
    std::string msg = what + " " + std::to_string(digests.size()) + " blob(s) it needs are not in the store:";
    std::set<std::string> archives;
    for (size_t i = 0; i < digests.size(); ++i) {
      auto it = carriers_.find(digests[i]);
      if (it != carriers_.end()) archives.insert(it->second);
      if (i < kMaxListed) msg += "\n  " + digests[i] + (it != carriers_.end() ? " (in " + it->second + ")" : "");
    }
    if (digests.size() > kMaxListed) msg += "\n  … and " + std::to_string(digests.size() - kMaxListed) + " more";
    if (!archives.empty()) {
      msg += "\nimport first:";
      for (const auto& a : archives) msg += " " + a;
    }
    return Status::NotFound(msg);
  }

  // The ref.name annotation of each index.json entry, in order ("" when absent).
  static std::vector<std::string> Names(const std::string& json);

  // Stores `size` bytes read through `read` with `put` (small ones in one Put, manifests
  // among them with their links; large ones streamed).
  Result<store::ObjectInfo> Put(store::PutOptions put, uint64_t size, const ReadFn& read, const std::string& what) {
    put.expected_size = size;
    if (size <= index::kMaxManifestSize) {
      std::string bytes(size, '\0');
      uint64_t got = 0;
      while (got < size) {
        SILO_ASSIGN_OR_RETURN(size_t n, read(reinterpret_cast<uint8_t*>(bytes.data()) + got, size - got));
        if (n == 0) break;
        got += n;
      }
      if (got != size)
        return Status::Corruption(what + ": " + std::to_string(got) + " of " + std::to_string(size) + " bytes");
      if (!bytes.empty() && bytes[0] == '{') {
        auto m = index::ParseManifest(bytes);
        if (m.ok()) {
          for (const auto& ref : m->References()) {
            auto d = store::Digest::Parse(ref.digest);
            if (d.ok()) put.links.push_back(*d);
          }
        }
      }
      SILO_ASSIGN_OR_RETURN(auto info, store_.Put(AsBytes(bytes), put).WithContext(what));
      Count(info, size);
      return info;
    }
    SILO_ASSIGN_OR_RETURN(auto writer, store_.NewWriter(put).WithContext(what));
    for (;;) {
      if (Interrupted()) return Status::Interrupted("import interrupted; no image ref was set");
      SILO_ASSIGN_OR_RETURN(size_t n, read(buf_.data(), buf_.size()));
      if (n == 0) break;
      SILO_TRY(writer->Write({buf_.data(), n}).WithContext(what));
      if (opts_.progress) opts_.progress->Add(n);
      stats_.bytes_read += n;
    }
    SILO_ASSIGN_OR_RETURN(auto info, writer->Commit().WithContext(what));
    Count(info, 0);
    return info;
  }

  // Up to `max` bytes from the start of a stored object.
  Result<std::string> Head(const store::Digest& d, size_t max) {
    SILO_ASSIGN_OR_RETURN(auto reader, store_.NewReader(d));
    std::string out(max, '\0');
    size_t got = 0;
    while (got < max) {
      SILO_ASSIGN_OR_RETURN(size_t n, reader->Read({reinterpret_cast<uint8_t*>(out.data()) + got, max - got}));
      if (n == 0) break;
      got += n;
    }
    out.resize(got);
    return out;
  }

  // A docker-archive: each manifest.json entry becomes a Docker v2 schema 2 manifest over
  // the config and layer files it names (layers as they are: their digest is the file's
  // SHA-256), stored with its links; then the RepoTags refs.
  Status FinishDocker();

  struct StoredFile {
    store::Digest digest;
    uint64_t size = 0;
  };

  store::Store& store_;
  const ImageImportOptions& opts_;
  ImageImportStats& stats_;
  std::vector<uint8_t> buf_;
  std::optional<std::string> index_json_;
  std::optional<index::ExportRecord> record_;
  std::map<std::string, std::string> carriers_;
  std::optional<std::string> docker_manifest_;
  std::map<std::string, StoredFile> files_;     // archive path -> what it stored as
  std::map<std::string, std::string> aliases_;  // link path -> target path
};

Status Importer::FinishDocker() {
  SILO_ASSIGN_OR_RETURN(auto entries, index::ParseDockerSaveManifest(*docker_manifest_));
  auto file = [&](std::string path, const std::string& what) -> Result<StoredFile> {
    for (int hops = 0; hops < 8; ++hops) {
      auto link = aliases_.find(path);
      if (link == aliases_.end()) break;
      path = link->second;
    }
    auto it = files_.find(path);
    if (it == files_.end()) {
      return Status::Corruption("manifest.json names " + what + " " + path + ", which the archive does not hold");
    }
    return it->second;
  };
  std::vector<std::pair<std::string, ImportedImage>> refs;
  for (const auto& e : entries) {
    const std::string label = e.repo_tags.empty() ? e.config : e.repo_tags[0];
    SILO_ASSIGN_OR_RETURN(StoredFile config, file(e.config, "config"));
    if (config.size > index::kMaxManifestSize) {
      return Status::Corruption("image " + label + ": config " + e.config + " is larger than 4 MiB");
    }
    SILO_ASSIGN_OR_RETURN(auto config_json, Head(config.digest, config.size));
    SILO_ASSIGN_OR_RETURN(auto diff_ids,
                          index::ConfigDiffIds(config_json).WithContext("image " + label + ": " + e.config));
    if (diff_ids.size() != e.layers.size()) {
      return Status::Corruption("image " + label + ": manifest.json lists " + std::to_string(e.layers.size()) +
                                " layers, its config " + std::to_string(diff_ids.size()) + " diff_ids");
    }
    std::vector<index::BlobRef> layers;
    std::vector<store::Digest> links = {config.digest};
    for (size_t i = 0; i < e.layers.size(); ++i) {
      SILO_ASSIGN_OR_RETURN(StoredFile layer, file(e.layers[i], "layer"));
      SILO_ASSIGN_OR_RETURN(auto head, Head(layer.digest, 8));
      SILO_ASSIGN_OR_RETURN(auto type, index::DockerLayerMediaType(head, "image " + label + ": layer " + e.layers[i]));
      // An uncompressed layer is its own diff: the config must agree.
      if (type == index::kDockerLayerTar && layer.digest.ToString() != diff_ids[i]) {
        return Status::Corruption("image " + label + ": layer " + e.layers[i] + " is " + layer.digest.ToString() +
                                  ", its config's diff_id is " + diff_ids[i]);
      }
      layers.push_back({type, layer.digest.ToString(), layer.size});
      links.push_back(layer.digest);
    }
    std::string manifest = index::BuildDockerManifest(
        {std::string(index::kDockerConfigType), config.digest.ToString(), config.size}, layers);
    store::PutOptions put;
    put.links = std::move(links);
    SILO_ASSIGN_OR_RETURN(auto info, store_.Put(AsBytes(manifest), put).WithContext("image " + label + ": manifest"));
    Count(info, 0);
    const std::string digest = info.digest.ToString();
    if (e.repo_tags.empty()) {
      Warn("image " + digest + " (config " + e.config + ") has no RepoTags; stored without a ref (gc may remove it)");
      refs.emplace_back("", ImportedImage{"", "", digest});
      continue;
    }
    for (const auto& tag : e.repo_tags) {
      auto ref = index::ParseReference(tag, opts_.default_registry);
      if (!ref.ok()) return ref.status().WithContext("manifest.json RepoTags '" + tag + "'");
      refs.emplace_back(index::ImageRefName(*ref), ImportedImage{index::ImageRefName(*ref), tag, digest});
    }
  }
  return RecordImages(std::move(refs));
}

std::vector<std::string> Importer::Names(const std::string& json) {
  std::vector<std::string> out;
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element root;
  simdjson::dom::array arr;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS || root["manifests"].get(arr) != simdjson::SUCCESS) {
    return out;
  }
  for (auto m : arr) {
    std::string_view v;
    if (m["annotations"][kRefNameKey].get(v) == simdjson::SUCCESS) {
      out.emplace_back(v);
    } else {
      out.emplace_back();
    }
  }
  return out;
}

Result<std::string> ReadSmall(const std::function<Result<size_t>(uint8_t*, size_t)>& read, uint64_t size,
                              const std::string& what) {
  if (size > index::kMaxManifestSize) return Status::Corruption(what + ": larger than 4 MiB");
  std::string out(size, '\0');
  uint64_t got = 0;
  while (got < size) {
    SILO_ASSIGN_OR_RETURN(size_t n, read(reinterpret_cast<uint8_t*>(out.data()) + got, size - got));
    if (n == 0) break;
    got += n;
  }
  if (got != size) return Status::Corruption(what + ": truncated");
  return out;
}

// The archive path a symlink entry at `path` points to ("../<id>/layer.tar" from
// "<id2>/layer.tar" is "<id>/layer.tar").
std::string ResolveLink(const std::string& path, std::string_view target) {
  std::vector<std::string> parts;
  if (!target.starts_with("/")) {
    size_t slash = path.rfind('/');
    std::string_view dir = slash == std::string::npos ? std::string_view() : std::string_view(path).substr(0, slash);
    while (!dir.empty()) {
      size_t next = dir.find('/');
      parts.emplace_back(dir.substr(0, next));
      dir = next == std::string_view::npos ? std::string_view() : dir.substr(next + 1);
    }
  }
  while (!target.empty()) {
    size_t next = target.find('/');
    std::string_view part = target.substr(0, next);
    target = next == std::string_view::npos ? std::string_view() : target.substr(next + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.emplace_back(part);
  }
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}

// Entries of an image archive that are neither blobs nor read: the layout marker and the
// legacy files of docker save (repositories, <id>/json, <id>/VERSION).
bool IsDockerMetadata(const std::string& path) {
  return path == "oci-layout" || path == "repositories" || path.ends_with("/json") || path.ends_with("/VERSION");
}

// A name docker save or podman save writes: "<hex>.json", "<hex>.tar", "<hex>/…".
bool IsDockerSaveName(std::string_view path) {
  if (path.size() < 65 || !IsHex64(path.substr(0, 64))) return false;
  std::string_view rest = path.substr(64);
  return rest == ".json" || rest == ".tar" || rest.starts_with("/");
}

Status ImportArchive(store::Store& store, const std::vector<std::string>& parts, const ImageImportOptions& opts,
                     ImageImportStats& stats) {
  SILO_ASSIGN_OR_RETURN(auto stream, ArchiveStream::Open(parts));
  Importer imp(store, opts, stats);
  auto read = [&](uint8_t* b, size_t n) { return stream->Read(b, n); };
  auto skip = [&] { return stream->Skip(); };
  for (;;) {
    SILO_ASSIGN_OR_RETURN(auto next, stream->Next());
    if (!next) break;
    const auto& [path, ae] = *next;
    // docker save links a layer that several images share instead of repeating it.
    if (const char* target = archive_entry_hardlink(ae)) {
      imp.Alias(path, Normalize(target));
      continue;
    }
    if (archive_entry_filetype(ae) == AE_IFLNK) {
      const char* target = archive_entry_symlink(ae);
      if (target) imp.Alias(path, ResolveLink(path, target));
      continue;
    }
    if (archive_entry_filetype(ae) != AE_IFREG) continue;
    uint64_t size = archive_entry_size_is_set(ae) ? static_cast<uint64_t>(archive_entry_size(ae)) : 0;
    if (path == index::kExportRecordName) {
      SILO_ASSIGN_OR_RETURN(auto json, ReadSmall(read, size, path));
      SILO_TRY(imp.Record(json));
    } else if (path == "index.json") {
      SILO_ASSIGN_OR_RETURN(auto json, ReadSmall(read, size, path));
      imp.Index(std::move(json));
    } else if (path.starts_with("blobs/sha256/")) {
      std::string hex = path.substr(13);
      if (!IsHex64(hex)) return Status::Corruption("entry " + path + ": not a sha256 blob name");
      SILO_TRY(imp.Blob(hex, size, read, skip));
    } else if (path == "manifest.json") {
      SILO_ASSIGN_OR_RETURN(auto json, ReadSmall(read, size, path));
      imp.DockerManifest(std::move(json));
    } else if (!IsDockerMetadata(path)) {
      SILO_TRY(imp.Other(path, size, read));
    }
  }
  return imp.Finish();
}

// The whole of a small file; nullopt when it does not exist.
static Result<std::optional<std::string>> ReadFileIfPresent(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::optional<std::string>();
    return Status::FromErrno("open " + path, errno);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("stat " + path, errno);
  SILO_ASSIGN_OR_RETURN(auto s, ReadSmall(
                                    [&](uint8_t* b, size_t n) {
                                      return ReadFull(fd.get(), {b, n}, path);
                                    },
                                    static_cast<uint64_t>(st.st_size), path));
  return std::optional<std::string>(std::move(s));
}

Status ImportLayout(store::Store& store, const std::string& dir, const ImageImportOptions& opts,
                    ImageImportStats& stats) {
  Importer imp(store, opts, stats);
  SILO_ASSIGN_OR_RETURN(auto rec, ReadFileIfPresent(dir + "/" + std::string(index::kExportRecordName)));
  if (rec) SILO_TRY(imp.Record(*rec));
  SILO_ASSIGN_OR_RETURN(auto idx, ReadFileIfPresent(dir + "/index.json"));
  if (idx) imp.Index(std::move(*idx));
  std::string blobs = dir + "/blobs/sha256";
  std::vector<std::string> names;
  if (DIR* d = ::opendir(blobs.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (IsHex64(e->d_name)) names.emplace_back(e->d_name);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  for (const auto& hex : names) {
    std::string path = blobs + "/" + hex;
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return Status::FromErrno("open " + path, errno);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("stat " + path, errno);
    SILO_TRY(imp.Blob(
        hex, static_cast<uint64_t>(st.st_size),
        [&](uint8_t* b, size_t n) -> Result<size_t> {
          return ReadFull(fd.get(), {b, n}, path);
        },
        [] { return Status::Ok(); }));
  }
  return imp.Finish();
}

bool IsSyncFile(const std::string& name) {
  if (name.size() < 8 || name[6] != '-') return false;
  for (int i = 0; i < 6; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
  }
  std::string_view n = name;
  if (n.size() > 4 && n[n.size() - 4] == '.' && std::all_of(n.end() - 3, n.end(), ::isdigit)) {
    if (!n.ends_with(".000")) return false;  // the first part stands for the others
    n.remove_suffix(4);
  }
  return n.ends_with(".tar") || n.ends_with(".tar.gz") || n.ends_with(".tar.zst");
}

}  // namespace

Result<std::vector<std::vector<std::string>>> SyncDirArchives(const std::string& dir) {
  std::vector<std::string> files;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Status::FromErrno("open directory " + dir, errno);
  while (dirent* e = ::readdir(d)) {
    if (IsSyncFile(e->d_name)) files.push_back(dir + "/" + e->d_name);
  }
  ::closedir(d);
  std::sort(files.begin(), files.end());
  return ResolveArchiveInputs(files);
}

bool LooksLikeImageInput(const std::string& path) {
  if (IsDir(path)) {
    if (Exists(path + "/oci-layout") || Exists(path + "/index.json") || Exists(path + "/record-keeping.csv")) {
      return true;
    }
    auto sync = SyncDirArchives(path);
    return sync.ok() && !sync->empty();
  }
  auto groups = ResolveArchiveInputs({path});
  // Split parts are only written by export: let the import name a bad or missing part.
  if (!groups.ok() || (!groups->empty() && (*groups)[0].size() > 1)) return true;
  if (groups->empty()) return false;
  auto stream = ArchiveStream::Open((*groups)[0]);
  if (!stream.ok()) return false;
  for (int i = 0; i < 4; ++i) {
    auto next = (*stream)->Next();
    if (!next.ok() || !*next) return false;
    const std::string& p = (**next).first;
    if (p == "oci-layout" || p == "index.json" || p == "manifest.json" || p == index::kExportRecordName ||
        p == "repositories" || IsDockerSaveName(p)) {
      return true;
    }
  }
  return false;
}

Result<ImageImportStats> ImportImages(store::Store& store, const std::vector<std::string>& inputs,
                                      const ImageImportOptions& opts) {
  ImageImportStats stats;
  std::vector<std::string> files;
  auto flush = [&]() -> Status {
    SILO_ASSIGN_OR_RETURN(auto groups, ResolveArchiveInputs(files));
    files.clear();
    for (const auto& g : groups) {
      std::string name = g.size() > 1 ? g[0].substr(0, g[0].size() - 4) : g[0];
      SILO_TRY(ImportArchive(store, g, opts, stats).WithContext("import " + name));
      stats.archives++;
    }
    return Status::Ok();
  };
  for (const auto& in : inputs) {
    if (!IsDir(in)) {
      files.push_back(in);
      continue;
    }
    SILO_TRY(flush());
    if (Exists(in + "/oci-layout") || Exists(in + "/index.json")) {
      SILO_TRY(ImportLayout(store, in, opts, stats).WithContext("import " + in));
      stats.archives++;
      continue;
    }
    SILO_ASSIGN_OR_RETURN(auto groups, SyncDirArchives(in));
    if (groups.empty()) return Status::NotFound("import " + in + ": no OCI layout and no NNNNNN-*.tar* files");
    for (const auto& g : groups) {
      std::string name = g.size() > 1 ? g[0].substr(0, g[0].size() - 4) : g[0];
      SILO_TRY(ImportArchive(store, g, opts, stats).WithContext("import " + name));
      stats.archives++;
    }
  }
  SILO_TRY(flush());
  return stats;
}

Result<std::pair<index::ExportRecord, index::ArchiveId>> ReadArchiveRecord(const std::vector<std::string>& parts) {
  SILO_ASSIGN_OR_RETURN(auto stream, ArchiveStream::Open(parts));
  std::string name = stream->name();
  auto read = [&](uint8_t* b, size_t n) { return stream->Read(b, n); };
  std::optional<index::ExportRecord> record;
  index::ExportRecord scanned;  // for archives without a record: every blob held
  for (;;) {
    SILO_ASSIGN_OR_RETURN(auto next, stream->Next().WithContext(name));
    if (!next) break;
    const auto& [path, ae] = *next;
    if (path == index::kExportRecordName) {
      SILO_ASSIGN_OR_RETURN(auto json, ReadSmall(read, static_cast<uint64_t>(archive_entry_size(ae)), name));
      SILO_ASSIGN_OR_RETURN(auto r, index::ParseExportRecord(json).WithContext(name));
      record = std::move(r);
      break;
    }
    if (path.starts_with("blobs/sha256/") && IsHex64(path.substr(13))) {
      scanned.blobs.push_back({"sha256:" + path.substr(13), static_cast<uint64_t>(archive_entry_size(ae)), ""});
    }
  }
  // The archive's identity: the SHA-256 of its bytes, parts joined.
  SILO_ASSIGN_OR_RETURN(auto reader, PartReader::Open(parts));
  Sha256 h;
  std::vector<uint8_t> buf(kBuffer);
  for (;;) {
    SILO_ASSIGN_OR_RETURN(size_t n, reader->Read(buf.data(), buf.size()));
    if (n == 0) break;
    h.Update({buf.data(), n});
  }
  size_t slash = name.rfind('/');
  index::ArchiveId id{slash == std::string::npos ? name : name.substr(slash + 1), ToHex(h.Final())};
  return std::make_pair(record ? std::move(*record) : std::move(scanned), id);
}

Result<std::pair<index::ExportRecord, index::ArchiveId>> ReadLayoutRecord(const std::string& dir) {
  std::string name = dir;
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  if (size_t slash = name.rfind('/'); slash != std::string::npos) name = name.substr(slash + 1);
  SILO_ASSIGN_OR_RETURN(auto json, ReadFileIfPresent(dir + "/" + std::string(index::kExportRecordName)));
  if (json) {
    SILO_ASSIGN_OR_RETURN(auto record, index::ParseExportRecord(*json).WithContext(dir));
    return std::make_pair(std::move(record), index::ArchiveId{name, ToHex(Sha256::Of(AsBytes(*json)))});
  }
  if (!Exists(dir + "/index.json")) return Status::NotFound(dir + ": not an OCI layout (no index.json)");
  index::ExportRecord scanned;
  const std::string blobs = dir + "/blobs/sha256";
  DIR* d = ::opendir(blobs.c_str());
  if (!d) return Status::FromErrno("open directory " + blobs, errno);
  while (dirent* e = ::readdir(d)) {
    struct stat st;
    if (IsHex64(e->d_name) && ::stat((blobs + "/" + e->d_name).c_str(), &st) == 0) {
      scanned.blobs.push_back({"sha256:" + std::string(e->d_name), static_cast<uint64_t>(st.st_size), ""});
    }
  }
  ::closedir(d);
  std::sort(scanned.blobs.begin(), scanned.blobs.end(),
            [](const auto& a, const auto& b) { return a.digest < b.digest; });
  // Without a record the identity is the blob list's (what the layout carries).
  std::string list;
  for (const auto& b : scanned.blobs) list += b.digest + "\n";
  return std::make_pair(std::move(scanned), index::ArchiveId{name, ToHex(Sha256::Of(AsBytes(list)))});
}

}  // namespace silo::transfer
