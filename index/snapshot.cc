#include "index/snapshot.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <numeric>

#include "index/codec.h"

namespace silo::index {
namespace {

// Version 2 adds the root entry; version 1 records are still read.
constexpr std::string_view kMagicV1 = "silo-snapshot-1\n";
constexpr std::string_view kMagic = "silo-snapshot-2\n";

bool ReadDigest(codec::Reader& r, store::Digest* d) {
  std::string_view raw;
  return r.Raw(32, &raw) && store::Digest::FromRaw(raw, d);
}

bool IsHexPrefix(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

std::string EncodeSnapshot(const SnapshotRecord& r) {
  std::string out(kMagic);
  codec::PutBytes(&out, r.name);
  codec::PutSigned(&out, r.time_ns);
  codec::PutBytes(&out, r.host);
  out.push_back(r.parent ? 1 : 0);
  if (r.parent) out.append(r.parent->raw());
  out.append(r.root.raw());
  codec::PutVarint(&out, r.sources.size());
  for (const auto& s : r.sources) {
    codec::PutBytes(&out, s.key);
    codec::PutBytes(&out, s.path);
    out.append(s.tree.raw());
  }
  codec::PutVarint(&out, r.files);
  codec::PutVarint(&out, r.dirs);
  codec::PutVarint(&out, r.bytes);
  out.push_back(r.root_entry ? 1 : 0);
  if (r.root_entry) {
    Tree t;
    t.entries.push_back(*r.root_entry);
    codec::PutBytes(&out, EncodeTree(std::move(t)));
  }
  return out;
}

Result<SnapshotRecord> DecodeSnapshot(std::string_view data) {
  bool v1 = data.substr(0, kMagicV1.size()) == kMagicV1;
  if (!v1 && data.substr(0, kMagic.size()) != kMagic) return Status::Corruption("not a silo snapshot record");
  codec::Reader r(data.substr(kMagic.size()));
  SnapshotRecord rec;
  uint8_t has_parent = 0;
  uint64_t n = 0;
  bool ok = r.Bytes(&rec.name, 256) && r.Signed(&rec.time_ns) && r.Bytes(&rec.host, 1024) && r.Byte(&has_parent);
  if (ok && has_parent) {
    store::Digest p;
    ok = ReadDigest(r, &p);
    rec.parent = p;
  }
  ok = ok && ReadDigest(r, &rec.root) && r.Varint(&n) && n < 65536;
  for (uint64_t i = 0; ok && i < n; ++i) {
    SnapshotSource s;
    ok = r.Bytes(&s.key, 4096) && r.Bytes(&s.path, 65536) && ReadDigest(r, &s.tree);
    rec.sources.push_back(std::move(s));
  }
  ok = ok && r.Varint(&rec.files) && r.Varint(&rec.dirs) && r.Varint(&rec.bytes);
  uint8_t has_root_entry = 0;
  std::string root_tree;
  if (ok && !v1) ok = r.Byte(&has_root_entry) && (!has_root_entry || r.Bytes(&root_tree));
  if (!ok || !r.done()) return Status::Corruption("snapshot record: truncated or malformed");
  if (has_root_entry) {
    SILO_ASSIGN_OR_RETURN(Tree t, DecodeTree(root_tree).WithContext("snapshot record: root entry"));
    if (t.entries.size() != 1 || t.entries[0].type != EntryType::kDir || t.entries[0].digest != rec.root) {
      return Status::Corruption("snapshot record: the root entry is not the root directory");
    }
    rec.root_entry = std::move(t.entries[0]);
  }
  return rec;
}

std::vector<store::Digest> SnapshotLinks(const SnapshotRecord& record) {
  std::vector<store::Digest> out{record.root};
  for (const auto& s : record.sources) out.push_back(s.tree);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Status ValidateSnapshotName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 128 && name[0] != '.' && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
  if (!ok) {
    return Status::InvalidArgument("snapshot name \"" + std::string(name) +
                                   "\": use letters, digits, '.', '_' and '-' (not starting with '.')");
  }
  return Status::Ok();
}

std::string SnapshotRefPrefix(std::string_view name) {
  return "snapshot/" + std::string(name) + "/";
}

std::string SnapshotId(const store::Digest& record_digest) {
  return record_digest.hex().substr(0, 12);
}

Result<SnapshotSpec> ParseSnapshotSpec(std::string_view text) {
  SnapshotSpec spec;
  size_t colon = text.find(':');
  if (colon != std::string_view::npos) {
    spec.has_path = true;
    spec.path = std::string(text.substr(colon + 1));
    text = text.substr(0, colon);
  }
  size_t at = text.find('@');
  if (at != std::string_view::npos) {
    spec.id = std::string(text.substr(at + 1));
    text = text.substr(0, at);
    if (spec.id.size() < 4 || !IsHexPrefix(spec.id)) {
      return Status::InvalidArgument("snapshot id \"" + spec.id + "\": give at least 4 lowercase hex digits");
    }
  }
  spec.name = std::string(text);
  SILO_TRY(ValidateSnapshotName(spec.name));
  return spec;
}

Result<std::vector<SnapshotInfo>> ListSnapshots(store::Store& store, std::string_view name) {
  SILO_ASSIGN_OR_RETURN(auto refs, store.ListRefs(name.empty() ? std::string("snapshot/") : SnapshotRefPrefix(name)));
  std::vector<SnapshotInfo> out;
  for (auto& ref : refs) {
    SILO_ASSIGN_OR_RETURN(std::string data, store.ReadAll(ref.target, 16 << 20).WithContext("ref " + ref.name));
    SILO_ASSIGN_OR_RETURN(SnapshotRecord rec, DecodeSnapshot(data).WithContext("ref " + ref.name));
    SnapshotInfo info;
    info.id = ref.name.substr(ref.name.rfind('/') + 1);
    info.ref = ref.name;
    info.digest = ref.target;
    info.record = std::move(rec);
    out.push_back(std::move(info));
  }
  std::stable_sort(out.begin(), out.end(), [](const SnapshotInfo& a, const SnapshotInfo& b) {
    return a.record.time_ns != b.record.time_ns ? a.record.time_ns < b.record.time_ns : a.id < b.id;
  });
  return out;
}

Result<SnapshotRecord> NewSnapshotRecord(store::Store& store, const std::string& name) {
  SnapshotRecord record;
  record.name = name;
  record.time_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  char host[256] = {};
  record.host = ::gethostname(host, sizeof host - 1) == 0 ? host : "unknown";
  auto parent = ResolveSnapshot(store, {name, "", "", false});
  if (parent.ok()) {
    record.parent = parent->digest;
  } else if (!parent.status().IsNotFound()) {
    return parent.status();
  }
  return record;
}

Result<SnapshotInfo> ResolveSnapshot(store::Store& store, const SnapshotSpec& spec) {
  SILO_ASSIGN_OR_RETURN(auto all, ListSnapshots(store, spec.name));
  if (all.empty()) return Status::NotFound("no snapshot named " + spec.name);
  if (spec.id.empty()) return std::move(all.back());
  std::vector<SnapshotInfo*> hits;
  for (auto& s : all) {
    if (s.id.compare(0, spec.id.size(), spec.id) == 0) hits.push_back(&s);
  }
  if (hits.empty()) return Status::NotFound("no snapshot " + spec.name + "@" + spec.id);
  if (hits.size() > 1) return Status::InvalidArgument("snapshot id " + spec.id + " is ambiguous; give more digits");
  return std::move(*hits[0]);
}

Result<SnapshotInfo> CommitSnapshot(store::Store& store, const SnapshotRecord& record) {
  SILO_TRY(ValidateSnapshotName(record.name));
  std::string data = EncodeSnapshot(record);
  store::Digest digest = store::Digest::Sha256(Sha256::Of(AsBytes(data)));
  SnapshotInfo info;
  info.id = SnapshotId(digest);
  info.ref = SnapshotRefPrefix(record.name) + info.id;
  store::PutOptions opts;
  opts.links = SnapshotLinks(record);
  opts.ref = info.ref;
  opts.expected_digest = digest;
  SILO_ASSIGN_OR_RETURN(auto obj, store.Put(AsBytes(data), opts));
  info.digest = obj.digest;
  info.record = record;
  return info;
}

std::vector<bool> ApplyRetention(const std::vector<int64_t>& times_ns, const RetentionPolicy& policy) {
  std::vector<bool> keep(times_ns.size(), false);
  std::vector<size_t> order(times_ns.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return times_ns[a] > times_ns[b]; });
  auto bucket_rule = [&](int count, auto bucket_of) {
    int64_t last_bucket = INT64_MIN;
    for (size_t i : order) {
      if (count <= 0) break;
      int64_t b = bucket_of(times_ns[i]);
      if (b == last_bucket) continue;
      last_bucket = b;
      keep[i] = true;
      --count;
    }
  };
  constexpr int64_t kDay = 86400LL * 1000000000LL;
  auto day_of = [](int64_t t) { return t >= 0 ? t / kDay : (t - kDay + 1) / kDay; };
  bucket_rule(policy.last, [](int64_t t) { return t; });
  bucket_rule(policy.daily, day_of);
  // 1970-01-01 was a Thursday; ISO weeks start on Monday (day 4 of that week).
  bucket_rule(policy.weekly, [&](int64_t t) {
    int64_t d = day_of(t) + 3;
    return d >= 0 ? d / 7 : (d - 6) / 7;
  });
  return keep;
}

std::string FormatTime(int64_t time_ns) {
  std::time_t secs = static_cast<std::time_t>(time_ns / 1000000000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

}  // namespace silo::index
