#include "transfer/share.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <map>

#include "index/snapshot.h"
#include "index/tree.h"
#include "transfer/fs_util.h"
#include "util/hash.h"
#include "util/json.h"

namespace silo::transfer {
namespace {

constexpr std::string_view kDigestSpace = "share-digest";
constexpr size_t kMaxListEntries = 1'000'000;

// --- small helpers ---------------------------------------------------------------------

std::string HttpDate(int64_t time_ns) {
  time_t t = static_cast<time_t>(time_ns / 1000000000LL);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

int64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

void PutBe64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (i * 8)) & 0xff));
}

ShareResponse ErrorResponse(int status, std::string message) {
  ShareResponse r;
  r.status = status;
  r.body = "{\"error\":" + JsonQuote(message) + "}\n";
  r.content_length = r.body.size();
  r.headers.emplace_back("Content-Type", "application/json");
  r.error = std::move(message);
  return r;
}

ShareResponse JsonResponse(std::string body) {
  ShareResponse r;
  r.body = std::move(body);
  r.content_length = r.body.size();
  r.headers.emplace_back("Content-Type", "application/json");
  return r;
}

int StatusFor(const Status& s) {
  switch (s.code()) {
    case Code::kNotFound:
      return 404;
    case Code::kInvalidArgument:
      return 400;
    case Code::kConflict:
      return 409;
    default:
      return 500;
  }
}

struct Query {
  bool stat = false;
  bool list = false;
  bool recursive = false;
  bool digest = false;
};

Query ParseQuery(std::string_view q) {
  Query out;
  size_t i = 0;
  while (i <= q.size()) {
    size_t j = q.find('&', i);
    if (j == std::string_view::npos) j = q.size();
    std::string_view kv = q.substr(i, j - i);
    std::string_view key = kv.substr(0, kv.find('='));
    std::string_view value = kv.find('=') == std::string_view::npos ? "1" : kv.substr(kv.find('=') + 1);
    bool on = value != "0" && value != "false";
    if (key == "stat") out.stat = on;
    if (key == "list") out.list = on;
    if (key == "recursive") out.recursive = on;
    if (key == "digest") out.digest = on;
    i = j + 1;
  }
  return out;
}

std::string_view TypeName(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "directory";
  if (S_ISLNK(m)) return "symlink";
  return "other";
}

// Range/If-Range handling shared by files and snapshot objects: fills status, length,
// Content-Range; returns false (and an error response in *out) when unsatisfiable.
bool ApplyRange(const ShareRequest& req, uint64_t size, const std::string& etag, const std::string& last_modified,
                ShareResponse* out, uint64_t* start, uint64_t* length) {
  *start = 0;
  *length = size;
  out->status = 200;
  out->headers.emplace_back("Accept-Ranges", "bytes");
  out->headers.emplace_back("ETag", etag);
  if (!last_modified.empty()) out->headers.emplace_back("Last-Modified", last_modified);
  if (req.range.empty()) return true;
  if (!req.if_range.empty() && req.if_range != etag && req.if_range != last_modified) return true;
  auto r = ParseRangeHeader(req.range, size);
  if (!r) return true;
  if (!r->satisfiable()) {
    *out = ErrorResponse(416, "range not satisfiable for " + std::to_string(size) + " bytes");
    out->headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
    return false;
  }
  out->status = 206;
  *start = r->start;
  *length = r->end - r->start + 1;
  out->headers.emplace_back(
      "Content-Range", "bytes " + std::to_string(r->start) + "-" + std::to_string(r->end) + "/" + std::to_string(size));
  return true;
}

struct OpenedShare {
  std::string name;
  std::string real_dir;  // realpath of the share directory
  Fd root;
};

// Opens `rel` beneath `root`, following symlinks only while they stay beneath it. Returns
// 0, or the errno (EXDEV: a symlink or ".." led out).
int OpenBeneath(int root, const std::string& rel, Fd* out) {
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  const char* p = rel.empty() ? "." : rel.c_str();
  for (;;) {
    long fd = ::syscall(SYS_openat2, root, p, &how, sizeof how);
    if (fd >= 0) {
      *out = Fd(static_cast<int>(fd));
      return 0;
    }
    if (errno != EINTR && errno != EAGAIN) return errno;
  }
}

// The real path of an open descriptor (where every symlink led).
std::string RealPathOf(int fd) {
  char buf[PATH_MAX + 1];
  std::string proc = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(proc.c_str(), buf, PATH_MAX);
  if (n < 0) return {};
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

// --- public helpers ----------------------------------------------------------------------

Result<ShareConfig> ShareConfig::Parse(std::string_view text) {
  auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size())
    return Status::InvalidArgument("share " + std::string(text) + ": expected NAME=DIR");
  ShareConfig c{std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))};
  if (c.name.front() == '.' ||
      c.name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
          std::string::npos)
    return Status::InvalidArgument("share " + std::string(text) +
                                   ": NAME must be [A-Za-z0-9._-]+, not starting with '.'");
  return c;
}

std::string ShareResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return "";
}

std::optional<RangeSpec> ParseRangeHeader(std::string_view value, uint64_t size) {
  if (!value.starts_with("bytes=")) return std::nullopt;
  value.remove_prefix(6);
  if (value.find(',') != std::string_view::npos) return std::nullopt;
  auto dash = value.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto num = [](std::string_view s, uint64_t* out) {
    if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string_view::npos) return false;
    *out = std::stoull(std::string(s));
    return true;
  };
  std::string_view a = value.substr(0, dash), b = value.substr(dash + 1);
  uint64_t x = 0, y = 0;
  RangeSpec r;
  if (a.empty()) {  // suffix: the last y bytes
    if (!num(b, &y)) return std::nullopt;
    if (y == 0 || size == 0) return RangeSpec{1, 0};
    r.start = y >= size ? 0 : size - y;
    r.end = size - 1;
    return r;
  }
  if (!num(a, &x)) return std::nullopt;
  if (!b.empty()) {
    if (!num(b, &y)) return std::nullopt;
    if (y < x) return std::nullopt;  // syntactically invalid: ignored
  }
  if (x >= size) return RangeSpec{1, 0};
  r.start = x;
  r.end = b.empty() ? size - 1 : std::min(y, size - 1);
  return r;
}

// --- the service -------------------------------------------------------------------------

struct ShareService::Impl {
  std::map<std::string, OpenedShare, std::less<>> shares;
  const AccessControl* access = nullptr;
  store::Store* store = nullptr;

  ShareResponse Files(const ShareRequest& req, std::string_view path, const Query& q) const;
  ShareResponse Snapshots(const ShareRequest& req, std::string_view path, const Query& q) const;
  Result<store::Digest> FileDigest(int fd, const struct stat& st, const std::string& abs) const;
  std::optional<store::Digest> CachedDigest(const struct stat& st, const std::string& abs) const;
  Decision CheckPath(const std::string& rel, const std::string& abs) const {
    return access ? access->CheckPath(rel, abs) : Decision{};
  }
  Status ListDir(const OpenedShare& share, int dirfd, const std::string& rel, const std::string& prefix, const Query& q,
                 std::string* json, size_t* count, bool* first) const;
  Status ListTree(const store::Digest& tree, const std::string& rel, const std::string& prefix, const Query& q,
                  std::string* json, size_t* count, bool* first) const;
};

ShareService::ShareService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ShareService::~ShareService() = default;

Result<std::unique_ptr<ShareService>> ShareService::Create(const std::vector<ShareConfig>& shares,
                                                           const AccessControl* access, store::Store* store) {
  auto impl = std::make_unique<Impl>();
  impl->access = access;
  impl->store = store;
  for (const auto& s : shares) {
    if (impl->shares.count(s.name)) return Status::InvalidArgument("share " + s.name + ": named twice");
    int fd = ::open(s.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno("share " + s.name + "=" + s.dir, errno);
    OpenedShare o{s.name, RealPathOf(fd), Fd(fd)};
    if (o.real_dir.empty()) return Status::IO("share " + s.name + ": cannot resolve " + s.dir);
    impl->shares.emplace(s.name, std::move(o));
  }
  return std::unique_ptr<ShareService>(new ShareService(std::move(impl)));
}

bool ShareService::Matches(std::string_view target) {
  auto is = [&](std::string_view prefix) {
    return target.starts_with(prefix) &&
           (target.size() == prefix.size() || target[prefix.size()] == '/' || target[prefix.size()] == '?');
  };
  return is("/files") || is("/snapshots");
}

ShareResponse ShareService::Handle(const ShareRequest& req) const {
  if (req.method != "GET" && req.method != "HEAD") {
    auto r = ErrorResponse(405, "method " + std::string(req.method) + " not allowed on shares");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  std::string_view target = req.target;
  std::string_view query;
  if (auto qm = target.find('?'); qm != std::string_view::npos) {
    query = target.substr(qm + 1);
    target = target.substr(0, qm);
  }
  Query q = ParseQuery(query);
  ShareResponse r;
  if (target.starts_with("/files")) {
    r = impl_->Files(req, target.substr(6), q);
  } else if (target.starts_with("/snapshots")) {
    r = impl_->Snapshots(req, target.substr(10), q);
  } else {
    r = ErrorResponse(404, "no such route");
  }
  if (req.method == "HEAD") {
    r.body.clear();
    r.file.Close();
    r.object.reset();
  }
  return r;
}

std::optional<store::Digest> ShareService::Impl::CachedDigest(const struct stat& st, const std::string& abs) const {
  if (!store) return std::nullopt;
  std::string key = abs;
  key.push_back('\0');
  PutBe64(&key, st.st_ino);
  PutBe64(&key, static_cast<uint64_t>(st.st_size));
  PutBe64(&key, static_cast<uint64_t>(fs::MtimeNs(st)));
  PutBe64(&key, static_cast<uint64_t>(fs::CtimeNs(st)));
  auto v = store->GetIndex(kDigestSpace, key);
  store::Digest d;
  if (v.ok() && v->has_value() && store::Digest::FromRaw(**v, &d)) return d;
  return std::nullopt;
}

Result<store::Digest> ShareService::Impl::FileDigest(int fd, const struct stat& st, const std::string& abs) const {
  if (auto d = CachedDigest(st, abs)) return *d;
  Sha256 h;
  std::vector<uint8_t> buf(1 << 20);
  uint64_t off = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("read " + abs, errno);
    if (n == 0) break;
    h.Update({buf.data(), static_cast<size_t>(n)});
    off += static_cast<uint64_t>(n);
  }
  struct stat after {};
  if (::fstat(fd, &after) != 0) return Status::FromErrno("stat " + abs, errno);
  if (off != static_cast<uint64_t>(st.st_size) || after.st_size != st.st_size ||
      fs::MtimeNs(after) != fs::MtimeNs(st) || fs::CtimeNs(after) != fs::CtimeNs(st))
    return Status::Conflict(abs + " changed while its digest was computed; retry");
  store::Digest d = store::Digest::Sha256(h.Final());
  // A file changed within the last two seconds could change again within the same mtime
  // tick without its stat changing: compute, but do not remember.
  if (store && NowNs() - fs::CtimeNs(st) > 2'000'000'000LL) {
    std::string key = abs;
    key.push_back('\0');
    PutBe64(&key, st.st_ino);
    PutBe64(&key, static_cast<uint64_t>(st.st_size));
    PutBe64(&key, static_cast<uint64_t>(fs::MtimeNs(st)));
    PutBe64(&key, static_cast<uint64_t>(fs::CtimeNs(st)));
    store->PutIndex(kDigestSpace, key, d.raw()).IgnoreError();  // a cache: losing an entry costs a rehash
  }
  return d;
}

namespace {

std::string StatJson(std::string_view path, const struct stat& st, const std::optional<store::Digest>& digest,
                     const std::string& link_target) {
  std::string j = "{\"path\":" + JsonQuote(path) + ",\"type\":\"" + std::string(TypeName(st.st_mode)) +
                  "\",\"size\":" + std::to_string(S_ISREG(st.st_mode) ? st.st_size : 0) +
                  ",\"mtime\":" + std::to_string(fs::MtimeNs(st)) + ",\"mode\":" + std::to_string(st.st_mode & 07777);
  if (digest) j += ",\"digest\":\"" + digest->ToString() + "\"";
  if (S_ISLNK(st.st_mode)) j += ",\"target\":" + JsonQuote(link_target);
  return j + "}";
}

std::string EntryJson(std::string_view path, const index::TreeEntry& e) {
  std::string_view type = e.type == index::EntryType::kFile      ? "file"
                          : e.type == index::EntryType::kDir     ? "directory"
                          : e.type == index::EntryType::kSymlink ? "symlink"
                                                                 : "other";
  std::string j = "{\"path\":" + JsonQuote(path) + ",\"type\":\"" + std::string(type) +
                  "\",\"size\":" + std::to_string(e.type == index::EntryType::kFile ? e.size : 0) +
                  ",\"mtime\":" + std::to_string(e.mtime_ns) + ",\"mode\":" + std::to_string(e.mode);
  if (e.type == index::EntryType::kFile) j += ",\"digest\":\"" + e.digest.ToString() + "\"";
  if (e.type == index::EntryType::kSymlink) j += ",\"target\":" + JsonQuote(e.target);
  return j + "}";
}

std::string JoinRel(const std::string& a, const std::string& b) {
  return a.empty() ? b : a + "/" + b;
}

}  // namespace

Status ShareService::Impl::ListDir(const OpenedShare& share, int dirfd, const std::string& rel,
                                   const std::string& prefix, const Query& q, std::string* json, size_t* count,
                                   bool* first) const {
  SILO_ASSIGN_OR_RETURN(auto names, fs::ListDir(dirfd, rel.empty() ? share.name : rel));
  for (const auto& name : names) {
    std::string child = JoinRel(rel, name);
    std::string abs = share.real_dir + "/" + child;
    if (!CheckPath(child, abs).allowed()) continue;
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // vanished meanwhile
    if (++*count > kMaxListEntries) return Status::InvalidArgument("listing exceeds 1000000 entries");
    std::optional<store::Digest> digest;
    std::string target;
    if (S_ISLNK(st.st_mode)) {
      char buf[PATH_MAX + 1];
      ssize_t n = ::readlinkat(dirfd, name.c_str(), buf, PATH_MAX);
      if (n >= 0) target.assign(buf, static_cast<size_t>(n));
    } else if (S_ISREG(st.st_mode)) {
      if (q.digest) {
        int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0) continue;
        Fd f(fd);
        SILO_ASSIGN_OR_RETURN(digest, FileDigest(f.get(), st, abs));
      } else {
        digest = CachedDigest(st, abs);
      }
    }
    if (!*first) *json += ",\n";
    *first = false;
    *json += StatJson(JoinRel(prefix, name), st, digest, target);
    if (S_ISDIR(st.st_mode) && q.recursive) {
      int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0) continue;
      Fd sub(fd);
      SILO_TRY(ListDir(share, sub.get(), child, JoinRel(prefix, name), q, json, count, first));
    }
  }
  return Status::Ok();
}

ShareResponse ShareService::Impl::Files(const ShareRequest& req, std::string_view path, const Query& q) const {
  if (path.empty() || path == "/") {
    std::string j = "{\"shares\":[";
    bool first = true;
    for (const auto& [name, s] : shares) {
      j += std::string(first ? "" : ",") + JsonQuote(name);
      first = false;
    }
    return JsonResponse(j + "]}\n");
  }
  path.remove_prefix(1);  // the '/'
  std::string_view share_name = path.substr(0, path.find('/'));
  std::string_view rest = share_name.size() < path.size() ? path.substr(share_name.size() + 1) : std::string_view();
  auto it = shares.find(share_name);
  if (it == shares.end()) return ErrorResponse(404, "no share named " + std::string(share_name));
  const OpenedShare& share = it->second;
  auto rel = DecodeSharePath(rest);
  if (!rel.ok()) return ErrorResponse(403, rel.status().message());
  if (auto d = CheckPath(*rel, share.real_dir + (rel->empty() ? "" : "/" + *rel)); !d.allowed())
    return ErrorResponse(403, d.reason);
  Fd file;
  if (int err = OpenBeneath(share.root.get(), *rel, &file); err != 0) {
    if (err == ENOENT || err == ENOTDIR) return ErrorResponse(404, "no such file: " + *rel);
    if (err == EXDEV || err == ELOOP || err == EACCES || err == EPERM)
      return ErrorResponse(403, "path leaves the share or is not readable: " + *rel);
    return ErrorResponse(500, Status::FromErrno(*rel, err).message());
  }
  auto* fd = &file;
  // Where every symlink led: it must still be inside the share and not denied.
  std::string real = RealPathOf(fd->get());
  if (real != share.real_dir && !real.starts_with(share.real_dir + "/"))
    return ErrorResponse(403, "path leaves the share");
  std::string real_rel = real.size() > share.real_dir.size() ? real.substr(share.real_dir.size() + 1) : "";
  if (auto d = CheckPath(real_rel, real); !d.allowed()) return ErrorResponse(403, d.reason);
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return ErrorResponse(500, "stat failed");
  std::string etag = "\"" + std::to_string(st.st_ino) + "-" + std::to_string(st.st_size) + "-" +
                     std::to_string(fs::MtimeNs(st)) + "\"";
  if (q.stat) {
    std::optional<store::Digest> digest;
    if (S_ISREG(st.st_mode)) {
      auto d = FileDigest(fd->get(), st, real);
      if (!d.ok()) return ErrorResponse(d.status().code() == Code::kConflict ? 503 : 500, d.status().message());
      digest = *d;
    }
    auto r = JsonResponse(StatJson(*rel, st, digest, "") + "\n");
    r.headers.emplace_back("X-Silo-Type", std::string(TypeName(st.st_mode)));
    return r;
  }
  if (S_ISDIR(st.st_mode)) {
    std::string j = "{\"path\":" + JsonQuote(*rel) + ",\"type\":\"directory\",\"entries\":[\n";
    size_t count = 0;
    bool first = true;
    Status s = ListDir(share, fd->get(), real_rel, "", q, &j, &count, &first);
    if (!s.ok()) return ErrorResponse(StatusFor(s), s.message());
    auto r = JsonResponse(j + "]}\n");
    r.headers.emplace_back("X-Silo-Type", "directory");
    return r;
  }
  if (!S_ISREG(st.st_mode)) return ErrorResponse(404, "not a regular file: " + *rel);
  ShareResponse r;
  uint64_t start = 0, length = 0;
  if (!ApplyRange(req, static_cast<uint64_t>(st.st_size), etag, HttpDate(fs::MtimeNs(st)), &r, &start, &length))
    return r;
  r.headers.emplace_back("Content-Type", "application/octet-stream");
  r.headers.emplace_back("X-Silo-Type", "file");
  if (auto d = CachedDigest(st, real)) r.headers.emplace_back("X-Silo-Digest", d->ToString());
  r.content_length = length;
  r.file = std::move(file);
  r.file_offset = start;
  return r;
}

Status ShareService::Impl::ListTree(const store::Digest& tree_digest, const std::string& rel, const std::string& prefix,
                                    const Query& q, std::string* json, size_t* count, bool* first) const {
  SILO_ASSIGN_OR_RETURN(index::Tree tree, index::LoadTree(*store, tree_digest));
  for (const auto& e : tree.entries) {
    std::string child = JoinRel(rel, e.name);
    if (!CheckPath(child, "").allowed()) continue;
    if (++*count > kMaxListEntries) return Status::InvalidArgument("listing exceeds 1000000 entries");
    if (!*first) *json += ",\n";
    *first = false;
    *json += EntryJson(JoinRel(prefix, e.name), e);
    if (e.type == index::EntryType::kDir && q.recursive)
      SILO_TRY(ListTree(e.digest, child, JoinRel(prefix, e.name), q, json, count, first));
  }
  return Status::Ok();
}

ShareResponse ShareService::Impl::Snapshots(const ShareRequest& req, std::string_view path, const Query& q) const {
  if (!store) return ErrorResponse(404, "this server has no store");
  if (path.empty() || path == "/") {
    auto list = index::ListSnapshots(*store, "");
    if (!list.ok()) return ErrorResponse(500, list.status().message());
    std::string j = "{\"snapshots\":[";
    bool first = true;
    for (const auto& s : *list) {
      j += std::string(first ? "\n" : ",\n") + "{\"name\":" + JsonQuote(s.record.name) + ",\"id\":\"" + s.id +
           "\",\"time\":" + std::to_string(s.record.time_ns) + ",\"digest\":\"" + s.digest.ToString() + "\"}";
      first = false;
    }
    return JsonResponse(j + "]}\n");
  }
  path.remove_prefix(1);
  std::string_view spec_text = path.substr(0, path.find('/'));
  std::string_view rest = spec_text.size() < path.size() ? path.substr(spec_text.size() + 1) : std::string_view();
  auto spec_decoded = DecodeSharePath(spec_text);
  if (!spec_decoded.ok() || spec_decoded->find(':') != std::string::npos) return ErrorResponse(404, "no such snapshot");
  auto rel = DecodeSharePath(rest);
  if (!rel.ok()) return ErrorResponse(403, rel.status().message());
  if (auto d = CheckPath(*rel, ""); !d.allowed()) return ErrorResponse(403, d.reason);
  auto spec = index::ParseSnapshotSpec(*spec_decoded);
  if (!spec.ok()) return ErrorResponse(404, spec.status().message());
  auto snap = index::ResolveSnapshot(*store, *spec);
  if (!snap.ok()) return ErrorResponse(StatusFor(snap.status()), snap.status().message());
  auto entry = index::WalkPath(*store, snap->record.root, *rel);
  if (!entry.ok()) return ErrorResponse(StatusFor(entry.status()), entry.status().message());
  if (q.stat) {
    auto r = JsonResponse(EntryJson(*rel, *entry) + "\n");
    return r;
  }
  if (entry->type == index::EntryType::kDir) {
    std::string j = "{\"path\":" + JsonQuote(*rel) + ",\"type\":\"directory\",\"entries\":[\n";
    size_t count = 0;
    bool first = true;
    Status s = ListTree(entry->digest, *rel, "", q, &j, &count, &first);
    if (!s.ok()) return ErrorResponse(StatusFor(s), s.message());
    auto r = JsonResponse(j + "]}\n");
    r.headers.emplace_back("X-Silo-Type", "directory");
    return r;
  }
  if (entry->type != index::EntryType::kFile) return ErrorResponse(404, "not a regular file: " + *rel);
  ShareResponse r;
  uint64_t start = 0, length = 0;
  if (!ApplyRange(req, entry->size, "\"" + entry->digest.hex() + "\"", HttpDate(entry->mtime_ns), &r, &start, &length))
    return r;
  auto reader = store->NewReader(entry->digest);
  if (!reader.ok()) return ErrorResponse(StatusFor(reader.status()), reader.status().message());
  if (Status s = (*reader)->Seek(start); !s.ok()) return ErrorResponse(500, s.message());
  r.headers.emplace_back("Content-Type", "application/octet-stream");
  r.headers.emplace_back("X-Silo-Type", "file");
  r.headers.emplace_back("X-Silo-Digest", entry->digest.ToString());
  r.content_length = length;
  r.object = std::move(*reader);
  return r;
}

}  // namespace silo::transfer
