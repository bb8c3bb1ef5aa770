#include "transfer/sync.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "util/interrupt.h"

namespace silo::transfer {
namespace {

using store::Digest;
using store::DigestHash;

// Objects up to this size are collected in memory and stored with one Put; larger ones
// stream through an ObjectWriter.
constexpr uint64_t kSmallObject = 1 << 20;
constexpr size_t kFrameHeader = 32 + 8;

std::string FirstLine(std::string_view s) {
  s = s.substr(0, s.find('\n'));
  if (s.size() > 300) s = s.substr(0, 300);
  return std::string(s);
}

std::vector<std::string_view> Words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    size_t j = line.find(' ', i);
    if (j == std::string_view::npos) j = line.size();
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// What the server said about a missing object.
struct Node {
  uint64_t size = 0;
  std::vector<Digest> links;
  bool sha1_alias = false;  // record a sha1: alias, as the server's object has
  int height = -1;          // 0: links to nothing missing
};

}  // namespace

struct Syncer::Impl {
  store::Store& store;
  SyncOptions options;
  HttpClient client;
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> objects_fetched{0};
  std::atomic<uint64_t> bytes_fetched{0};

  Impl(store::Store& s, SyncOptions o) : store(s), options(std::move(o)), client(options.http) {
    while (options.url.ends_with('/')) options.url.pop_back();
  }

  HttpRequest Post(const std::string& path, std::string body) {
    HttpRequest req;
    req.method = "POST";
    req.url = options.url + path;
    req.headers = {"Content-Type: text/plain"};
    if (!options.authorization.empty()) req.headers.push_back("Authorization: " + options.authorization);
    req.body = std::move(body);
    req.max_body = 256 << 20;
    return req;
  }

  Status CheckAnswer(const HttpRequest& req, const HttpResponse& res) {
    if (res.status == 200) return Status::Ok();
    std::string what = "sync: " + req.url + " answered " + std::to_string(res.status);
    if (res.status == 401 || res.status == 403) {
      return Status::Conflict(what +
                              " (access refused: give a read token with --token or --user): " + FirstLine(res.body));
    }
    if (res.status == 404) {
      return Status::Unsupported(what + " (is it a silo serve that supports sync?): " + FirstLine(res.body));
    }
    return Status::Network(what + ": " + FirstLine(res.body));
  }

  Result<std::string> Call(const std::string& path, std::string body) {
    HttpRequest req = Post(path, std::move(body));
    ++requests;
    SILO_ASSIGN_OR_RETURN(HttpResponse res, client.Do(req));
    SILO_TRY(CheckAnswer(req, res));
    return std::move(res.body);
  }

  // Links of `digests` (missing locally), in batches.
  Status FetchLinks(const std::vector<Digest>& digests, std::unordered_map<Digest, Node, DigestHash>& nodes,
                    uint64_t& absent) {
    for (size_t at = 0; at < digests.size(); at += kMaxDigestsPerRequest) {
      size_t end = std::min(digests.size(), at + kMaxDigestsPerRequest);
      std::string body;
      for (size_t i = at; i < end; ++i) body += digests[i].ToString() + "\n";
      SILO_ASSIGN_OR_RETURN(std::string answer, Call("/silo/v1/sync/links", std::move(body)));
      std::istringstream lines(answer);
      std::string line;
      size_t i = at;
      while (std::getline(lines, line)) {
        if (line.empty()) continue;
        auto w = Words(line);
        if (i >= end || w.size() < 2 || w[0] != digests[i].ToString()) {
          return Status::Corruption("sync: " + options.url + ": links answer out of step at \"" + FirstLine(line) +
                                    "\"");
        }
        if (w[1] == "-") {
          ++absent;
        } else {
          Node n;
          auto [p, ec] = std::from_chars(w[1].data(), w[1].data() + w[1].size(), n.size);
          if (ec != std::errc() || p != w[1].data() + w[1].size()) {
            return Status::Corruption("sync: " + options.url + ": bad size in \"" + FirstLine(line) + "\"");
          }
          if (w.size() < 3 || (w[2] != "-" && w[2] != "sha1")) {
            return Status::Corruption("sync: " + options.url + ": bad alias field in \"" + FirstLine(line) + "\"");
          }
          n.sha1_alias = w[2] == "sha1";
          for (size_t k = 3; k < w.size(); ++k) {
            auto d = Digest::Parse(w[k]);
            if (!d.ok() || !d->is_sha256()) {
              return Status::Corruption("sync: " + options.url + ": bad link in \"" + FirstLine(line) + "\"");
            }
            n.links.push_back(*d);
          }
          nodes.emplace(digests[i], std::move(n));
        }
        ++i;
      }
      if (i != end) return Status::Corruption("sync: " + options.url + ": links answer is short");
    }
    return Status::Ok();
  }

  // Heights in the graph of missing objects: an object comes after everything it links to.
  static void ComputeHeights(std::unordered_map<Digest, Node, DigestHash>& nodes) {
    for (auto& [root, root_node] : nodes) {
      if (root_node.height >= 0) continue;
      // Iterative post-order walk.
      std::vector<std::pair<Node*, size_t>> stack{{&root_node, 0}};
      root_node.height = -2;  // on the stack
      while (!stack.empty()) {
        auto& [node, next] = stack.back();
        if (next < node->links.size()) {
          auto it = nodes.find(node->links[next++]);
          if (it != nodes.end() && it->second.height == -1) {
            it->second.height = -2;
            stack.push_back({&it->second, 0});
          }
          continue;
        }
        int h = 0;
        for (const auto& l : node->links) {
          auto it = nodes.find(l);
          // A cycle (impossible for content addresses) would meet -2: ignored.
          if (it != nodes.end() && it->second.height >= 0) h = std::max(h, it->second.height + 1);
        }
        node->height = h;
        stack.pop_back();
      }
    }
  }

  // Receives the framed objects of one batch and commits each as it completes.
  class FrameSink {
   public:
    FrameSink(Impl& impl, const std::unordered_map<Digest, Node, DigestHash>& nodes, const std::vector<Digest>& batch)
        : impl_(impl), nodes_(nodes) {
      for (const auto& d : batch) expected_.insert(d);
    }

    Status Feed(ByteSpan data) {
      if (Interrupted()) return Status::Interrupted("sync interrupted");
      while (!data.empty()) {
        if (!in_body_) {
          size_t take = std::min(kFrameHeader - header_.size(), data.size());
          header_.append(reinterpret_cast<const char*>(data.data()), take);
          data = data.subspan(take);
          if (header_.size() == kFrameHeader) SILO_TRY(StartObject());
          continue;
        }
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size()));
        if (writer_) {
          SILO_TRY(writer_->Write(data.first(take)).WithContext("sync: object " + current_.ToString()));
        } else {
          small_.append(reinterpret_cast<const char*>(data.data()), take);
        }
        data = data.subspan(take);
        remaining_ -= take;
        if (impl_.options.on_bytes) impl_.options.on_bytes(take);
        if (remaining_ == 0) SILO_TRY(FinishObject());
      }
      return Status::Ok();
    }

    // Everything asked for arrived whole.
    Status Finish() {
      if (in_body_ || !header_.empty()) {
        return Status::Network("sync: " + impl_.options.url + ": the answer ended inside object " +
                               (in_body_ ? current_.ToString() : std::string("a frame header")));
      }
      if (!expected_.empty()) {
        return Status::NotFound("sync: " + impl_.options.url + " did not send " + std::to_string(expected_.size()) +
                                " object(s) it listed, e.g. " + expected_.begin()->ToString() +
                                " (removed on the server meanwhile?)");
      }
      return Status::Ok();
    }

   private:
    Status StartObject() {
      Digest d;
      std::array<uint8_t, 32> raw;
      std::memcpy(raw.data(), header_.data(), 32);
      d = Digest::Sha256(raw);
      uint64_t size = 0;
      for (size_t i = 32; i < kFrameHeader; ++i) size = (size << 8) | static_cast<uint8_t>(header_[i]);
      header_.clear();
      if (expected_.erase(d) == 0) {
        return Status::Corruption("sync: " + impl_.options.url + " sent " + d.ToString() + ", which was not asked for");
      }
      const Node& node = nodes_.at(d);
      if (size != node.size) {
        return Status::Integrity("sync: object " + d.ToString() + ": " + std::to_string(size) + " bytes sent, " +
                                 std::to_string(node.size) + " listed");
      }
      current_ = d;
      remaining_ = size;
      in_body_ = true;
      opts_ = {};
      opts_.expected_digest = d;
      opts_.expected_size = size;
      opts_.links = node.links;
      opts_.sha1_alias = node.sha1_alias;
      small_.clear();
      writer_.reset();
      if (size > kSmallObject) {
        SILO_ASSIGN_OR_RETURN(writer_, impl_.store.NewWriter(opts_));
      }
      if (remaining_ == 0) return FinishObject();
      return Status::Ok();
    }

    Status FinishObject() {
      in_body_ = false;
      Result<store::ObjectInfo> info =
          writer_ ? writer_->Commit()
                  : impl_.store.Put(ByteSpan(reinterpret_cast<const uint8_t*>(small_.data()), small_.size()), opts_);
      writer_.reset();
      if (!info.ok()) return info.status().WithContext("sync: object " + current_.ToString());
      ++impl_.objects_fetched;
      impl_.bytes_fetched += info->size;
      small_.clear();
      return Status::Ok();
    }

    Impl& impl_;
    const std::unordered_map<Digest, Node, DigestHash>& nodes_;
    std::unordered_set<Digest, DigestHash> expected_;
    std::string header_;
    bool in_body_ = false;
    Digest current_;
    uint64_t remaining_ = 0;
    store::PutOptions opts_;
    std::string small_;
    std::unique_ptr<store::ObjectWriter> writer_;
  };

  Status FetchBatch(const std::unordered_map<Digest, Node, DigestHash>& nodes, const std::vector<Digest>& batch) {
    std::string body;
    for (const auto& d : batch) body += d.ToString() + "\n";
    HttpRequest req = Post("/silo/v1/sync/objects", std::move(body));
    FrameSink sink(*this, nodes, batch);
    Status feed_error;
    req.on_body = [&](long, ByteSpan data) {
      Status s = sink.Feed(data);
      if (!s.ok()) feed_error = s;
      return s;
    };
    ++requests;
    auto res = client.Do(req);
    if (!feed_error.ok()) return feed_error;
    if (!res.ok()) return res.status();
    SILO_TRY(CheckAnswer(req, *res));
    return sink.Finish();
  }

  // Runs the batches on up to `connections` threads; the first error stops new batches.
  Status FetchAll(const std::unordered_map<Digest, Node, DigestHash>& nodes,
                  const std::vector<std::vector<Digest>>& batches) {
    std::atomic<size_t> next{0};
    std::mutex mu;
    Status first;
    auto work = [&] {
      while (true) {
        {
          std::lock_guard lock(mu);
          if (!first.ok()) return;
        }
        size_t i = next++;
        if (i >= batches.size()) return;
        Status s = FetchBatch(nodes, batches[i]);
        if (!s.ok()) {
          std::lock_guard lock(mu);
          if (first.ok()) first = s;
        }
      }
    };
    size_t n = std::min<size_t>(std::max(1, options.connections), batches.size());
    std::vector<std::thread> threads;
    for (size_t i = 1; i < n; ++i) threads.emplace_back(work);
    work();
    for (auto& t : threads) t.join();
    return first;
  }

  Result<SyncReport> Sync(const std::vector<std::string>& selectors) {
    auto start = std::chrono::steady_clock::now();
    SyncReport report;
    if (selectors.empty()) return Status::InvalidArgument("sync: name images or snapshots to copy");
    std::string body;
    for (const auto& s : selectors) {
      if (s.empty() || s.find_first_of("\r\n") != std::string::npos) {
        return Status::InvalidArgument("sync: bad selector \"" + s + "\"");
      }
      body += s + "\n";
    }
    // 1. Resolve.
    SILO_ASSIGN_OR_RETURN(std::string answer, Call("/silo/v1/sync/resolve", std::move(body)));
    std::map<std::string, Digest> refs;
    {
      std::istringstream lines(answer);
      std::string line;
      while (std::getline(lines, line)) {
        if (line.starts_with("ref ")) {
          auto w = Words(line);
          auto d = w.size() == 3 ? Digest::Parse(w[2]) : Result<Digest>(Status::InvalidArgument(""));
          if (!d.ok() || !d->is_sha256() || !store::ValidateRefName(w[1]).ok()) {
            return Status::Corruption("sync: " + options.url + ": bad resolve line \"" + FirstLine(line) + "\"");
          }
          refs[std::string(w[1])] = *d;
        } else if (line.starts_with("none ")) {
          size_t tab = line.find('\t');
          report.unmatched.push_back({line.substr(5, tab == std::string::npos ? std::string::npos : tab - 5),
                                      tab == std::string::npos ? "nothing selected" : line.substr(tab + 1)});
        }
      }
    }
    if (refs.empty()) {
      std::string why = report.unmatched.empty() ? "nothing selected" : report.unmatched.front().second;
      return Status::NotFound("sync: " + options.url + ": " + why);
    }

    // 2. Walk level by level.
    std::unordered_map<Digest, Node, DigestHash> nodes;
    std::unordered_set<Digest, DigestHash> seen;
    std::vector<Digest> level;
    std::unordered_set<Digest, DigestHash> root_missing;
    for (const auto& [name, d] : refs) {
      if (seen.insert(d).second) level.push_back(d);
    }
    while (!level.empty()) {
      if (Interrupted()) return Status::Interrupted("sync interrupted");
      ++report.levels;
      report.objects_checked += level.size();
      SILO_ASSIGN_OR_RETURN(std::vector<Digest> missing, store.Missing(level));
      if (missing.empty()) break;
      if (report.levels == 1) root_missing.insert(missing.begin(), missing.end());
      SILO_TRY(FetchLinks(missing, nodes, report.absent_on_server));
      std::vector<Digest> next;
      for (const auto& d : missing) {
        auto it = nodes.find(d);
        if (it == nodes.end()) continue;
        for (const auto& l : it->second.links) {
          if (seen.insert(l).second) next.push_back(l);
        }
      }
      level = std::move(next);
    }
    for (const auto& [name, d] : refs) {
      if (root_missing.contains(d) && !nodes.contains(d)) {
        return Status::NotFound("sync: " + options.url + " lacks " + d.ToString() + ", the target of " + name);
      }
    }
    report.objects_missing = nodes.size();
    uint64_t plan_bytes = 0;
    for (const auto& [d, n] : nodes) plan_bytes += n.size;
    if (options.on_plan) options.on_plan(nodes.size(), plan_bytes);

    // 3. Fetch, children first.
    if (!options.dry_run && !nodes.empty()) {
      ComputeHeights(nodes);
      std::map<int, std::vector<Digest>> by_height;
      for (const auto& [d, n] : nodes) by_height[n.height].push_back(d);
      for (auto& [h, digests] : by_height) {
        // Small objects grouped, each large one alone; largest first so the connections
        // finish together.
        std::sort(digests.begin(), digests.end(),
                  [&](const Digest& a, const Digest& b) { return nodes.at(a).size > nodes.at(b).size; });
        std::vector<std::vector<Digest>> batches;
        uint64_t bytes = 0;
        for (const auto& d : digests) {
          uint64_t sz = nodes.at(d).size;
          if (batches.empty() || batches.back().size() >= options.batch_objects ||
              (bytes > 0 && bytes + sz > options.batch_bytes)) {
            batches.emplace_back();
            bytes = 0;
          }
          batches.back().push_back(d);
          bytes += sz;
        }
        Status s = FetchAll(nodes, batches);
        if (!s.ok()) {
          report.objects_fetched = objects_fetched;
          report.bytes_fetched = bytes_fetched;
          return s;
        }
      }
    }

    // 4. Refs.
    for (const auto& [name, d] : refs) {
      SyncedRef r{name, d, false};
      if (!options.dry_run) {
        SILO_ASSIGN_OR_RETURN(auto current, store.GetRef(name));
        if (!current || *current != d) {
          SILO_TRY(store.SetRef(name, d).WithContext("sync: ref " + name));
          r.changed = true;
        }
      }
      report.refs.push_back(std::move(r));
    }
    report.objects_fetched = objects_fetched;
    report.bytes_fetched = bytes_fetched;
    report.requests = requests;
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
  }
};

Syncer::Syncer(store::Store& store, SyncOptions options) : impl_(std::make_unique<Impl>(store, std::move(options))) {}
Syncer::~Syncer() = default;

Result<SyncReport> Syncer::Sync(const std::vector<std::string>& selectors) {
  return impl_->Sync(selectors);
}

}  // namespace silo::transfer
