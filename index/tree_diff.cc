#include "index/tree_diff.h"

namespace silo::index {
namespace {

std::string Join(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

bool SameContent(const TreeEntry& x, const TreeEntry& y) {
  if (x.type != y.type) return false;
  switch (x.type) {
    case EntryType::kFile:
      return x.digest == y.digest && x.size == y.size;
    case EntryType::kSymlink:
      return x.target == y.target;
    case EntryType::kCharDevice:
    case EntryType::kBlockDevice:
      return x.rdev == y.rdev;
    default:
      return true;
  }
}

bool SameMetadata(const TreeEntry& x, const TreeEntry& y) {
  return x.mode == y.mode && x.uid == y.uid && x.gid == y.gid && x.mtime_ns == y.mtime_ns && x.xattrs == y.xattrs &&
         (x.hardlink_group != 0) == (y.hardlink_group != 0);
}

Status ReportAll(store::Store& store, const TreeEntry& e, const std::string& path, ChangeKind kind,
                 const std::function<void(const TreeChange&)>& fn) {
  fn({kind, path, e.type});
  if (e.type != EntryType::kDir) return Status::Ok();
  SILO_ASSIGN_OR_RETURN(Tree t, LoadTree(store, e.digest));
  for (const auto& c : t.entries) SILO_TRY(ReportAll(store, c, Join(path, c.name), kind, fn));
  return Status::Ok();
}

Status DiffDir(store::Store& store, const store::Digest& a, const store::Digest& b, const std::string& path,
               const std::function<void(const TreeChange&)>& fn) {
  if (a == b) return Status::Ok();
  SILO_ASSIGN_OR_RETURN(Tree ta, LoadTree(store, a));
  SILO_ASSIGN_OR_RETURN(Tree tb, LoadTree(store, b));
  size_t i = 0, j = 0;
  while (i < ta.entries.size() || j < tb.entries.size()) {
    if (j == tb.entries.size() || (i < ta.entries.size() && ta.entries[i].name < tb.entries[j].name)) {
      const auto& e = ta.entries[i++];
      SILO_TRY(ReportAll(store, e, Join(path, e.name), ChangeKind::kRemoved, fn));
    } else if (i == ta.entries.size() || tb.entries[j].name < ta.entries[i].name) {
      const auto& e = tb.entries[j++];
      SILO_TRY(ReportAll(store, e, Join(path, e.name), ChangeKind::kAdded, fn));
    } else {
      const auto& x = ta.entries[i++];
      const auto& y = tb.entries[j++];
      std::string p = Join(path, x.name);
      if (x.type == EntryType::kDir && y.type == EntryType::kDir) {
        if (!SameMetadata(x, y)) fn({ChangeKind::kMetadata, p, y.type});
        SILO_TRY(DiffDir(store, x.digest, y.digest, p, fn));
      } else if (x.type != y.type) {
        SILO_TRY(ReportAll(store, x, p, ChangeKind::kRemoved, fn));
        SILO_TRY(ReportAll(store, y, p, ChangeKind::kAdded, fn));
      } else if (!SameContent(x, y)) {
        fn({ChangeKind::kChanged, p, y.type});
      } else if (!SameMetadata(x, y)) {
        fn({ChangeKind::kMetadata, p, y.type});
      }
    }
  }
  return Status::Ok();
}

}  // namespace

char ChangeChar(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::kAdded:
      return '+';
    case ChangeKind::kRemoved:
      return '-';
    case ChangeKind::kChanged:
      return 'M';
    case ChangeKind::kMetadata:
      return 'm';
  }
  return '?';
}

Status DiffTrees(store::Store& store, const store::Digest& a, const store::Digest& b,
                 const std::function<void(const TreeChange&)>& fn) {
  return DiffDir(store, a, b, "", fn);
}

}  // namespace silo::index
