#include "index/stat_cache.h"

#include "index/codec.h"

namespace silo::index {

std::string StatCacheSpace(std::string_view snapshot_name) {
  return "statcache/" + std::string(snapshot_name);
}

std::string StatCacheKey(uint64_t device, uint64_t inode) {
  std::string key(16, '\0');
  for (int i = 0; i < 8; ++i) {
    key[i] = static_cast<char>(device >> (56 - 8 * i));
    key[8 + i] = static_cast<char>(inode >> (56 - 8 * i));
  }
  return key;
}

std::string EncodeStatCacheValue(const StatCacheValue& v) {
  std::string out;
  out.push_back(v.sha1 ? 2 : 1);  // version 2: the content has its sha1: alias
  codec::PutVarint(&out, v.size);
  codec::PutSigned(&out, v.mtime_ns);
  codec::PutSigned(&out, v.ctime_ns);
  out.append(v.digest.raw());
  return out;
}

bool DecodeStatCacheValue(std::string_view data, StatCacheValue* v) {
  codec::Reader r(data);
  uint8_t version = 0;
  std::string_view raw;
  if (!r.Byte(&version) || (version != 1 && version != 2)) return false;
  v->sha1 = version == 2;
  return r.Varint(&v->size) && r.Signed(&v->mtime_ns) && r.Signed(&v->ctime_ns) && r.Raw(32, &raw) &&
         store::Digest::FromRaw(raw, &v->digest) && r.done();
}

std::string DirCacheSpace(std::string_view snapshot_name) {
  return "statdirs/" + std::string(snapshot_name);
}

std::string EncodeDirCacheValue(const DirCacheValue& v) {
  std::string out;
  out.push_back(1);  // version
  out.append(v.fingerprint.raw());
  out.append(v.tree.raw());
  return out;
}

bool DecodeDirCacheValue(std::string_view data, DirCacheValue* v) {
  codec::Reader r(data);
  uint8_t version = 0;
  std::string_view fp, tree;
  return r.Byte(&version) && version == 1 && r.Raw(32, &fp) && store::Digest::FromRaw(fp, &v->fingerprint) &&
         r.Raw(32, &tree) && store::Digest::FromRaw(tree, &v->tree) && r.done();
}

}  // namespace silo::index
