#include "transfer/get.h"

#include <fcntl.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "index/tree.h"
#include "transfer/access.h"
#include "util/fd.h"
#include "util/hash.h"
#include "util/interrupt.h"
#include "util/units.h"

namespace silo::transfer {
namespace {

constexpr uint64_t kHashBuffer = 1 << 20;

// What the server says about one file.
struct Remote {
  std::string url;
  uint64_t size = 0;
  std::string digest;     // "sha256:<hex>", empty when the server gave none
  std::string validator;  // digest, else ETag, else Last-Modified: "the same remote file"
  bool ranges = false;
  int64_t mtime_ns = -1;  // -1: unknown
  uint32_t mode = 0;      // 0: unknown
};

struct ListEntry {
  std::string path;
  std::string type;
  uint64_t size = 0;
  int64_t mtime_ns = -1;
  uint32_t mode = 0;
  std::string digest;
  std::string target;
};

std::string DirName(const std::string& p) {
  auto slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}
std::string BaseName(const std::string& p) {
  auto slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

// "Tue, 15 Nov 1994 08:12:31 GMT" → ns; -1 when unparsable.
int64_t ParseHttpDate(const std::string& s) {
  struct tm tm {};
  if (!strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm)) return -1;
  return static_cast<int64_t>(timegm(&tm)) * 1000000000LL;
}

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

Result<std::string> HashFile(int fd, uint64_t size, const std::string& what) {
  Sha256 h;
  std::vector<uint8_t> buf(kHashBuffer);
  uint64_t off = 0;
  while (off < size) {
    if (Interrupted()) return Status::Interrupted("hashing " + what);
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off));
    ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("read " + what, errno);
    if (n == 0) return Status::IO(what + ": shorter than expected");
    h.Update({buf.data(), static_cast<size_t>(n)});
    off += static_cast<uint64_t>(n);
  }
  return "sha256:" + ToHex(h.Final());
}

std::string ServerMessage(const HttpResponse& r) {
  std::string body = r.body.substr(0, 300);
  auto p = body.find("\"error\":\"");
  if (p != std::string::npos) {
    body = body.substr(p + 9);
    body = body.substr(0, body.find('"'));
  }
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  return body;
}

Status StatusError(const HttpResponse& r, const std::string& what) {
  std::string msg = what + ": HTTP " + std::to_string(r.status);
  std::string server = ServerMessage(r);
  if (!server.empty() && server.find('<') == std::string::npos) msg += " (" + server + ")";
  if (r.status == 401)
    return Status::InvalidArgument(msg + "; credentials required or refused (use --token or --user)");
  if (r.status == 403) return Status::InvalidArgument(msg + "; forbidden");
  if (r.status == 404) return Status::NotFound(msg);
  if (r.status >= 500) return Status::Network(msg);
  return Status::InvalidArgument(msg);
}

bool Retryable(const Status& s) {
  return s.code() == Code::kNetwork;
}

std::string WithQuery(const std::string& url, std::string_view query) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + std::string(query);
}

// Validates a listed path (relative, no "..", no empty components).
Status CheckListedPath(const std::string& p) {
  if (p.empty()) return Status::Corruption("listing holds an empty path");
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    SILO_TRY(index::ValidateEntryName(p.substr(i, j - i)).WithContext("listed path " + p));
    i = j + 1;
  }
  return Status::Ok();
}

// A symlink target that stays inside the tree when placed at `path` (relative, never
// climbing above the root).
bool SafeLinkTarget(const std::string& path, const std::string& target) {
  if (target.empty() || target[0] == '/') return false;
  int depth = static_cast<int>(std::count(path.begin(), path.end(), '/'));
  size_t i = 0;
  while (i <= target.size()) {
    size_t j = target.find('/', i);
    if (j == std::string::npos) j = target.size();
    std::string_view seg = std::string_view(target).substr(i, j - i);
    if (seg == "..") {
      if (--depth < 0) return false;
    } else if (!seg.empty() && seg != ".") {
      ++depth;
    }
    i = j + 1;
  }
  return true;
}

// --- resumable download state ---------------------------------------------------------

struct PartState {
  uint64_t start = 0;
  uint64_t length = 0;
  std::atomic<uint64_t> done{0};
};

struct Plan {
  uint64_t part_size = 0;
  std::vector<std::unique_ptr<PartState>> parts;
};

std::string EncodeState(const Remote& r, const Plan& plan) {
  std::ostringstream out;
  out << "silo-get 1\nurl " << r.url << "\nsize " << r.size << "\nvalidator " << r.validator << "\npart_size "
      << plan.part_size << "\nparts " << plan.parts.size() << "\n";
  for (const auto& p : plan.parts) out << p->done.load() << "\n";
  return out.str();
}

// The saved progress when it belongs to this very remote file; nullopt otherwise.
std::optional<std::vector<uint64_t>> DecodeState(const std::string& text, const Remote& r, const Plan& plan) {
  std::istringstream in(text);
  std::string line;
  auto expect = [&](const std::string& want) { return std::getline(in, line) && line == want; };
  if (!expect("silo-get 1") || !expect("url " + r.url) || !expect("size " + std::to_string(r.size)) ||
      !expect("validator " + r.validator) || !expect("part_size " + std::to_string(plan.part_size)) ||
      !expect("parts " + std::to_string(plan.parts.size())))
    return std::nullopt;
  std::vector<uint64_t> done;
  for (size_t i = 0; i < plan.parts.size(); ++i) {
    if (!std::getline(in, line) || line.empty() || line.find_first_not_of("0123456789") != std::string::npos)
      return std::nullopt;
    uint64_t d = std::stoull(line);
    if (d > plan.parts[i]->length) return std::nullopt;
    done.push_back(d);
  }
  return done;
}

Status WriteFileAtomic(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return Status::FromErrno("create " + tmp, errno);
  SILO_TRY(WriteAll(fd.get(), AsBytes(data), tmp));
  fd.Close();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::FromErrno("rename " + tmp, errno);
  return Status::Ok();
}

std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  if (in) ss << in.rdbuf();
  return ss.str();
}

// --- the getter ------------------------------------------------------------------------

class Getter {
 public:
  Getter(const GetOptions& o, GetStats* stats) : o_(o), stats_(*stats), http_(MakeHttpOptions(o)) {
    if (!o.authorization.empty()) auth_header_ = "Authorization: " + o.authorization;
  }

  Status Run();

 private:
  static HttpOptions MakeHttpOptions(const GetOptions& o) {
    HttpOptions h = o.http;
    h.connect_timeout_s = static_cast<long>(o.timeout.count());
    h.low_speed_time_s = static_cast<long>(o.timeout.count());
    return h;
  }

  Result<HttpResponse> Request(const std::string& method, const std::string& url, std::vector<std::string> headers,
                               std::function<Status(long, ByteSpan)> on_body = nullptr) {
    HttpRequest req;
    req.method = method;
    req.url = url;
    req.headers = std::move(headers);
    if (!auth_header_.empty()) req.headers.push_back(auth_header_);
    req.on_body = std::move(on_body);
    return http_.Do(req);
  }

  // Request with retries on network failures and 5xx answers.
  Result<HttpResponse> RequestRetrying(const std::string& method, const std::string& url) {
    Status last;
    for (int attempt = 0; attempt <= o_.retries; ++attempt) {
      if (attempt > 0) Backoff(attempt);
      auto r = Request(method, url, {});
      if (!r.ok()) {
        last = r.status();
        if (!Retryable(last)) return last;
        continue;
      }
      if (r->status >= 500) {
        last = StatusError(*r, method + " " + url);
        continue;
      }
      return r;
    }
    return last;
  }

  void Backoff(int attempt) {
    auto wait = std::chrono::milliseconds(std::min(250 << std::min(attempt, 5), 5000));
    auto until = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < until && !Interrupted())
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  void Note(const std::string& s) {
    if (o_.on_note) o_.on_note(s);
  }

  Result<Remote> ProbeFile(const std::string& url, bool* is_dir);
  Result<std::vector<ListEntry>> List(const std::string& dir_url);
  Status UpdateFile(const Remote& r, const std::string& out, int connections, bool allow_append);
  Status FetchFile(const Remote& r, const std::string& out, int connections);
  Status Append(const Remote& r, const std::string& out, uint64_t from);
  Status SyncDirectory(const std::string& dir_url, const std::string& out, bool allow_append);
  Status FinishFile(int fd, const Remote& r);
  void AddStat(uint64_t GetStats::*field, uint64_t n) {
    std::lock_guard lock(stats_mu_);
    stats_.*field += n;
  }

  // What was last written for an output path (so a follow poll need not re-hash it).
  struct Known {
    std::string digest;
    uint64_t size = 0;
    int64_t local_mtime_ns = 0;
  };
  bool KnownUnchanged(const std::string& out, const Remote& r);
  void Remember(const std::string& out, const Remote& r);

  const GetOptions& o_;
  GetStats& stats_;
  std::mutex stats_mu_;
  HttpClient http_;
  std::string auth_header_;
  std::unique_ptr<Progress> progress_;
  bool following_ = false;
  std::mutex known_mu_;
  std::map<std::string, Known> known_;
};

Result<Remote> Getter::ProbeFile(const std::string& url, bool* is_dir) {
  SILO_ASSIGN_OR_RETURN(HttpResponse head, RequestRetrying("HEAD", url));
  if (head.status >= 400) {
    // HEAD answers carry no message: ask again with GET for the server's reason.
    auto get = Request("GET", url, {"Range: bytes=0-0"});
    if (get.ok() && get->status >= 400) return StatusError(*get, url);
    return StatusError(head, url);
  }
  Remote r;
  r.url = url;
  std::string type = head.header("x-silo-type");
  *is_dir = type == "directory";
  if (*is_dir) return r;
  std::string len = head.header("content-length");
  if (len.empty() || len.find_first_not_of("0123456789") != std::string::npos)
    return Status::Unsupported(url + ": the server sends no Content-Length; cannot fetch in parts");
  r.size = std::stoull(len);
  r.ranges = head.header("accept-ranges") == "bytes";
  std::string etag = head.header("etag");
  std::string lm = head.header("last-modified");
  r.validator = !etag.empty() ? etag : lm;
  r.mtime_ns = lm.empty() ? -1 : ParseHttpDate(lm);
  if (!type.empty()) {  // silo: ask for the digest, mode and exact mtime
    SILO_ASSIGN_OR_RETURN(HttpResponse st, RequestRetrying("GET", WithQuery(url, "stat")));
    if (st.status != 200) return StatusError(st, url + "?stat");
    simdjson::dom::parser parser;
    simdjson::padded_string padded(st.body);
    simdjson::dom::element doc;
    if (parser.parse(padded).get(doc) != simdjson::SUCCESS) return Status::Network(url + "?stat: not JSON");
    std::string_view digest;
    uint64_t size = 0, mode = 0;
    int64_t mtime = 0;
    if (doc["size"].get(size) != simdjson::SUCCESS || doc["digest"].get(digest) != simdjson::SUCCESS)
      return Status::Network(url + "?stat: no size or digest");
    if (doc["mtime"].get(mtime) == simdjson::SUCCESS) r.mtime_ns = mtime;
    if (doc["mode"].get(mode) == simdjson::SUCCESS) r.mode = static_cast<uint32_t>(mode);
    r.size = size;
    r.digest = std::string(digest);
    r.validator = r.digest;
  }
  return r;
}

Result<std::vector<ListEntry>> Getter::List(const std::string& dir_url) {
  std::string url = WithQuery(dir_url, "list&recursive=1&digest=1");
  SILO_ASSIGN_OR_RETURN(HttpResponse r, RequestRetrying("GET", url));
  if (r.status != 200) return StatusError(r, url);
  simdjson::dom::parser parser;
  simdjson::padded_string padded(r.body);
  simdjson::dom::element doc;
  simdjson::dom::array entries;
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS || doc["entries"].get(entries) != simdjson::SUCCESS)
    return Status::Network(url + ": not a silo listing");
  std::vector<ListEntry> out;
  for (simdjson::dom::element e : entries) {
    ListEntry le;
    std::string_view s;
    if (e["path"].get(s) != simdjson::SUCCESS) return Status::Network(url + ": an entry without a path");
    le.path = std::string(s);
    if (e["type"].get(s) == simdjson::SUCCESS) le.type = std::string(s);
    if (e["digest"].get(s) == simdjson::SUCCESS) le.digest = std::string(s);
    if (e["target"].get(s) == simdjson::SUCCESS) le.target = std::string(s);
    uint64_t u = 0;
    int64_t i = 0;
    if (e["size"].get(u) == simdjson::SUCCESS) le.size = u;
    if (e["mode"].get(u) == simdjson::SUCCESS) le.mode = static_cast<uint32_t>(u);
    if (e["mtime"].get(i) == simdjson::SUCCESS) le.mtime_ns = i;
    SILO_TRY(CheckListedPath(le.path).WithContext(url));
    out.push_back(std::move(le));
  }
  return out;
}

bool Getter::KnownUnchanged(const std::string& out, const Remote& r) {
  struct stat st {};
  if (::lstat(out.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  if (static_cast<uint64_t>(st.st_size) != r.size) return false;
  {
    std::lock_guard lock(known_mu_);
    auto it = known_.find(out);
    if (it != known_.end() && it->second.size == r.size && it->second.local_mtime_ns == MtimeNs(st) &&
        !r.digest.empty() && it->second.digest == r.digest)
      return true;
  }
  if (r.digest.empty()) {
    // No digest (a plain HTTP server): same size and the mtime we set from Last-Modified.
    return r.mtime_ns >= 0 && MtimeNs(st) == r.mtime_ns;
  }
  Fd fd(::open(out.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return false;
  auto d = HashFile(fd.get(), r.size, out);
  if (!d.ok() || *d != r.digest) return false;
  Remember(out, r);
  return true;
}

void Getter::Remember(const std::string& out, const Remote& r) {
  struct stat st {};
  if (::lstat(out.c_str(), &st) != 0) return;
  std::lock_guard lock(known_mu_);
  known_[out] = Known{r.digest, r.size, MtimeNs(st)};
}

Status Getter::FinishFile(int fd, const Remote& r) {
  if (r.mode != 0) ::fchmod(fd, r.mode & 07777);
  if (r.mtime_ns >= 0) {
    struct timespec ts[2] = {{0, UTIME_OMIT},
                             {static_cast<time_t>(r.mtime_ns / 1000000000LL), r.mtime_ns % 1000000000LL}};
    ::futimens(fd, ts);
  }
  if (::fdatasync(fd) != 0 && errno != EINVAL) return Status::FromErrno("sync", errno);
  return Status::Ok();
}

Status Getter::UpdateFile(const Remote& r, const std::string& out, int connections, bool allow_append) {
  if (KnownUnchanged(out, r)) {
    AddStat(&GetStats::files_unchanged, 1);
    if (progress_) progress_->Add(r.size);
    return Status::Ok();
  }
  struct stat st {};
  if (allow_append && r.ranges && ::lstat(out.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
      static_cast<uint64_t>(st.st_size) < r.size && st.st_size > 0) {
    Status s = Append(r, out, static_cast<uint64_t>(st.st_size));
    if (s.ok()) return s;
    if (s.code() == Code::kInterrupted) return s;
    Note(out + ": " + s.message() + "; fetching it whole");
  }
  return FetchFile(r, out, connections);
}

// Appends [from, size) of the remote file to `out` in place (follow mode), then checks the
// whole file against the digest.
Status Getter::Append(const Remote& r, const std::string& out, uint64_t from) {
  Fd fd(::open(out.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno("open " + out, errno);
  uint64_t off = from;
  auto resp = Request("GET", r.url, {"Range: bytes=" + std::to_string(from) + "-" + std::to_string(r.size - 1)},
                      [&](long status, ByteSpan data) -> Status {
                        if (status != 206) return Status::Unsupported("the server ignored the Range request");
                        if (off + data.size() > r.size) return Status::Network("the server sent more than asked for");
                        size_t done = 0;
                        while (done < data.size()) {
                          ssize_t n = ::pwrite(fd.get(), data.data() + done, data.size() - done,
                                               static_cast<off_t>(off + done));
                          if (n < 0 && errno == EINTR) continue;
                          if (n < 0) return Status::FromErrno("write " + out, errno);
                          done += static_cast<size_t>(n);
                        }
                        off += data.size();
                        AddStat(&GetStats::bytes_fetched, data.size());
                        return Status::Ok();
                      });
  if (!resp.ok()) return resp.status();
  if (resp->status >= 400) return StatusError(*resp, r.url);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("stat " + out, errno);
  if (static_cast<uint64_t>(st.st_size) != r.size)
    return Status::Integrity("after appending, " + out + " holds " + std::to_string(st.st_size) + " bytes, expected " +
                             std::to_string(r.size));
  if (!r.digest.empty()) {
    SILO_ASSIGN_OR_RETURN(std::string d, HashFile(fd.get(), r.size, out));
    if (d != r.digest) return Status::Integrity("the appended file does not match the server's digest");
  }
  SILO_TRY(FinishFile(fd.get(), r));
  Remember(out, r);
  AddStat(&GetStats::files, 1);
  if (!r.digest.empty()) AddStat(&GetStats::verified, 1);
  return Status::Ok();
}

Status Getter::FetchFile(const Remote& r, const std::string& out, int connections) {
  std::string dir = DirName(out);
  std::string tmp = dir + "/." + BaseName(out) + ".silo-get";
  std::string state_path = tmp + ".state";

  Plan plan;
  uint64_t want_parts = o_.parts > 0 ? static_cast<uint64_t>(o_.parts) : 1024;
  plan.part_size = std::max<uint64_t>(o_.min_part_size, (r.size + want_parts - 1) / std::max<uint64_t>(want_parts, 1));
  if (!r.ranges || r.size <= plan.part_size) plan.part_size = std::max<uint64_t>(r.size, 1);
  for (uint64_t s = 0; s < r.size || (r.size == 0 && plan.parts.empty()); s += plan.part_size) {
    auto p = std::make_unique<PartState>();
    p->start = s;
    p->length = std::min(plan.part_size, r.size - s);
    plan.parts.push_back(std::move(p));
    if (r.size == 0) break;
  }

  // Resume when the saved state belongs to this remote file and the temp file is intact.
  Fd fd;
  uint64_t resumed = 0;
  if (!r.validator.empty()) {
    if (auto done = DecodeState(ReadSmallFile(state_path), r, plan)) {
      Fd existing(::open(tmp.c_str(), O_RDWR | O_CLOEXEC));
      struct stat st {};
      if (existing.valid() && ::fstat(existing.get(), &st) == 0 && static_cast<uint64_t>(st.st_size) == r.size) {
        fd = std::move(existing);
        for (size_t i = 0; i < plan.parts.size(); ++i) {
          plan.parts[i]->done = (*done)[i];
          resumed += (*done)[i];
        }
      }
    }
  }
  if (!fd.valid()) {
    ::unlink(state_path.c_str());
    fd = Fd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666));
    if (!fd.valid()) return Status::FromErrno("create " + tmp, errno);
    if (::ftruncate(fd.get(), static_cast<off_t>(r.size)) != 0) return Status::FromErrno("size " + tmp, errno);
  }
  if (resumed > 0) {
    Note(out + ": resuming, " + FormatBytes(resumed) + " of " + FormatBytes(r.size) + " already fetched");
    AddStat(&GetStats::bytes_resumed, resumed);
  }
  if (progress_) progress_->Add(resumed);

  std::mutex state_mu;
  auto save_state = [&] {
    std::lock_guard lock(state_mu);
    if (!r.validator.empty()) WriteFileAtomic(state_path, EncodeState(r, plan)).IgnoreError();  // best effort
  };
  if (resumed == 0 && r.size > plan.part_size) save_state();

  // Hash the contiguous prefix as it completes, overlapping hashing with the download.
  std::mutex hash_mu;
  std::condition_variable hash_cv;
  bool stop_hash = false;
  Sha256 hasher;
  uint64_t hashed = 0;
  Status hash_status;
  auto frontier = [&] {
    uint64_t f = 0;
    for (const auto& p : plan.parts) {
      uint64_t d = p->done.load();
      f = p->start + d;
      if (d < p->length) break;
    }
    return std::min(f, r.size);
  };
  std::thread hash_thread;
  bool hashing = !r.digest.empty();
  if (hashing) {
    hash_thread = std::thread([&] {
      std::vector<uint8_t> buf(kHashBuffer);
      for (;;) {
        uint64_t f = frontier();
        if (hashed >= r.size) return;
        if (f <= hashed) {
          std::unique_lock lock(hash_mu);
          if (stop_hash) return;
          hash_cv.wait_for(lock, std::chrono::milliseconds(20));
          continue;
        }
        while (hashed < f) {
          size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), f - hashed));
          ssize_t n = ::pread(fd.get(), buf.data(), want, static_cast<off_t>(hashed));
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) {
            hash_status = Status::FromErrno("read " + tmp, n < 0 ? errno : EIO);
            return;
          }
          hasher.Update({buf.data(), static_cast<size_t>(n)});
          hashed += static_cast<uint64_t>(n);
        }
      }
    });
  }

  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  Status first_error;
  std::mutex error_mu;
  auto fail = [&](Status s) {
    std::lock_guard lock(error_mu);
    if (first_error.ok()) first_error = std::move(s);
    failed = true;
  };
  auto fetch_part = [&](PartState& part) -> Status {
    Status last;
    for (int attempt = 0; attempt <= o_.retries; ++attempt) {
      if (part.done.load() >= part.length && !(r.size == 0)) return Status::Ok();
      if (failed || Interrupted()) return Status::Interrupted("stopped");
      if (attempt > 0) Backoff(attempt);
      uint64_t off = part.start + part.done.load();
      std::vector<std::string> headers;
      bool ranged = plan.parts.size() > 1 || off > 0;
      if (ranged)
        headers.push_back("Range: bytes=" + std::to_string(off) + "-" + std::to_string(part.start + part.length - 1));
      if (ranged && !r.validator.empty() && r.digest.empty()) headers.push_back("If-Range: " + r.validator);
      uint64_t since_notify = 0;
      auto resp = Request("GET", r.url, headers, [&](long status, ByteSpan data) -> Status {
        if (failed) return Status::Interrupted("stopped");
        if (ranged && status != 206)
          return Status::Conflict(r.url + ": the server ignored the Range request or the file changed (HTTP " +
                                  std::to_string(status) + ")");
        uint64_t at = part.start + part.done.load();
        if (at + data.size() > part.start + part.length)
          return Status::Network(r.url + ": the server sent more than asked for");
        size_t written = 0;
        while (written < data.size()) {
          ssize_t n =
              ::pwrite(fd.get(), data.data() + written, data.size() - written, static_cast<off_t>(at + written));
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) return Status::FromErrno("write " + tmp, errno);
          written += static_cast<size_t>(n);
        }
        part.done += data.size();
        AddStat(&GetStats::bytes_fetched, data.size());
        if (progress_) progress_->Add(data.size());
        since_notify += data.size();
        if (hashing && since_notify >= (1 << 20)) {
          since_notify = 0;
          hash_cv.notify_one();
        }
        return Status::Ok();
      });
      if (!resp.ok()) {
        last = resp.status();
        if (last.code() == Code::kInterrupted || failed) return last;
        if (!Retryable(last)) return last;
        continue;
      }
      if (resp->status == 416 || resp->status == 412)
        return Status::Conflict(r.url + ": the remote file changed (HTTP " + std::to_string(resp->status) + ")");
      if (resp->status >= 500) {
        last = StatusError(*resp, r.url);
        continue;
      }
      if (resp->status >= 400) return StatusError(*resp, r.url);
      if (part.done.load() < part.length) {
        last = Status::Network(r.url + ": the connection closed early");
        continue;
      }
      return Status::Ok();
    }
    return last;
  };

  size_t workers = std::max<size_t>(1, std::min<size_t>(connections, plan.parts.size()));
  std::vector<std::thread> threads;
  for (size_t w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      for (;;) {
        size_t i = next++;
        if (i >= plan.parts.size() || failed) return;
        PartState& part = *plan.parts[i];
        if (part.done.load() >= part.length && r.size > 0) continue;
        Status s = fetch_part(part);
        if (!s.ok()) {
          fail(std::move(s));
          return;
        }
        hash_cv.notify_one();
        save_state();
      }
    });
  }
  for (auto& t : threads) t.join();
  if (hashing) {
    {
      std::lock_guard lock(hash_mu);
      stop_hash = true;
    }
    hash_cv.notify_one();
    hash_thread.join();
  }
  if (failed || Interrupted()) {
    save_state();
    if (Interrupted() && (first_error.ok() || first_error.code() == Code::kInterrupted))
      return Status::Interrupted(out + ": interrupted; run again to continue");
    return first_error;
  }
  if (hashing) {
    if (!hash_status.ok()) return hash_status;
    if (hashed != r.size)
      return Status::IO(tmp + ": hashed " + std::to_string(hashed) + " of " + std::to_string(r.size));
    std::string got = "sha256:" + ToHex(hasher.Final());
    if (got != r.digest) {
      ::unlink(tmp.c_str());
      ::unlink(state_path.c_str());
      return Status::Integrity(r.url + ": the fetched bytes have digest " + got + ", the server says " + r.digest +
                               " (nothing written; run again)");
    }
    AddStat(&GetStats::verified, 1);
  } else {
    AddStat(&GetStats::unverified, 1);
  }
  SILO_TRY(FinishFile(fd.get(), r));
  fd.Close();
  // An existing directory or symlink at the output path is not silently replaced.
  struct stat st {};
  if (::lstat(out.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return Status::InvalidArgument(out + " is a directory; name a file path with -o");
  if (::rename(tmp.c_str(), out.c_str()) != 0) return Status::FromErrno("rename " + tmp + " to " + out, errno);
  ::unlink(state_path.c_str());
  Remember(out, r);
  AddStat(&GetStats::files, 1);
  return Status::Ok();
}

Status Getter::SyncDirectory(const std::string& dir_url_in, const std::string& out, bool allow_append) {
  std::string dir_url = dir_url_in;
  if (!dir_url.ends_with("/")) dir_url += "/";
  SILO_ASSIGN_OR_RETURN(std::vector<ListEntry> entries, List(dir_url));
  if (::mkdir(out.c_str(), 0755) != 0 && errno != EEXIST) return Status::FromErrno("mkdir " + out, errno);
  uint64_t total = 0;
  std::vector<const ListEntry*> small, large;
  for (const auto& e : entries) {
    std::string local = out + "/" + e.path;
    if (e.type == "directory") {
      if (::mkdir(local.c_str(), 0755) != 0 && errno != EEXIST) return Status::FromErrno("mkdir " + local, errno);
      struct stat st {};
      if (::lstat(local.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return Status::InvalidArgument(local + " exists and is not a directory");
      AddStat(&GetStats::dirs, 1);
    } else if (e.type == "file") {
      total += e.size;
      (e.size >= 2 * o_.min_part_size ? large : small).push_back(&e);
    } else if (e.type == "symlink") {
      if (!SafeLinkTarget(e.path, e.target)) {
        Note("skipped symlink " + e.path + " -> " + e.target + " (points outside the tree)");
        AddStat(&GetStats::skipped, 1);
        continue;
      }
      char buf[4096];
      ssize_t n = ::readlink(local.c_str(), buf, sizeof buf);
      if (n >= 0 && std::string_view(buf, static_cast<size_t>(n)) == e.target) continue;
      if (n >= 0) ::unlink(local.c_str());
      if (::symlink(e.target.c_str(), local.c_str()) != 0) return Status::FromErrno("symlink " + local, errno);
      AddStat(&GetStats::symlinks, 1);
    } else {
      Note("skipped " + e.path + " (" + e.type + ")");
      AddStat(&GetStats::skipped, 1);
    }
  }
  // While following, updates are reported as notes, not as a progress line per poll.
  progress_ = std::make_unique<Progress>("get", total, following_ ? Progress::Mode::kQuiet : o_.progress_mode);
  auto remote_of = [&](const ListEntry& e) {
    Remote r;
    r.url = dir_url + EncodeSharePath(e.path);
    r.size = e.size;
    r.digest = e.digest;
    r.validator = e.digest;
    r.ranges = true;
    r.mtime_ns = e.mtime_ns;
    r.mode = e.mode;
    return r;
  };
  // Small files: one connection each, `connections` files at once.
  std::atomic<size_t> next{0};
  Status first_error;
  std::mutex mu;
  std::vector<std::thread> threads;
  size_t workers = std::max<size_t>(1, std::min<size_t>(o_.connections, small.size()));
  for (size_t w = 0; w < workers && !small.empty(); ++w) {
    threads.emplace_back([&] {
      for (;;) {
        size_t i = next++;
        if (i >= small.size() || Interrupted()) return;
        {
          std::lock_guard lock(mu);
          if (!first_error.ok()) return;
        }
        const ListEntry& e = *small[i];
        Status s = UpdateFile(remote_of(e), out + "/" + e.path, 1, allow_append);
        if (!s.ok()) {
          std::lock_guard lock(mu);
          if (first_error.ok()) first_error = std::move(s);
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  SILO_TRY(first_error);
  // Large files: one at a time, each over every connection.
  for (const ListEntry* e : large) {
    if (Interrupted()) break;
    SILO_TRY(UpdateFile(remote_of(*e), out + "/" + e->path, o_.connections, allow_append));
  }
  if (Interrupted()) return Status::Interrupted("get " + dir_url + ": interrupted; run again to continue");
  return Status::Ok();
}

Status Getter::Run() {
  auto start = std::chrono::steady_clock::now();
  bool is_dir = false;
  SILO_ASSIGN_OR_RETURN(Remote r, ProbeFile(o_.url, &is_dir));
  std::string out = o_.output;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  auto finish = [&] {
    if (progress_) progress_->Finish();
    stats_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  if (is_dir) {
    Status s = SyncDirectory(o_.url, out, false);
    finish();
    SILO_TRY(s);
  } else {
    struct stat st {};
    if (::stat(out.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      std::string name = o_.url.substr(0, o_.url.find('?'));
      name = name.substr(name.rfind('/') + 1);
      if (name.empty()) return Status::InvalidArgument(o_.output + " is a directory and the URL names no file");
      out += "/" + name;
    }
    progress_ = std::make_unique<Progress>("get", r.size, o_.progress_mode);
    Status s = UpdateFile(r, out, o_.connections, false);
    finish();
    SILO_TRY(s);
  }
  if (!o_.follow) return Status::Ok();
  progress_.reset();
  following_ = true;
  Note("following " + o_.url + " every " + FormatDuration(o_.interval.count() / 1000.0) + " (Ctrl-C stops)");
  for (;;) {
    auto until = std::chrono::steady_clock::now() + o_.interval;
    while (std::chrono::steady_clock::now() < until && !Interrupted())
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (Interrupted()) break;
    uint64_t before = stats_.bytes_fetched;
    uint64_t files_before = stats_.files;
    Status s;
    if (is_dir) {
      s = SyncDirectory(o_.url, out, true);
    } else {
      bool d = false;
      auto now = ProbeFile(o_.url, &d);
      s = now.ok() ? UpdateFile(*now, out, o_.connections, true) : now.status();
    }
    if (s.code() == Code::kInterrupted) break;
    if (!s.ok()) {
      Note("follow: " + s.message() + " (retrying)");
      continue;
    }
    if (stats_.files != files_before) {
      ++stats_.follow_updates;
      Note("follow: " + std::to_string(stats_.files - files_before) + " file(s) updated, " +
           FormatBytes(stats_.bytes_fetched - before) + " fetched");
    }
  }
  stats_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return Status::Interrupted("follow " + o_.url + ": stopped");
}

}  // namespace

Result<GetStats> Get(const GetOptions& options, GetStats* stats_out) {
  GetStats local;
  GetStats* stats = stats_out ? stats_out : &local;
  if (options.url.empty()) return Status::InvalidArgument("get: no URL");
  if (!options.url.starts_with("http://") && !options.url.starts_with("https://"))
    return Status::InvalidArgument("get " + options.url + ": not an http:// or https:// URL");
  if (options.output.empty()) return Status::InvalidArgument("get " + options.url + ": no output (-o)");
  if (options.connections < 1 || options.connections > 256)
    return Status::InvalidArgument("get: --connections must be 1 to 256");
  if (options.parts < 0 || options.parts > 65536) return Status::InvalidArgument("get: --parts must be 0 to 65536");
  Getter g(options, stats);
  SILO_TRY(g.Run().WithContext("get " + options.url));
  return *stats;
}

std::string FormatGetSummary(const GetStats& s) {
  std::string out = std::to_string(s.files) + (s.files == 1 ? " file, " : " files, ");
  out += FormatBytes(s.bytes_fetched) + " fetched in " + FormatDuration(s.seconds) + " (" +
         FormatRate(s.bytes_fetched, s.seconds) + ")";
  if (s.files_unchanged) out += ", " + std::to_string(s.files_unchanged) + " unchanged";
  if (s.bytes_resumed) out += ", " + FormatBytes(s.bytes_resumed) + " resumed";
  if (s.dirs) out += ", " + std::to_string(s.dirs) + " dirs";
  if (s.symlinks) out += ", " + std::to_string(s.symlinks) + " symlinks";
  if (s.skipped) out += ", " + std::to_string(s.skipped) + " skipped";
  out += ", " + std::to_string(s.verified) + " verified";
  if (s.unverified) out += ", " + std::to_string(s.unverified) + " checked by size only (no digest from the server)";
  if (s.follow_updates) out += ", " + std::to_string(s.follow_updates) + " follow updates";
  return out;
}

}  // namespace silo::transfer
