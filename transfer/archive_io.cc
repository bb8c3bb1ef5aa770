#include "transfer/archive_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "util/fd.h"

namespace silo::transfer {
namespace {

std::string BaseName(std::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string DirOf(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? "" : std::string(path.substr(0, slash + 1));
}

std::string TempName(const std::string& final_path) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[40];
  std::snprintf(buf, sizeof buf, ".silo-tmp-%016llx", static_cast<unsigned long long>(rng()));
  return DirOf(final_path) + buf;
}

std::string PartName(const std::string& base, size_t i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, ".%03zu", i);
  return base + buf;
}

// "X.001" -> ("X", 1); nullopt when the name has no three-or-more-digit numeric suffix.
std::optional<std::pair<std::string, size_t>> SplitPartName(std::string_view path) {
  size_t dot = path.rfind('.');
  if (dot == std::string_view::npos || path.size() - dot - 1 < 3 || path.find('/', dot) != std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view num = path.substr(dot + 1);
  if (!std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  return std::make_pair(std::string(path.substr(0, dot)), static_cast<size_t>(std::stoull(std::string(num))));
}

bool Exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// The "<hex>  <name>" lines of X.sha256, by part file name.
Result<std::map<std::string, std::string>> ReadSums(const std::string& list) {
  std::map<std::string, std::string> out;
  std::ifstream in(list);
  if (!in) return out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.size() < 67 || line[64] != ' ') return Status::Corruption(list + ": malformed line '" + line + "'");
    std::string name = line.substr(66);
    if (line[65] != ' ' && line[65] != '*') return Status::Corruption(list + ": malformed line '" + line + "'");
    out[name] = line.substr(0, 64);
  }
  return out;
}

}  // namespace

Result<Compression> ParseCompression(std::string_view name) {
  if (name == "none") return Compression::kNone;
  if (name == "gzip" || name == "gz") return Compression::kGzip;
  if (name == "zstd" || name == "zst") return Compression::kZstd;
  return Status::InvalidArgument("compression '" + std::string(name) + "': expected none, gzip or zstd");
}

std::optional<Compression> CompressionOfPath(std::string_view path) {
  if (path.ends_with(".tar")) return Compression::kNone;
  if (path.ends_with(".tar.gz") || path.ends_with(".tgz")) return Compression::kGzip;
  if (path.ends_with(".tar.zst") || path.ends_with(".tzst")) return Compression::kZstd;
  return std::nullopt;
}

std::string PartsListPath(std::string_view base) {
  return std::string(base) + ".sha256";
}

// ---------------------------------------------------------------- writing

struct PartWriter::Zstd {
  struct Free {
    void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
  };
  std::unique_ptr<ZSTD_CCtx, Free> ctx{ZSTD_createCCtx()};
  std::vector<uint8_t> out = std::vector<uint8_t>(ZSTD_CStreamOutSize());
};

PartWriter::PartWriter(std::string out_path, uint64_t split_size, bool zstd, int zstd_threads, int zstd_level)
    : out_(std::move(out_path)), split_(split_size) {
  if (zstd) {
    zstd_ = std::make_unique<Zstd>();
    int threads = zstd_threads > 0 ? zstd_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    ZSTD_CCtx_setParameter(zstd_->ctx.get(), ZSTD_c_compressionLevel, zstd_level);
    // nbWorkers >= 1 always (never 0): the output is then the same for any thread count.
    ZSTD_CCtx_setParameter(zstd_->ctx.get(), ZSTD_c_nbWorkers, threads);
    ZSTD_CCtx_setParameter(zstd_->ctx.get(), ZSTD_c_checksumFlag, 1);
  }
}

PartWriter::~PartWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) {
    for (const auto& t : temps_) ::unlink(t.c_str());
  }
}

Status PartWriter::OpenPart() {
  std::string final_path = split_ ? PartName(out_, finals_.size()) : out_;
  std::string temp = TempName(final_path);
  fd_ = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) return Status::FromErrno("create " + temp, errno);
  temps_.push_back(temp);
  finals_.push_back(final_path);
  part_bytes_ = 0;
  part_hash_ = std::make_unique<Sha256>();
  return Status::Ok();
}

Status PartWriter::ClosePart() {
  if (fd_ < 0) return Status::Ok();
  if (::fsync(fd_) != 0) return Status::FromErrno("fsync " + temps_.back(), errno);
  if (::close(fd_) != 0) {
    fd_ = -1;
    return Status::FromErrno("close " + temps_.back(), errno);
  }
  fd_ = -1;
  part_sums_.push_back(ToHex(part_hash_->Final()));
  return Status::Ok();
}

Status PartWriter::Emit(const uint8_t* data, size_t size) {
  while (size > 0) {
    if (fd_ < 0 || (split_ && part_bytes_ == split_)) {
      SILO_TRY(ClosePart());
      SILO_TRY(OpenPart());
    }
    size_t n = size;
    if (split_) n = static_cast<size_t>(std::min<uint64_t>(n, split_ - part_bytes_));
    ssize_t w = ::write(fd_, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("write " + finals_.back(), errno);
    }
    ByteSpan span(data, static_cast<size_t>(w));
    whole_.Update(span);
    part_hash_->Update(span);
    part_bytes_ += static_cast<uint64_t>(w);
    bytes_ += static_cast<uint64_t>(w);
    data += w;
    size -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status PartWriter::Write(const void* data, size_t size) {
  if (!zstd_) return Emit(static_cast<const uint8_t*>(data), size);
  ZSTD_inBuffer in{data, size, 0};
  while (in.pos < in.size) {
    ZSTD_outBuffer out{zstd_->out.data(), zstd_->out.size(), 0};
    size_t rc = ZSTD_compressStream2(zstd_->ctx.get(), &out, &in, ZSTD_e_continue);
    if (ZSTD_isError(rc)) return Status::IO(std::string("zstd: ") + ZSTD_getErrorName(rc));
    SILO_TRY(Emit(zstd_->out.data(), out.pos));
  }
  return Status::Ok();
}

Status PartWriter::Commit() {
  if (zstd_) {
    for (;;) {
      ZSTD_inBuffer in{nullptr, 0, 0};
      ZSTD_outBuffer out{zstd_->out.data(), zstd_->out.size(), 0};
      size_t left = ZSTD_compressStream2(zstd_->ctx.get(), &out, &in, ZSTD_e_end);
      if (ZSTD_isError(left)) return Status::IO(std::string("zstd: ") + ZSTD_getErrorName(left));
      SILO_TRY(Emit(zstd_->out.data(), out.pos));
      if (left == 0) break;
    }
  }
  if (fd_ < 0 && finals_.empty()) SILO_TRY(OpenPart());  // an empty stream is still a file
  SILO_TRY(ClosePart());
  sha256_hex_ = ToHex(whole_.Final());
  if (split_) {
    // The checksum list first: parts without a list would be accepted unchecked.
    std::string list;
    for (size_t i = 0; i < finals_.size(); ++i) list += part_sums_[i] + "  " + BaseName(finals_[i]) + "\n";
    std::string final_list = PartsListPath(out_);
    std::string temp = TempName(final_list);
    {
      Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
      if (!fd.valid()) return Status::FromErrno("create " + temp, errno);
      temps_.push_back(temp);
      if (::write(fd.get(), list.data(), list.size()) != static_cast<ssize_t>(list.size()) || ::fsync(fd.get()) != 0) {
        return Status::FromErrno("write " + temp, errno);
      }
    }
    // Stale parts of an earlier, longer export under the same name would join this one.
    for (size_t i = finals_.size();; ++i) {
      std::string stale = PartName(out_, i);
      if (!Exists(stale)) break;
      if (::unlink(stale.c_str()) != 0) return Status::FromErrno("remove stale part " + stale, errno);
    }
    if (::rename(temp.c_str(), final_list.c_str()) != 0) return Status::FromErrno("rename to " + final_list, errno);
  }
  for (size_t i = 0; i < finals_.size(); ++i) {
    if (::rename(temps_[i].c_str(), finals_[i].c_str()) != 0) {
      return Status::FromErrno("rename to " + finals_[i], errno);
    }
  }
  committed_ = true;
  return Status::Ok();
}

// ---------------------------------------------------------------- reading

Result<std::unique_ptr<PartReader>> PartReader::Open(std::vector<std::string> paths) {
  if (paths.empty()) return Status::InvalidArgument("no archive given");
  std::unique_ptr<PartReader> r(new PartReader());
  r->paths_ = std::move(paths);
  auto split = SplitPartName(r->paths_[0]);
  if (split && (r->paths_.size() > 1 || split->second == 0)) {
    SILO_ASSIGN_OR_RETURN(auto sums, ReadSums(PartsListPath(split->first)));
    if (!sums.empty()) {
      for (const auto& p : r->paths_) {
        auto it = sums.find(BaseName(p));
        if (it == sums.end()) {
          return Status::Corruption("part " + p + " is not listed in " + PartsListPath(split->first));
        }
        r->sums_.push_back(it->second);
      }
    }
  }
  for (const auto& p : r->paths_) {
    if (!Exists(p)) return Status::NotFound("archive " + p + ": no such file");
  }
  return r;
}

PartReader::~PartReader() {
  if (fd_ >= 0) ::close(fd_);
}

std::string PartReader::display_name() const {
  auto split = SplitPartName(paths_[0]);
  if (split && paths_.size() > 1) return split->first;
  return paths_[0];
}

Status PartReader::Advance() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    if (!sums_.empty()) {
      std::string got = ToHex(hash_.Final());
      if (got != sums_[next_ - 1]) {
        return Status::Corruption("part " + current_ + ": checksum " + got.substr(0, 12) + "… differs from " +
                                  sums_[next_ - 1].substr(0, 12) +
                                  "… in the parts list (truncated, corrupted or out of order)");
      }
    }
  }
  if (next_ == paths_.size()) return Status::Ok();
  current_ = paths_[next_++];
  fd_ = ::open(current_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) return Status::FromErrno("open part " + current_, errno);
  return Status::Ok();
}

Result<size_t> PartReader::Read(void* buf, size_t size) {
  for (;;) {
    if (fd_ < 0) {
      if (next_ == paths_.size()) return size_t{0};
      SILO_TRY(Advance());
    }
    ssize_t n = ::read(fd_, buf, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("read " + current_, errno);
    }
    if (n > 0) {
      if (!sums_.empty()) hash_.Update(ByteSpan(static_cast<const uint8_t*>(buf), static_cast<size_t>(n)));
      return static_cast<size_t>(n);
    }
    SILO_TRY(Advance());
    if (fd_ < 0) return size_t{0};
  }
}

Result<std::vector<std::vector<std::string>>> ResolveArchiveInputs(const std::vector<std::string>& inputs) {
  std::vector<std::vector<std::string>> out;
  std::map<std::string, size_t> by_base;  // split base -> index in out
  for (const auto& in : inputs) {
    auto split = SplitPartName(in);
    if (!split || (!Exists(PartName(split->first, 0)) && !Exists(PartsListPath(split->first)))) {
      out.push_back({in});
      continue;
    }
    const std::string& base = split->first;
    if (by_base.count(base)) continue;  // every part of it was collected already
    std::vector<std::string> parts;
    for (size_t i = 0; Exists(PartName(base, i)); ++i) parts.push_back(PartName(base, i));
    SILO_ASSIGN_OR_RETURN(auto sums, ReadSums(PartsListPath(base)));
    if (!sums.empty()) {
      for (size_t i = 0; i < sums.size(); ++i) {
        if (!sums.count(BaseName(PartName(base, i)))) {
          return Status::Corruption(PartsListPath(base) + " does not list part " + PartName(base, i));
        }
        if (i >= parts.size())
          return Status::NotFound("archive " + base + ": part " + PartName(base, i) + " is missing");
      }
      if (parts.size() > sums.size()) {
        return Status::Corruption("archive " + base + ": part " + parts[sums.size()] + " is not in " +
                                  PartsListPath(base));
      }
    }
    if (parts.empty()) return Status::NotFound("archive " + base + ": part " + PartName(base, 0) + " is missing");
    by_base[base] = out.size();
    out.push_back(std::move(parts));
  }
  return out;
}

}  // namespace silo::transfer
