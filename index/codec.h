// Private to index/: little helpers for the binary encodings of trees, snapshot records
// and stat-cache values (LEB128 varints, length-prefixed byte strings, a bounds-checked
// reader). Not included from other folders.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace silo::index::codec {

inline void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

inline void PutSigned(std::string* out, int64_t v) {
  PutVarint(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}

inline void PutBytes(std::string* out, std::string_view s) {
  PutVarint(out, s.size());
  out->append(s);
}

// Reads from a byte string; every getter returns false (and stays failed) on truncation.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return Fail();
      uint8_t b = static_cast<uint8_t>(data_[pos_++]);
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return Fail();
  }
  bool Signed(int64_t* v) {
    uint64_t u;
    if (!Varint(&u)) return false;
    *v = static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
    return true;
  }
  bool Bytes(std::string* s, uint64_t max = 1 << 20) {
    uint64_t n;
    if (!Varint(&n) || n > max || n > data_.size() - pos_) return Fail();
    s->assign(data_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  bool Raw(size_t n, std::string_view* s) {
    if (n > data_.size() - pos_) return Fail();
    *s = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool Byte(uint8_t* b) {
    if (pos_ >= data_.size()) return Fail();
    *b = static_cast<uint8_t>(data_[pos_++]);
    return true;
  }
  bool done() const { return pos_ == data_.size(); }
  bool failed() const { return failed_; }

 private:
  bool Fail() {
    failed_ = true;
    return false;
  }
  std::string_view data_;
  size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace silo::index::codec
