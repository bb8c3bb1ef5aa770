#include "transfer/release.h"

#include <archive.h>
#include <archive_entry.h>
#include <simdjson.h>

#include <algorithm>
#include <memory>
#include <set>

#include "index/manifest.h"

namespace silo::transfer {
namespace {

constexpr std::string_view kReferencesPath = "release-manifests/image-references";
constexpr size_t kMaxReferencesSize = 16 << 20;

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};

// libarchive reads a layer straight from the store.
struct LayerSource {
  store::ObjectReader* reader = nullptr;
  std::vector<uint8_t> buf = std::vector<uint8_t>(1 << 20);
  Status error;
};

la_ssize_t ReadLayer(archive* a, void* user, const void** out) {
  auto* src = static_cast<LayerSource*>(user);
  auto n = src->reader->Read(src->buf);
  if (!n.ok()) {
    src->error = n.status();
    archive_set_error(a, EIO, "%s", n.status().message().c_str());
    return -1;
  }
  *out = src->buf.data();
  return static_cast<la_ssize_t>(*n);
}

// The image-references file of one layer, if it has one.
Result<std::optional<std::string>> FindReferences(store::Store& store, const store::Digest& layer) {
  SILO_ASSIGN_OR_RETURN(auto reader, store.NewReader(layer));
  LayerSource src;
  src.reader = reader.get();
  std::unique_ptr<archive, ArchiveDeleter> a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open(a.get(), &src, nullptr, &ReadLayer, nullptr) != ARCHIVE_OK) {
    return Status::InvalidArgument("layer " + layer.Short() + ": not a tar archive (" + archive_error_string(a.get()) +
                                   ")");
  }
  archive_entry* entry = nullptr;
  for (;;) {
    int rc = archive_read_next_header(a.get(), &entry);
    if (rc == ARCHIVE_EOF) return std::optional<std::string>();
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      if (!src.error.ok()) return src.error;
      return Status::InvalidArgument("layer " + layer.Short() + ": " + archive_error_string(a.get()));
    }
    std::string_view path = archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "";
    while (path.starts_with("./")) path.remove_prefix(2);
    if (path != kReferencesPath) continue;
    if (archive_entry_size(entry) > static_cast<la_int64_t>(kMaxReferencesSize)) {
      return Status::InvalidArgument("layer " + layer.Short() + ": image-references is larger than 16 MiB");
    }
    std::string content(static_cast<size_t>(archive_entry_size(entry)), '\0');
    la_ssize_t got = archive_read_data(a.get(), content.data(), content.size());
    if (got < 0 || static_cast<size_t>(got) != content.size()) {
      return Status::InvalidArgument("layer " + layer.Short() + ": image-references is truncated");
    }
    return std::optional<std::string>(std::move(content));
  }
}

}  // namespace

Result<std::vector<std::string>> ParseImageReferences(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element root;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS) {
    return Status::InvalidArgument("image-references: not valid JSON");
  }
  std::string_view kind;
  if (root["kind"].get(kind) != simdjson::SUCCESS || kind != "ImageStream") {
    return Status::InvalidArgument("image-references: not an ImageStream");
  }
  simdjson::dom::array tags;
  if (root["spec"]["tags"].get(tags) != simdjson::SUCCESS) {
    return Status::InvalidArgument("image-references: no spec.tags");
  }
  std::vector<std::string> refs;
  for (auto tag : tags) {
    std::string_view from_kind, name;
    if (tag["from"]["kind"].get(from_kind) != simdjson::SUCCESS || from_kind != "DockerImage") continue;
    if (tag["from"]["name"].get(name) != simdjson::SUCCESS || name.empty()) continue;
    refs.emplace_back(name);
  }
  return refs;
}

Result<std::vector<std::string>> ReleaseComponents(store::Store& store, const store::Digest& top) {
  std::vector<store::Digest> manifests;
  SILO_ASSIGN_OR_RETURN(std::string top_bytes, store.ReadAll(top, index::kMaxManifestSize));
  SILO_ASSIGN_OR_RETURN(index::Manifest m, index::ParseManifest(top_bytes));
  if (m.is_index()) {
    for (const auto& child : m.manifests) {
      SILO_ASSIGN_OR_RETURN(store::Digest d, store::Digest::Parse(child.digest));
      if (store.Stat(d).ok()) manifests.push_back(d);  // the platforms that were pulled
    }
  } else {
    manifests.push_back(top);
  }
  std::vector<std::string> out;
  std::set<std::string> seen;
  bool found = false;
  for (const auto& md : manifests) {
    SILO_ASSIGN_OR_RETURN(std::string bytes, store.ReadAll(md, index::kMaxManifestSize));
    SILO_ASSIGN_OR_RETURN(index::Manifest im, index::ParseManifest(bytes));
    // The top layer wins, as in the image's filesystem.
    for (auto it = im.layers.rbegin(); it != im.layers.rend(); ++it) {
      SILO_ASSIGN_OR_RETURN(store::Digest ld, store::Digest::Parse(it->digest));
      SILO_ASSIGN_OR_RETURN(auto content, FindReferences(store, ld));
      if (!content) continue;
      SILO_ASSIGN_OR_RETURN(auto refs, ParseImageReferences(*content));
      for (auto& r : refs) {
        if (seen.insert(r).second) out.push_back(std::move(r));
      }
      found = true;
      break;
    }
  }
  if (!found) {
    return Status::NotFound("release image " + top.Short() + ": no layer holds " + std::string(kReferencesPath));
  }
  return out;
}

}  // namespace silo::transfer
