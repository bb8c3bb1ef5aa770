#include "transfer/server/proxy_lru.h"

#include <algorithm>
#include <charconv>
#include <vector>

#include "index/image.h"

namespace silo::server {
namespace {

std::string EncodeSeconds(int64_t s) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<size_t>(i)] = static_cast<char>(s & 0xff);
    s >>= 8;
  }
  return out;
}

int64_t DecodeSeconds(std::string_view v) {
  if (v.size() != 8) return 0;
  int64_t s = 0;
  for (char c : v) s = (s << 8) | static_cast<uint8_t>(c);
  return s;
}

}  // namespace

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string ProxyMark::Encode() const {
  return digest.ToString() + " " + std::to_string(checked);
}

std::optional<ProxyMark> ProxyMark::Decode(std::string_view value) {
  size_t sp = value.find(' ');
  if (sp == std::string_view::npos) return std::nullopt;
  auto d = store::Digest::Parse(value.substr(0, sp));
  if (!d.ok()) return std::nullopt;
  ProxyMark m;
  m.digest = *d;
  std::string_view t = value.substr(sp + 1);
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), m.checked);
  if (ec != std::errc() || p != t.data() + t.size()) return std::nullopt;
  return m;
}

void ProxyLru::Touch(const store::Digest& digest) {
  int64_t now = UnixNow();
  std::lock_guard lock(mu_);
  pending_[std::string(digest.raw())] = now;
}

Result<size_t> ProxyLru::Flush() {
  std::unordered_map<std::string, int64_t> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(pending_);
  }
  if (batch.empty()) return size_t{0};
  std::vector<std::pair<std::string, std::optional<std::string>>> changes;
  changes.reserve(batch.size());
  for (const auto& [key, secs] : batch) changes.emplace_back(key, EncodeSeconds(secs));
  SILO_TRY(store_.WriteIndex(kProxyAccessSpace, changes));
  return changes.size();
}

Result<EvictReport> ProxyLru::Evict(uint64_t cap, std::chrono::seconds grace) {
  SILO_TRY(Flush().status());
  EvictReport report;
  struct Image {
    std::string ref;
    ProxyMark mark;
    std::vector<std::pair<std::string, uint64_t>> objects;  // raw digest, size
    int64_t last = 0;
  };
  std::vector<Image> images;
  std::vector<std::pair<std::string, std::optional<std::string>>> drop_marks;
  SILO_TRY(store_.ScanIndex(kProxyRefsSpace, "", [&](std::string_view key, std::string_view value) {
    auto mark = ProxyMark::Decode(value);
    if (!mark) {
      drop_marks.emplace_back(std::string(key), std::nullopt);
    } else {
      images.push_back({std::string(key), *mark, {}, mark->checked});
    }
    return true;
  }));
  std::vector<Image> live;
  for (auto& img : images) {
    auto target = store_.GetRef(img.ref);
    if (!target.ok()) return std::move(target).take_status();
    if (!*target || **target != img.mark.digest) {
      // Deleted, or moved by a push or an explicit pull: no longer the cache's.
      drop_marks.emplace_back(img.ref, std::nullopt);
      continue;
    }
    auto graph = index::LoadImageGraph(store_, img.mark.digest);
    if (!graph.ok()) continue;  // unreadable or absent: left alone
    for (const auto& m : graph->manifests) img.objects.emplace_back(std::string(m.digest.raw()), m.bytes.size());
    for (const auto& b : graph->blobs) {
      bool missing = std::any_of(graph->missing_blobs.begin(), graph->missing_blobs.end(),
                                 [&](const index::Descriptor& d) { return d.digest == b.digest; });
      auto d = store::Digest::Parse(b.digest);
      if (missing || !d.ok()) continue;
      img.objects.emplace_back(std::string(d->raw()), b.size);
    }
    live.push_back(std::move(img));
  }
  // Last access per object, then per image; how many cached images hold each object.
  std::unordered_map<std::string, std::pair<uint32_t, uint64_t>> holders;  // raw -> (count, size)
  for (const auto& img : live) {
    for (const auto& [raw, size] : img.objects) {
      auto& h = holders[raw];
      if (h.first++ == 0) report.cache_bytes += size;
      h.second = size;
    }
  }
  std::vector<std::string> keys;
  keys.reserve(holders.size());
  for (const auto& [raw, h] : holders) keys.push_back(raw);
  SILO_ASSIGN_OR_RETURN(auto access, store_.GetIndexMany(kProxyAccessSpace, keys));
  std::unordered_map<std::string, int64_t> last;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (access[i]) last[keys[i]] = DecodeSeconds(*access[i]);
  }
  for (auto& img : live) {
    for (const auto& [raw, size] : img.objects) {
      if (auto it = last.find(raw); it != last.end()) img.last = std::max(img.last, it->second);
    }
  }
  uint64_t total = report.cache_bytes;
  if (total > cap) {
    std::stable_sort(live.begin(), live.end(), [](const Image& a, const Image& b) { return a.last < b.last; });
    for (const auto& img : live) {
      if (total <= cap) break;
      Status s = store_.DeleteRef(img.ref, img.mark.digest);
      drop_marks.emplace_back(img.ref, std::nullopt);
      if (!s.ok()) continue;  // moved or deleted meanwhile: not ours to evict
      ++report.images_evicted;
      for (const auto& [raw, size] : img.objects) {
        auto& h = holders[raw];
        if (--h.first == 0) {
          total -= size;
          report.bytes_evicted += size;
        }
      }
    }
  }
  if (!drop_marks.empty()) SILO_TRY(store_.WriteIndex(kProxyRefsSpace, drop_marks));
  if (report.images_evicted == 0) return report;
  store::GcOptions go;
  go.grace = grace;
  SILO_ASSIGN_OR_RETURN(report.gc, store_.CollectGarbage(go));
  report.collected = true;
  // Forget the access times of objects that are gone.
  std::vector<store::Digest> known;
  SILO_TRY(store_.ScanIndex(kProxyAccessSpace, "", [&](std::string_view key, std::string_view) {
    store::Digest d;
    if (store::Digest::FromRaw(key, &d)) known.push_back(d);
    return true;
  }));
  SILO_ASSIGN_OR_RETURN(auto gone, store_.Missing(known));
  std::vector<std::pair<std::string, std::optional<std::string>>> forget;
  for (const auto& d : gone) forget.emplace_back(std::string(d.raw()), std::nullopt);
  if (!forget.empty()) SILO_TRY(store_.WriteIndex(kProxyAccessSpace, forget));
  return report;
}

}  // namespace silo::server
