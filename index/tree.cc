#include "index/tree.h"

#include <algorithm>

#include "index/codec.h"

namespace silo::index {
namespace {

constexpr std::string_view kMagic = "silo-tree-1\n";
constexpr uint64_t kMaxXattrValue = 64 << 10;

}  // namespace

char TypeChar(EntryType type) {
  switch (type) {
    case EntryType::kFile:
      return 'f';
    case EntryType::kDir:
      return 'd';
    case EntryType::kSymlink:
      return 'l';
    case EntryType::kFifo:
      return 'p';
    case EntryType::kCharDevice:
      return 'c';
    case EntryType::kBlockDevice:
      return 'b';
    case EntryType::kSocket:
      return 's';
  }
  return '?';
}

const TreeEntry* Tree::Find(std::string_view name) const {
  auto it = std::lower_bound(entries.begin(), entries.end(), name,
                             [](const TreeEntry& e, std::string_view n) { return e.name < n; });
  return it != entries.end() && it->name == name ? &*it : nullptr;
}

Status ValidateEntryName(std::string_view name) {
  if (name.empty()) return Status::Corruption("empty entry name");
  if (name == "." || name == "..") return Status::Corruption("entry name \"" + std::string(name) + "\" is refused");
  if (name.find('/') != std::string_view::npos) {
    return Status::Corruption("entry name \"" + std::string(name) + "\" contains '/' (would escape its directory)");
  }
  if (name.find('\0') != std::string_view::npos) return Status::Corruption("entry name contains NUL");
  return Status::Ok();
}

std::string EncodeTree(Tree tree) {
  std::sort(tree.entries.begin(), tree.entries.end(),
            [](const TreeEntry& a, const TreeEntry& b) { return a.name < b.name; });
  std::string out(kMagic);
  codec::PutVarint(&out, tree.entries.size());
  for (auto& e : tree.entries) {
    std::sort(e.xattrs.begin(), e.xattrs.end());
    codec::PutBytes(&out, e.name);
    out.push_back(static_cast<char>(e.type));
    codec::PutVarint(&out, e.mode);
    codec::PutVarint(&out, e.uid);
    codec::PutVarint(&out, e.gid);
    codec::PutSigned(&out, e.mtime_ns);
    switch (e.type) {
      case EntryType::kFile:
        codec::PutVarint(&out, e.size);
        out.append(e.digest.raw());
        break;
      case EntryType::kDir:
        out.append(e.digest.raw());
        break;
      case EntryType::kSymlink:
        codec::PutBytes(&out, e.target);
        break;
      case EntryType::kCharDevice:
      case EntryType::kBlockDevice:
        codec::PutVarint(&out, e.rdev);
        break;
      case EntryType::kFifo:
      case EntryType::kSocket:
        break;
    }
    codec::PutVarint(&out, e.xattrs.size());
    for (const auto& [k, v] : e.xattrs) {
      codec::PutBytes(&out, k);
      codec::PutBytes(&out, v);
    }
    codec::PutVarint(&out, e.hardlink_group);
  }
  return out;
}

Result<Tree> DecodeTree(std::string_view data) {
  if (data.substr(0, kMagic.size()) != kMagic) return Status::Corruption("not a silo tree");
  codec::Reader r(data.substr(kMagic.size()));
  Tree tree;
  uint64_t n = 0;
  if (!r.Varint(&n) || n > data.size()) return Status::Corruption("tree: bad entry count");
  tree.entries.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    TreeEntry e;
    uint8_t type = 0;
    uint64_t mode = 0, uid = 0, gid = 0;
    if (!r.Bytes(&e.name, 4096) || !r.Byte(&type) || !r.Varint(&mode) || !r.Varint(&uid) || !r.Varint(&gid) ||
        !r.Signed(&e.mtime_ns)) {
      return Status::Corruption("tree: truncated entry " + std::to_string(i));
    }
    SILO_TRY(ValidateEntryName(e.name).WithContext("tree"));
    if (!tree.entries.empty() && !(tree.entries.back().name < e.name)) {
      return Status::Corruption("tree: entry \"" + e.name + "\" out of order or duplicated");
    }
    if (mode > 07777 || uid > UINT32_MAX || gid > UINT32_MAX)
      return Status::Corruption("tree: bad mode or owner of " + e.name);
    e.mode = static_cast<uint32_t>(mode);
    e.uid = static_cast<uint32_t>(uid);
    e.gid = static_cast<uint32_t>(gid);
    e.type = static_cast<EntryType>(type);
    std::string_view raw;
    bool ok = true;
    switch (e.type) {
      case EntryType::kFile:
        ok = r.Varint(&e.size) && r.Raw(32, &raw) && store::Digest::FromRaw(raw, &e.digest);
        break;
      case EntryType::kDir:
        ok = r.Raw(32, &raw) && store::Digest::FromRaw(raw, &e.digest);
        break;
      case EntryType::kSymlink:
        ok = r.Bytes(&e.target, 65536) && !e.target.empty();
        break;
      case EntryType::kCharDevice:
      case EntryType::kBlockDevice:
        ok = r.Varint(&e.rdev);
        break;
      case EntryType::kFifo:
      case EntryType::kSocket:
        break;
      default:
        return Status::Corruption("tree: entry \"" + e.name + "\" has unknown type " + std::to_string(type));
    }
    uint64_t nx = 0;
    ok = ok && r.Varint(&nx) && nx <= 4096;
    for (uint64_t k = 0; ok && k < nx; ++k) {
      std::string key, value;
      ok = r.Bytes(&key, 255) && r.Bytes(&value, kMaxXattrValue);
      e.xattrs.emplace_back(std::move(key), std::move(value));
    }
    ok = ok && r.Varint(&e.hardlink_group);
    if (!ok) return Status::Corruption("tree: truncated entry \"" + e.name + "\"");
    tree.entries.push_back(std::move(e));
  }
  if (!r.done()) return Status::Corruption("tree: trailing bytes");
  return tree;
}

std::vector<store::Digest> TreeLinks(const Tree& tree) {
  std::vector<store::Digest> out;
  for (const auto& e : tree.entries) {
    if (e.has_digest()) out.push_back(e.digest);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Result<Tree> LoadTree(store::Store& store, const store::Digest& digest) {
  SILO_ASSIGN_OR_RETURN(std::string data, store.ReadAll(digest, 256 << 20));
  return DecodeTree(data).WithContext("tree " + digest.Short());
}

Result<store::Digest> StoreTree(store::Store& store, Tree tree, std::shared_ptr<store::CommitGroup> group) {
  store::PutOptions opts;
  opts.links = TreeLinks(tree);
  opts.commit_group = std::move(group);
  std::string data = EncodeTree(std::move(tree));
  SILO_ASSIGN_OR_RETURN(auto info, store.Put(AsBytes(data), opts));
  return info.digest;
}

Result<TreeEntry> WalkPath(store::Store& store, const store::Digest& root, std::string_view path) {
  TreeEntry cur;
  cur.type = EntryType::kDir;
  cur.digest = root;
  cur.mode = 0755;
  std::string walked;
  while (!path.empty()) {
    size_t slash = path.find('/');
    std::string_view comp = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    if (comp.empty()) continue;  // "a//b", a trailing '/'
    SILO_TRY(ValidateEntryName(comp).WithContext("path"));
    if (cur.type != EntryType::kDir) return Status::NotFound(walked + ": not a directory");
    SILO_ASSIGN_OR_RETURN(Tree t, LoadTree(store, cur.digest));
    const TreeEntry* e = t.Find(comp);
    walked += walked.empty() ? std::string(comp) : "/" + std::string(comp);
    if (!e) return Status::NotFound(walked + ": no such file or directory in the snapshot");
    cur = *e;
  }
  return cur;
}

}  // namespace silo::index
