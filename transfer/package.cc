#include "transfer/package.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "util/fd.h"
#include "util/hash.h"
#include "util/interrupt.h"

namespace silo::transfer {
namespace {

using index::EntryType;
using index::TreeEntry;

constexpr size_t kBuffer = 1 << 20;
constexpr size_t kMaxName = 4096;  // what a tree accepts

// RAII owners of libarchive's handles.
struct WriteFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct ReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using ArchiveWriter = std::unique_ptr<archive, WriteFree>;
using ArchiveReader = std::unique_ptr<archive, ReadFree>;
using ArchiveEntry = std::unique_ptr<archive_entry, EntryFree>;

std::string ArchiveError(archive* a) {
  const char* m = archive_error_string(a);
  return m ? m : "unknown libarchive error";
}

Status Check(archive* a, int rc, const std::string& what) {
  if (rc >= ARCHIVE_WARN) return Status::Ok();
  return Status::IO(what + ": " + ArchiveError(a));
}

std::string JoinRel(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

mode_t ArchiveType(EntryType t) {
  switch (t) {
    case EntryType::kFile:
      return AE_IFREG;
    case EntryType::kDir:
      return AE_IFDIR;
    case EntryType::kSymlink:
      return AE_IFLNK;
    case EntryType::kFifo:
      return AE_IFIFO;
    case EntryType::kCharDevice:
      return AE_IFCHR;
    case EntryType::kBlockDevice:
      return AE_IFBLK;
    case EntryType::kSocket:
      return AE_IFSOCK;
  }
  return AE_IFREG;
}

// ---------------------------------------------------------------- writing

class PackageWriter {
 public:
  PackageWriter(store::Store& store, const PackageOptions& opts) : store_(store), opts_(opts), buf_(kBuffer) {}

  Status Open(int fd) {
    a_.reset(archive_write_new());
    if (!a_) return Status::IO("archive_write_new failed");
    archive* a = a_.get();
    const bool zip = opts_.format == PackageFormat::kZip;
    if (zip) {
      SILO_TRY(Check(a, archive_write_set_format_zip(a), "zip format"));
      SILO_TRY(Check(a, archive_write_set_options(a, "zip:compression=deflate"), "zip options"));
    } else {
      // pax: nanosecond mtimes, xattrs, long names. silo runs in the C locale, so a name
      // that is not ASCII is written as raw bytes under hdrcharset=BINARY (only then).
      SILO_TRY(Check(a, archive_write_set_format_pax(a), "pax format"));
      // xattrs once, as SCHILY.xattr (what GNU tar and star read), not twice.
      SILO_TRY(Check(a, archive_write_set_options(a, "pax:xattrheader=SCHILY"), "pax options"));
    }
    switch (opts_.format) {
      case PackageFormat::kTarGz:
        SILO_TRY(Check(a, archive_write_add_filter_gzip(a), "gzip filter"));
        SILO_TRY(Check(a, archive_write_set_options(a, "gzip:!timestamp"), "gzip options"));
        break;
      case PackageFormat::kTarZst: {
        SILO_TRY(Check(a, archive_write_add_filter_zstd(a), "zstd filter"));
        int threads = opts_.zstd_threads > 0 ? opts_.zstd_threads
                                             : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
        // Older libarchive has no zstd threads option: single-threaded then (same bytes).
        archive_write_set_filter_option(a, "zstd", "threads", std::to_string(threads).c_str());
        break;
      }
      default:
        SILO_TRY(Check(a, archive_write_add_filter_none(a), "filter"));
        break;
    }
    // Compressed output needs no padding to tar's 10 KiB records.
    if (opts_.format != PackageFormat::kTar) archive_write_set_bytes_in_last_block(a, 1);
    return Check(a, archive_write_open_fd(a, fd), "open");
  }

  Status WriteRoot(const TreeEntry& root) {
    if (root.type == EntryType::kDir) return WriteDir(root.digest, "");
    return WriteEntry(root, root.name);
  }

  Status Close() { return Check(a_.get(), archive_write_close(a_.get()), "close"); }

  PackageStats& stats() { return stats_; }

 private:
  Status WriteDir(const store::Digest& digest, const std::string& rel) {
    if (Interrupted()) return Status::Interrupted("archive interrupted");
    SILO_ASSIGN_OR_RETURN(index::Tree tree, index::LoadTree(store_, digest).WithContext(rel.empty() ? "." : rel));
    for (const auto& e : tree.entries) SILO_TRY(WriteEntry(e, JoinRel(rel, e.name)));
    return Status::Ok();
  }

  void Warn(const std::string& m) {
    if (opts_.on_warning) opts_.on_warning(m);
  }

  Status WriteEntry(const TreeEntry& e, const std::string& path) {
    const bool zip = opts_.format == PackageFormat::kZip;
    if (zip && e.type != EntryType::kFile && e.type != EntryType::kDir && e.type != EntryType::kSymlink) {
      Warn(path + ": zip cannot hold fifos or devices; left out");
      stats_.skipped++;
      return Status::Ok();
    }
    ArchiveEntry entry(archive_entry_new());
    if (!entry) return Status::IO("archive_entry_new failed");
    archive_entry* ae = entry.get();
    archive_entry_copy_pathname(ae, e.type == EntryType::kDir ? (path + "/").c_str() : path.c_str());
    archive_entry_set_filetype(ae, ArchiveType(e.type));
    archive_entry_set_perm(ae, e.mode);
    archive_entry_set_uid(ae, e.uid);
    archive_entry_set_gid(ae, e.gid);
    int64_t sec = e.mtime_ns / 1000000000, nsec = e.mtime_ns % 1000000000;
    if (nsec < 0) {
      nsec += 1000000000;
      sec -= 1;
    }
    archive_entry_set_mtime(ae, static_cast<time_t>(sec), static_cast<long>(nsec));
    if (!zip) {
      for (const auto& [k, v] : e.xattrs) archive_entry_xattr_add_entry(ae, k.c_str(), v.data(), v.size());
    }
    bool content = false;
    switch (e.type) {
      case EntryType::kDir:
        stats_.dirs++;
        break;
      case EntryType::kSymlink:
        archive_entry_copy_symlink(ae, e.target.c_str());
        stats_.symlinks++;
        break;
      case EntryType::kFile: {
        if (!zip && e.hardlink_group != 0) {
          auto [it, fresh] = link_firsts_.try_emplace(e.hardlink_group, path);
          if (!fresh) {
            archive_entry_copy_hardlink(ae, it->second.c_str());
            archive_entry_set_size(ae, 0);
            stats_.hardlinks++;
            stats_.files++;
            break;
          }
        }
        archive_entry_set_size(ae, static_cast<la_int64_t>(e.size));
        content = true;
        stats_.files++;
        break;
      }
      case EntryType::kCharDevice:
      case EntryType::kBlockDevice:
        archive_entry_set_rdev(ae, static_cast<dev_t>(e.rdev));
        stats_.specials++;
        break;
      case EntryType::kFifo:
      case EntryType::kSocket:
        stats_.specials++;
        break;
    }
    SILO_TRY(Check(a_.get(), archive_write_header(a_.get(), ae), "write " + path));
    if (content) SILO_TRY(WriteContent(e, path));
    SILO_TRY(Check(a_.get(), archive_write_finish_entry(a_.get()), "write " + path));
    if (e.type == EntryType::kDir) return WriteDir(e.digest, path);
    return Status::Ok();
  }

  Status WriteContent(const TreeEntry& e, const std::string& path) {
    SILO_ASSIGN_OR_RETURN(auto reader, store_.NewReader(e.digest).WithContext(path));
    uint64_t total = 0;
    for (;;) {
      if (Interrupted()) return Status::Interrupted("archive interrupted");
      SILO_ASSIGN_OR_RETURN(size_t n, reader->Read({buf_.data(), buf_.size()}).WithContext(path));
      if (n == 0) break;
      size_t off = 0;
      while (off < n) {
        la_ssize_t w = archive_write_data(a_.get(), buf_.data() + off, n - off);
        if (w < 0) return Status::IO("write " + path + ": " + ArchiveError(a_.get()));
        if (w == 0) return Status::IO("write " + path + ": libarchive accepted no data");
        off += static_cast<size_t>(w);
      }
      total += n;
      if (opts_.progress) opts_.progress->Add(n);
    }
    if (total != e.size) {
      return Status::Integrity(path + ": content " + e.digest.Short() + " has " + std::to_string(total) +
                               " bytes, the tree says " + std::to_string(e.size));
    }
    stats_.content_bytes += total;
    return Status::Ok();
  }

  store::Store& store_;
  const PackageOptions& opts_;
  ArchiveWriter a_;
  std::vector<uint8_t> buf_;
  std::map<uint64_t, std::string> link_firsts_;  // hardlink group -> first path written
  PackageStats stats_;
};

std::string TempNameFor(const std::string& out_path) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  size_t slash = out_path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : out_path.substr(0, slash + 1);
  char buf[40];
  std::snprintf(buf, sizeof buf, ".silo-tmp-%016llx", static_cast<unsigned long long>(rng()));
  return dir + buf;
}

// ---------------------------------------------------------------- reading

struct Node {
  TreeEntry entry;
  bool explicit_entry = false;                            // named by an archive entry (not only implied by a path)
  uint64_t inode = 0;                                     // files: names sharing content through a hardlink share it
  std::map<std::string, std::unique_ptr<Node>> children;  // directories
};

// Splits an archive path into validated components; "" components and "." are dropped.
Status SplitPath(std::string_view path, std::vector<std::string>* out) {
  if (path.empty()) return Status::Corruption("entry with an empty path");
  if (path[0] == '/') return Status::Corruption("absolute path \"" + std::string(path) + "\" refused");
  out->clear();
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    std::string_view comp = path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    pos = slash == std::string_view::npos ? path.size() + 1 : slash + 1;
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") return Status::Corruption("path \"" + std::string(path) + "\" has a \"..\" component; refused");
    if (comp.size() > kMaxName) return Status::Corruption("path \"" + std::string(path) + "\": a name is too long");
    SILO_TRY(index::ValidateEntryName(comp).WithContext("path \"" + std::string(path) + "\""));
    out->emplace_back(comp);
  }
  return Status::Ok();
}

class PackageReader {
 public:
  PackageReader(store::Store& store, const ImportRequest& req) : store_(store), req_(req), buf_(kBuffer) {
    root_.entry.type = EntryType::kDir;
    root_.entry.mode = 0755;
  }

  Status Read() {
    a_.reset(archive_read_new());
    if (!a_) return Status::IO("archive_read_new failed");
    archive* a = a_.get();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    archive_read_support_format_zip(a);
    SILO_TRY(Check(a, archive_read_open_filename(a, req_.path.c_str(), 1 << 16), "open"));
    for (;;) {
      if (Interrupted()) return Status::Interrupted("import interrupted; nothing was committed");
      archive_entry* ae = nullptr;
      int rc = archive_read_next_header(a, &ae);
      if (rc == ARCHIVE_EOF) break;
      if (rc < ARCHIVE_WARN)
        return Status::Corruption("read entry " + std::to_string(count_ + 1) + ": " + ArchiveError(a));
      ++count_;
      SILO_TRY(AddEntry(ae));
    }
    return Status::Ok();
  }

  // Stores the trees bottom-up and numbers hardlink groups in depth-first name order (as a
  // scan does, so a package of a snapshot imports to the same trees).
  Result<store::Digest> Finish() {
    std::map<uint64_t, uint64_t> members;
    CountInodes(root_, members);
    std::map<uint64_t, uint64_t> groups;
    uint64_t next = 0;
    NumberGroups(root_, members, groups, next);
    return StoreDir(root_);
  }

  ImportStats& stats() { return stats_; }
  // What the stored trees hold (after replaced entries were dropped).
  uint64_t tree_files() const { return tree_files_; }
  uint64_t tree_dirs() const { return tree_dirs_; }
  uint64_t tree_bytes() const { return tree_bytes_; }

 private:
  void Warn(const std::string& m) {
    if (req_.on_warning) req_.on_warning(m);
  }

  // The node for `comps` (created, as a directory, where missing); refuses a path through
  // anything but a directory.
  Result<Node*> Lookup(const std::vector<std::string>& comps, size_t n, const std::string& path) {
    Node* cur = &root_;
    for (size_t i = 0; i < n; ++i) {
      auto& child = cur->children[comps[i]];
      if (!child) {
        child = std::make_unique<Node>();
        child->entry.name = comps[i];
        child->entry.type = EntryType::kDir;
        child->entry.mode = 0755;
      } else if (child->entry.type != EntryType::kDir) {
        return Status::Corruption("path \"" + path + "\" goes through " +
                                  (child->entry.type == EntryType::kSymlink ? "a symlink" : "a non-directory") +
                                  "; refused");
      }
      cur = child.get();
    }
    return cur;
  }

  Status AddEntry(archive_entry* ae) {
    const char* p = archive_entry_pathname(ae);
    if (!p) p = archive_entry_pathname_utf8(ae);
    if (!p) return Status::Corruption("entry " + std::to_string(count_) + " has no path");
    const std::string path = p;
    std::vector<std::string> comps;
    SILO_TRY(SplitPath(path, &comps));
    TreeEntry e;
    mode_t type = archive_entry_filetype(ae);
    const char* hardlink = archive_entry_hardlink(ae);
    if (hardlink) {
      type = AE_IFREG;
    }
    switch (type) {
      case AE_IFREG:
        e.type = EntryType::kFile;
        break;
      case AE_IFDIR:
        e.type = EntryType::kDir;
        break;
      case AE_IFLNK:
        e.type = EntryType::kSymlink;
        break;
      case AE_IFIFO:
        e.type = EntryType::kFifo;
        break;
      case AE_IFCHR:
        e.type = EntryType::kCharDevice;
        break;
      case AE_IFBLK:
        e.type = EntryType::kBlockDevice;
        break;
      default:
        return Status::Corruption(path + ": unsupported entry type " + std::to_string(type));
    }
    e.mode = archive_entry_perm(ae) & 07777;
    la_int64_t uid = archive_entry_uid(ae), gid = archive_entry_gid(ae);
    if (uid < 0 || uid > UINT32_MAX || gid < 0 || gid > UINT32_MAX) return Status::Corruption(path + ": bad owner");
    e.uid = static_cast<uint32_t>(uid);
    e.gid = static_cast<uint32_t>(gid);
    if (archive_entry_mtime_is_set(ae)) {
      e.mtime_ns = static_cast<int64_t>(archive_entry_mtime(ae)) * 1000000000LL + archive_entry_mtime_nsec(ae);
    }
    archive_entry_xattr_reset(ae);
    const char* xname = nullptr;
    const void* xvalue = nullptr;
    size_t xsize = 0;
    while (archive_entry_xattr_next(ae, &xname, &xvalue, &xsize) == ARCHIVE_OK) {
      if (!xname || !*xname || std::strlen(xname) > 255 || xsize > (64 << 10)) {
        return Status::Corruption(path + ": bad extended attribute");
      }
      e.xattrs.emplace_back(xname, std::string(static_cast<const char*>(xvalue), xsize));
    }
    // Archives written with both LIBARCHIVE.xattr and SCHILY.xattr headers name each one twice.
    std::sort(e.xattrs.begin(), e.xattrs.end());
    e.xattrs.erase(std::unique(e.xattrs.begin(), e.xattrs.end()), e.xattrs.end());
    for (size_t i = 1; i < e.xattrs.size(); ++i) {
      if (e.xattrs[i].first == e.xattrs[i - 1].first) {
        return Status::Corruption(path + ": extended attribute " + e.xattrs[i].first +
                                  " given twice with different values");
      }
    }

    if (comps.empty()) {  // "." or "./": the root directory itself, whose metadata a tree does not keep
      if (e.type != EntryType::kDir)
        return Status::Corruption("entry \"" + path + "\" names the root but is not a directory");
      return Status::Ok();
    }
    SILO_ASSIGN_OR_RETURN(Node * parent, Lookup(comps, comps.size() - 1, path));
    e.name = comps.back();
    uint64_t inode = 0;
    if (hardlink) {
      std::vector<std::string> tcomps;
      SILO_TRY(SplitPath(hardlink, &tcomps).WithContext(path + ": hardlink target"));
      const Node* target = tcomps.empty() ? nullptr : Find(tcomps);
      if (!target || target->entry.type != EntryType::kFile) {
        return Status::Corruption(path + ": hardlink to \"" + hardlink + "\", which is no earlier file entry");
      }
      e.digest = target->entry.digest;
      e.size = target->entry.size;
      inode = target->inode;
      stats_.hardlinks++;
      stats_.files++;
    } else if (e.type == EntryType::kFile) {
      SILO_TRY(ReadContent(ae, &e, path));
      inode = ++next_inode_;
      stats_.files++;
    } else if (e.type == EntryType::kSymlink) {
      const char* t = archive_entry_symlink(ae);
      if (!t) t = archive_entry_symlink_utf8(ae);
      if (!t || !*t) return Status::Corruption(path + ": symlink without a target");
      e.target = t;
      if (e.target.size() > 65536) return Status::Corruption(path + ": symlink target too long");
      stats_.symlinks++;
    } else if (e.type == EntryType::kDir) {
      stats_.dirs++;
    } else {
      if (e.type != EntryType::kFifo) e.rdev = archive_entry_rdev(ae);
      stats_.specials++;
    }

    auto& slot = parent->children[e.name];
    if (slot) {
      if (slot->entry.type == EntryType::kDir && e.type == EntryType::kDir) {
        // A directory named again (or after its contents): new metadata, same contents.
        if (slot->explicit_entry) stats_.replaced++;
        e.name = slot->entry.name;
        slot->entry = std::move(e);
        slot->explicit_entry = true;
        return Status::Ok();
      }
      Warn(path + ": named twice in the package; the later entry is kept");
      stats_.replaced++;
    }
    slot = std::make_unique<Node>();
    slot->entry = std::move(e);
    slot->explicit_entry = true;
    slot->inode = inode;
    return Status::Ok();
  }

  const Node* Find(const std::vector<std::string>& comps) const {
    const Node* cur = &root_;
    for (const auto& c : comps) {
      auto it = cur->children.find(c);
      if (it == cur->children.end()) return nullptr;
      cur = it->second.get();
    }
    return cur;
  }

  Status ReadContent(archive_entry* ae, TreeEntry* e, const std::string& path) {
    store::PutOptions opts;
    opts.sha1_alias = true;
    if (archive_entry_size_is_set(ae) && archive_entry_size(ae) >= 0) {
      opts.expected_size = static_cast<uint64_t>(archive_entry_size(ae));
    }
    SILO_ASSIGN_OR_RETURN(auto writer, store_.NewWriter(opts));
    uint64_t total = 0;
    for (;;) {
      if (Interrupted()) return Status::Interrupted("import interrupted; nothing was committed");
      la_ssize_t n = archive_read_data(a_.get(), buf_.data(), buf_.size());
      if (n < 0) return Status::Corruption("read " + path + ": " + ArchiveError(a_.get()));
      if (n == 0) break;
      SILO_TRY(writer->Write({buf_.data(), static_cast<size_t>(n)}).WithContext(path));
      total += static_cast<uint64_t>(n);
      if (req_.progress) req_.progress->Add(static_cast<uint64_t>(n));
    }
    SILO_ASSIGN_OR_RETURN(auto info, writer->Commit().WithContext(path));
    e->digest = info.digest;
    e->size = total;
    stats_.bytes_read += total;
    stats_.bytes_added += info.new_stored_bytes;
    return Status::Ok();
  }

  static void CountInodes(const Node& n, std::map<uint64_t, uint64_t>& members) {
    for (const auto& [name, c] : n.children) {
      if (c->entry.type == EntryType::kFile && c->inode) members[c->inode]++;
      if (c->entry.type == EntryType::kDir) CountInodes(*c, members);
    }
  }

  static void NumberGroups(Node& n, const std::map<uint64_t, uint64_t>& members, std::map<uint64_t, uint64_t>& groups,
                           uint64_t& next) {
    for (auto& [name, c] : n.children) {
      if (c->entry.type == EntryType::kFile) {
        c->entry.hardlink_group = 0;
        auto it = members.find(c->inode);
        if (c->inode && it != members.end() && it->second > 1) {
          auto [g, fresh] = groups.try_emplace(c->inode, next + 1);
          if (fresh) ++next;
          c->entry.hardlink_group = g->second;
        }
      }
      if (c->entry.type == EntryType::kDir) NumberGroups(*c, members, groups, next);
    }
  }

  Result<store::Digest> StoreDir(Node& n) {
    index::Tree tree;
    tree.entries.reserve(n.children.size());
    for (auto& [name, c] : n.children) {
      if (c->entry.type == EntryType::kDir) {
        SILO_ASSIGN_OR_RETURN(c->entry.digest, StoreDir(*c));
        if (!c->explicit_entry) stats_.dirs++;
        tree_dirs_++;
      } else if (c->entry.type == EntryType::kFile) {
        tree_files_++;
        tree_bytes_ += c->entry.size;
      }
      tree.entries.push_back(std::move(c->entry));
    }
    n.children.clear();
    return index::StoreTree(store_, std::move(tree));
  }

  store::Store& store_;
  const ImportRequest& req_;
  ArchiveReader a_;
  std::vector<uint8_t> buf_;
  Node root_;
  uint64_t count_ = 0;
  uint64_t next_inode_ = 0;
  uint64_t tree_files_ = 0, tree_dirs_ = 0, tree_bytes_ = 0;
  ImportStats stats_;
};

}  // namespace

Result<PackageFormat> ParsePackageFormat(std::string_view name) {
  if (name == "zip") return PackageFormat::kZip;
  if (name == "tar") return PackageFormat::kTar;
  if (name == "tar.gz" || name == "tgz") return PackageFormat::kTarGz;
  if (name == "tar.zst" || name == "tzst") return PackageFormat::kTarZst;
  return Status::InvalidArgument("unknown package format \"" + std::string(name) +
                                 "\" (zip, tar, tar.gz, tgz, tar.zst)");
}

Result<PackageFormat> PackageFormatOfPath(std::string_view path) {
  for (std::string_view suffix : {".tar.gz", ".tgz", ".tar.zst", ".tzst", ".tar", ".zip"}) {
    if (path.size() > suffix.size() && path.substr(path.size() - suffix.size()) == suffix) {
      return ParsePackageFormat(suffix.substr(1));
    }
  }
  return Status::InvalidArgument("cannot tell the package format of \"" + std::string(path) +
                                 "\" (end it in .zip, .tar, .tar.gz, .tgz or .tar.zst, or give --format)");
}

std::string_view PackageExtension(PackageFormat format) {
  switch (format) {
    case PackageFormat::kZip:
      return "zip";
    case PackageFormat::kTar:
      return "tar";
    case PackageFormat::kTarGz:
      return "tar.gz";
    case PackageFormat::kTarZst:
      return "tar.zst";
  }
  return "zip";
}

std::string PackageFingerprint(std::span<const store::Digest> roots) {
  Sha1 h;
  for (const auto& d : roots) h.Update(AsBytes(d.ToString() + "\n"));
  auto out = h.Final();
  return ToHex(out);
}

Result<PackageStats> WritePackage(store::Store& store, const TreeEntry& root, const std::string& out_path,
                                  const PackageOptions& options) {
  const std::string tmp = TempNameFor(out_path);
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return Status::FromErrno("create " + tmp, errno);
  PackageWriter w(store, options);
  Status s = w.Open(fd.get());
  if (s.ok()) s = w.WriteRoot(root);
  if (s.ok()) s = w.Close();
  struct stat st {};
  if (s.ok() && ::fsync(fd.get()) != 0) s = Status::FromErrno("fsync " + tmp, errno);
  if (s.ok() && ::fstat(fd.get(), &st) != 0) s = Status::FromErrno("stat " + tmp, errno);
  fd.Close();
  if (s.ok() && ::rename(tmp.c_str(), out_path.c_str()) != 0) s = Status::FromErrno("rename to " + out_path, errno);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s.WithContext("package " + out_path);
  }
  PackageStats stats = w.stats();
  stats.package_bytes = static_cast<uint64_t>(st.st_size);
  return stats;
}

Result<ImportResult> ImportPackage(store::Store& store, const ImportRequest& req) {
  SILO_TRY(index::ValidateSnapshotName(req.name));
  char* real = ::realpath(req.path.c_str(), nullptr);
  if (!real) return Status::FromErrno("import " + req.path, errno);
  std::string abs = real;
  std::free(real);
  SILO_ASSIGN_OR_RETURN(index::SnapshotRecord record, index::NewSnapshotRecord(store, req.name));
  PackageReader reader(store, req);
  SILO_TRY(reader.Read().WithContext("import " + req.path));
  SILO_ASSIGN_OR_RETURN(record.root, reader.Finish().WithContext("import " + req.path));
  ImportStats stats = reader.stats();
  record.sources.push_back({req.name, abs, record.root});
  record.files = reader.tree_files();
  record.dirs = reader.tree_dirs();
  record.bytes = reader.tree_bytes();
  if (Interrupted()) return Status::Interrupted("import interrupted; nothing was committed");
  SILO_ASSIGN_OR_RETURN(auto info, index::CommitSnapshot(store, record));
  return ImportResult{std::move(info), stats};
}

}  // namespace silo::transfer
