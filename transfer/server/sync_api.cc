#include "transfer/server/sync_api.h"

#include <cstring>
#include <sstream>

#include "index/image.h"
#include "index/snapshot.h"
#include "transfer/sync.h"

namespace silo::server {
namespace {

// A request body of digest lines: 72 bytes a line at most.
constexpr size_t kMaxBody = transfer::kMaxDigestsPerRequest * 80 + 4096;

Result<std::string> ReadBody(Request& req) {
  std::string body;
  std::vector<uint8_t> buf(64 * 1024);
  while (true) {
    SILO_ASSIGN_OR_RETURN(size_t n, req.body->Read(buf));
    if (n == 0) break;
    body.append(reinterpret_cast<const char*>(buf.data()), n);
    if (body.size() > kMaxBody) return Status::InvalidArgument("request body too large");
  }
  return body;
}

std::vector<std::string> Lines(const std::string& body) {
  std::vector<std::string> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return s;
}

// Reads the request body and parses its digest lines; at most kMaxDigestsPerRequest,
// SHA-256 only.
Result<std::vector<store::Digest>> PostedDigests(Request& req) {
  SILO_ASSIGN_OR_RETURN(std::string body, ReadBody(req));
  std::vector<store::Digest> out;
  for (const auto& line : Lines(body)) {
    auto d = store::Digest::Parse(line);
    if (!d.ok() || !d->is_sha256()) return Status::InvalidArgument("\"" + OneLine(line) + "\" is not a sha256 digest");
    out.push_back(*d);
    if (out.size() > transfer::kMaxDigestsPerRequest) {
      return Status::InvalidArgument("more than " + std::to_string(transfer::kMaxDigestsPerRequest) + " digests");
    }
  }
  if (out.empty()) return Status::InvalidArgument("no digest given");
  return out;
}

Response Error(const Status& s) {
  int code = s.code() == Code::kInvalidArgument ? 400 : s.code() == Code::kNotFound ? 404 : 500;
  return Response::Text(code, OneLine(s.message()) + "\n");
}

// The frames of several objects as one stream: header (SHA-256, size big-endian), bytes,
// next. Readers are opened one at a time as the stream reaches them.
class FramedReader : public store::ObjectReader {
 public:
  FramedReader(store::Store& store, std::vector<std::pair<store::Digest, uint64_t>> objects)
      : store_(store), objects_(std::move(objects)) {
    info_.size = 0;
    for (const auto& [d, size] : objects_) info_.size += 40 + size;
  }
  const store::ObjectInfo& info() const override { return info_; }

  Result<size_t> Read(std::span<uint8_t> buf) override {
    size_t done = 0;
    while (done < buf.size() && index_ < objects_.size()) {
      const auto& [digest, size] = objects_[index_];
      if (offset_ < 40) {
        uint8_t header[40];
        std::memcpy(header, digest.bytes().data(), 32);
        for (int i = 0; i < 8; ++i) header[32 + i] = static_cast<uint8_t>(size >> (56 - 8 * i));
        size_t n = std::min<size_t>(40 - offset_, buf.size() - done);
        std::memcpy(buf.data() + done, header + offset_, n);
        done += n;
        offset_ += n;
        continue;
      }
      if (offset_ - 40 == size) {
        reader_.reset();
        ++index_;
        offset_ = 0;
        continue;
      }
      if (!reader_) {
        auto r = store_.NewReader(digest);
        if (!r.ok()) return r.status().WithContext("sync: object " + digest.ToString());
        reader_ = std::move(r).value();
      }
      SILO_ASSIGN_OR_RETURN(size_t n, reader_->Read(buf.subspan(done)));
      if (n == 0) return Status::Integrity("sync: object " + digest.ToString() + " ended early");
      done += n;
      offset_ += n;
    }
    position_ += done;
    return done;
  }

  // The stream is read front to back: only the current position is accepted.
  Status Seek(uint64_t offset) override {
    if (offset == position_) return Status::Ok();
    return Status::Unsupported("sync: the object stream cannot seek");
  }

 private:
  store::Store& store_;
  std::vector<std::pair<store::Digest, uint64_t>> objects_;
  store::ObjectInfo info_;
  size_t index_ = 0;
  uint64_t offset_ = 0;    // within the current frame
  uint64_t position_ = 0;  // within the stream
  std::unique_ptr<store::ObjectReader> reader_;
};

}  // namespace

bool IsSyncPath(std::string_view path) {
  return path.starts_with("/silo/v1/sync/");
}

void SyncApi::Register(Router& router) {
  router.Add("/silo/v1/sync/resolve", [this](Request& req) { return Resolve(req); });
  router.Add("/silo/v1/sync/links", [this](Request& req) { return Links(req); });
  router.Add("/silo/v1/sync/objects", [this](Request& req) { return Objects(req); });
}

Response SyncApi::Resolve(Request& req) {
  if (req.method != "POST") return Response::Text(405, "POST only\n");
  auto body = ReadBody(req);
  if (!body.ok()) return Error(body.status());
  std::string out;
  auto add = [&out](const std::string& name, const store::Digest& d) {
    out += "ref " + name + " " + d.ToString() + "\n";
  };
  auto none = [&out](const std::string& sel, const std::string& why) {
    out += "none " + OneLine(sel) + "\t" + OneLine(why) + "\n";
  };
  auto lines = Lines(*body);
  if (lines.empty()) return Response::Text(400, "no selector given\n");
  for (const auto& sel : lines) {
    if (sel.starts_with("snapshot/")) {
      std::string rest = sel.substr(9);
      if (auto target = store_.GetRef(sel); target.ok() && *target) {  // a full ref name
        add(sel, **target);
        continue;
      }
      auto spec = index::ParseSnapshotSpec(rest);
      if (!spec.ok() || spec->has_path) {
        none(sel, spec.ok() ? "a path cannot be synced alone" : spec.status().message());
        continue;
      }
      if (spec->id.empty()) {
        auto all = index::ListSnapshots(store_, spec->name);
        if (!all.ok() || all->empty()) {
          none(sel, all.ok() ? "no snapshot named " + spec->name : all.status().message());
          continue;
        }
        for (const auto& s : *all) add(s.ref, s.digest);
      } else {
        auto one = index::ResolveSnapshot(store_, *spec);
        if (!one.ok()) {
          none(sel, one.status().message());
          continue;
        }
        add(one->ref, one->digest);
      }
    } else if (sel.starts_with("image/")) {
      if (sel.ends_with('*') || sel.ends_with('/')) {
        std::string prefix = sel.ends_with('*') ? sel.substr(0, sel.size() - 1) : sel;
        auto refs = store_.ListRefs(prefix);
        if (!refs.ok() || refs->empty()) {
          none(sel, refs.ok() ? "no image ref under " + sel : refs.status().message());
          continue;
        }
        for (const auto& r : *refs) add(r.name, r.target);
      } else {
        auto target = store_.GetRef(sel);
        if (!target.ok() || !*target) {
          none(sel, target.ok() ? "no ref " + sel : target.status().message());
          continue;
        }
        add(sel, **target);
      }
    } else {
      auto found = index::FindImages(store_, sel);
      if (!found.ok()) {
        none(sel, found.status().message());
        continue;
      }
      for (const auto& r : *found) add(r.name, r.target);
    }
  }
  return Response::Text(200, std::move(out));
}

Response SyncApi::Links(Request& req) {
  if (req.method != "POST") return Response::Text(405, "POST only\n");
  auto digests = PostedDigests(req);
  if (!digests.ok()) return Error(digests.status());
  std::string out;
  out.reserve(digests->size() * 80);
  for (const auto& d : *digests) {
    out += d.ToString();
    auto info = store_.Stat(d);
    if (!info.ok()) {
      if (info.status().code() != Code::kNotFound) return Error(info.status());
      out += " -\n";
      continue;
    }
    out += " " + std::to_string(info->size) + (info->sha1 ? " sha1" : " -");
    for (const auto& l : info->links) out += " " + l.ToString();
    out += "\n";
  }
  return Response::Text(200, std::move(out));
}

Response SyncApi::Objects(Request& req) {
  if (req.method != "POST") return Response::Text(405, "POST only\n");
  auto digests = PostedDigests(req);
  if (!digests.ok()) return Error(digests.status());
  std::vector<std::pair<store::Digest, uint64_t>> objects;
  for (const auto& d : *digests) {
    auto info = store_.Stat(d);
    if (!info.ok()) {
      if (info.status().code() != Code::kNotFound) return Error(info.status());
      continue;  // left out; the client notices
    }
    objects.emplace_back(d, info->size);
  }
  Response r = Response::Object(std::make_unique<FramedReader>(store_, std::move(objects)),
                                std::string(transfer::kSyncObjectsType));
  r.ranges = false;
  return r;
}

}  // namespace silo::server
