#include "transfer/access.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <fnmatch.h>
#include <openssl/crypto.h>

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "transfer/http.h"
#include "util/hash.h"

namespace silo::transfer {
namespace {

bool ParseAddress(std::string_view text, std::array<uint8_t, 16>* out, bool* v4) {
  std::string s(text);
  // "[::1]" as some peers print it; a zone suffix ("%eth0") is not part of the address.
  if (s.size() > 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  if (auto pct = s.find('%'); pct != std::string::npos) s.resize(pct);
  out->fill(0);
  in_addr a4{};
  if (inet_pton(AF_INET, s.c_str(), &a4) == 1) {
    std::memcpy(out->data(), &a4, 4);
    *v4 = true;
    return true;
  }
  in6_addr a6{};
  if (inet_pton(AF_INET6, s.c_str(), &a6) == 1) {
    std::memcpy(out->data(), &a6, 16);
    *v4 = false;
    return true;
  }
  return false;
}

bool PrefixEqual(const uint8_t* a, const uint8_t* b, int bits) {
  int bytes = bits / 8;
  if (std::memcmp(a, b, bytes) != 0) return false;
  int rest = bits % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[bytes] & mask) == (b[bytes] & mask);
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return std::string(s);
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Whether `dir` (share-relative, normalized) is `path` or a directory above it.
bool IsAtOrAbove(std::string_view dir, std::string_view path) {
  if (dir.empty()) return true;
  if (!path.starts_with(dir)) return false;
  return path.size() == dir.size() || path[dir.size()] == '/';
}

std::string NormalizeRelDir(std::string_view d) {
  std::string out;
  size_t i = 0;
  while (i <= d.size()) {
    size_t j = d.find('/', i);
    if (j == std::string_view::npos) j = d.size();
    std::string_view seg = d.substr(i, j - i);
    if (!seg.empty() && seg != ".") {
      if (!out.empty()) out += '/';
      out += seg;
    }
    i = j + 1;
  }
  return out;
}

}  // namespace

Result<Cidr> Cidr::Parse(std::string_view text) {
  Cidr c;
  std::string_view addr = text;
  std::optional<int> prefix;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string_view::npos)
      return Status::InvalidArgument("allow " + std::string(text) + ": the prefix length is not a number");
    prefix = std::stoi(std::string(p));
  }
  if (!ParseAddress(addr, &c.addr_, &c.v4_))
    return Status::InvalidArgument("allow " + std::string(text) + ": not an IPv4 or IPv6 address or network");
  int max = c.v4_ ? 32 : 128;
  c.prefix_ = prefix.value_or(max);
  if (c.prefix_ > max)
    return Status::InvalidArgument("allow " + std::string(text) + ": prefix length above " + std::to_string(max));
  return c;
}

bool Cidr::Contains(std::string_view address) const {
  std::array<uint8_t, 16> a{};
  bool v4 = false;
  if (!ParseAddress(address, &a, &v4)) return false;
  if (v4_ && !v4) {
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a.data(), kMapped, 12) != 0) return false;
    return PrefixEqual(a.data() + 12, addr_.data(), prefix_);
  }
  if (v4_ != v4) return false;
  return PrefixEqual(a.data(), addr_.data(), prefix_);
}

std::string Cidr::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v4_ ? AF_INET : AF_INET6, addr_.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix_);
}

struct Htpasswd::Cache {
  std::mutex mu;
  std::set<std::array<uint8_t, 32>> accepted;
};

Result<Htpasswd> Htpasswd::Parse(std::string_view text, const std::string& what) {
  Htpasswd h;
  h.cache_ = std::make_shared<Cache>();
  std::istringstream in{std::string(text)};
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::string t = Trim(line);
    if (t.empty() || t[0] == '#') continue;
    auto colon = t.find(':');
    std::string where = what + ":" + std::to_string(n) + ": ";
    if (colon == std::string::npos || colon == 0) return Status::InvalidArgument(where + "not a user:hash line");
    std::string user = t.substr(0, colon);
    std::string hash = t.substr(colon + 1);
    bool known = hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$") ||
                 hash.starts_with("$5$") || hash.starts_with("$6$") || hash.starts_with("{SHA}");
    if (hash.starts_with("$apr1$"))
      return Status::Unsupported(where + "user " + user +
                                 ": Apache MD5 ($apr1$) is not supported; use htpasswd -B (bcrypt)");
    if (!known)
      return Status::Unsupported(where + "user " + user + ": unknown hash (use htpasswd -B for bcrypt or -s)");
    h.users_[user] = hash;
  }
  return h;
}

Result<Htpasswd> Htpasswd::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::FromErrno("htpasswd " + path, errno);
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

bool Htpasswd::Check(std::string_view user, std::string_view password) const {
  auto it = users_.find(user);
  if (it == users_.end()) return false;
  Sha256 key;
  key.Update(AsBytes(user));
  key.Update(AsBytes(std::string_view("\0", 1)));
  key.Update(AsBytes(password));
  auto k = key.Final();
  {
    std::lock_guard lock(cache_->mu);
    if (cache_->accepted.count(k)) return true;
  }
  const std::string& hash = it->second;
  bool ok = false;
  if (hash.starts_with("{SHA}")) {
    Sha1 s;
    s.Update(AsBytes(password));
    auto d = s.Final();
    ok = ConstantTimeEqual(Base64Encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size())),
                           std::string_view(hash).substr(5));
  } else {
    crypt_data data{};
    std::string pw(password);
    const char* out = crypt_r(pw.c_str(), hash.c_str(), &data);
    ok = out != nullptr && out[0] != '*' && ConstantTimeEqual(out, hash);
  }
  if (ok) {
    std::lock_guard lock(cache_->mu);
    cache_->accepted.insert(k);
  }
  return ok;
}

AccessControl::AccessControl(AccessPolicy policy) : policy_(std::move(policy)) {
  for (auto& d : policy_.deny_dirs) {
    if (d.starts_with("/")) {
      while (d.size() > 1 && d.back() == '/') d.pop_back();
    } else {
      d = NormalizeRelDir(d);
    }
  }
}

bool AccessControl::read_open() const {
  return policy_.read_tokens.empty() && !policy_.read_htpasswd;
}

Decision AccessControl::CheckPeer(std::string_view address) const {
  if (policy_.allow.empty()) return {};
  for (const auto& c : policy_.allow)
    if (c.Contains(address)) return {};
  return {403, "client " + std::string(address) + " is not in an allowed network"};
}

Decision AccessControl::CheckAuth(std::string_view authorization, Need need) const {
  const auto& p = policy_;
  bool write_configured = !p.write_tokens.empty() || p.write_htpasswd;
  bool read_configured = !p.read_tokens.empty() || p.read_htpasswd;
  if (need == Need::kRead && !read_configured) return {};
  if (need == Need::kWrite && !write_configured) return {};
  std::string value = Trim(authorization);
  if (value.empty())
    return {401, need == Need::kRead ? "credentials required to read" : "credentials required to write"};
  auto token_in = [](const std::vector<std::string>& list, std::string_view t) {
    bool found = false;
    for (const auto& x : list) found |= ConstantTimeEqual(x, t);  // no early exit
    return found;
  };
  if (StartsWithNoCase(value, "bearer ")) {
    std::string token = Trim(std::string_view(value).substr(7));
    if (token_in(p.write_tokens, token)) return {};
    if (need == Need::kRead && token_in(p.read_tokens, token)) return {};
    return {401, "the bearer token does not grant " + std::string(need == Need::kRead ? "reading" : "writing")};
  }
  if (StartsWithNoCase(value, "basic ")) {
    auto decoded = Base64Decode(Trim(std::string_view(value).substr(6)));
    if (!decoded.ok()) return {401, "malformed Basic credentials"};
    auto colon = decoded->find(':');
    if (colon == std::string::npos) return {401, "malformed Basic credentials"};
    std::string_view user = std::string_view(*decoded).substr(0, colon);
    std::string_view pw = std::string_view(*decoded).substr(colon + 1);
    if (p.write_htpasswd && p.write_htpasswd->Check(user, pw)) return {};
    if (need == Need::kRead && p.read_htpasswd && p.read_htpasswd->Check(user, pw)) return {};
    // A token may also travel as the Basic password (for clients that cannot send Bearer).
    if (token_in(p.write_tokens, pw)) return {};
    if (need == Need::kRead && token_in(p.read_tokens, pw)) return {};
    return {401, "user " + std::string(user) + ": wrong password or no " + (need == Need::kRead ? "read" : "write") +
                     " access"};
  }
  return {401, "unsupported Authorization scheme (use Bearer or Basic)"};
}

Decision AccessControl::CheckPath(std::string_view rel_path, std::string_view abs_path) const {
  for (const auto& d : policy_.deny_dirs) {
    if (d.starts_with("/")) {
      if (!abs_path.empty() && IsAtOrAbove(d, abs_path)) return {403, "path is in a denied directory"};
    } else if (!d.empty() && IsAtOrAbove(d, rel_path)) {
      return {403, "path is in a denied directory"};
    }
  }
  if (policy_.deny_files.empty() || rel_path.empty()) return {};
  std::string rel(rel_path);
  // Every component counts: a denied name denies everything beneath it too.
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    std::string base = rel.substr(start, end - start);
    std::string prefix = rel.substr(0, end);
    for (const auto& g : policy_.deny_files) {
      bool hit = g.find('/') != std::string::npos ? fnmatch(g.c_str(), prefix.c_str(), FNM_PATHNAME) == 0
                                                  : fnmatch(g.c_str(), base.c_str(), 0) == 0;
      if (hit) return {403, "path matches a denied pattern (" + g + ")"};
    }
    start = end + 1;
  }
  return {};
}

Result<std::string> DecodeSharePath(std::string_view encoded) {
  std::string out;
  size_t i = 0;
  while (i <= encoded.size()) {
    size_t j = encoded.find('/', i);
    if (j == std::string_view::npos) j = encoded.size();
    std::string_view raw = encoded.substr(i, j - i);
    std::string seg;
    for (size_t k = 0; k < raw.size(); ++k) {
      char c = raw[k];
      if (c == '%') {
        if (k + 2 >= raw.size()) return Status::InvalidArgument("malformed percent escape in path");
        int hi = HexValue(raw[k + 1]), lo = HexValue(raw[k + 2]);
        if (hi < 0 || lo < 0) return Status::InvalidArgument("malformed percent escape in path");
        c = static_cast<char>(hi * 16 + lo);
        k += 2;
      }
      if (c == '/' || c == '\0') return Status::InvalidArgument("path segment holds an encoded '/' or NUL");
      if (c == '\\') return Status::InvalidArgument("path holds a backslash");
      seg += c;
    }
    if (seg == "..") return Status::InvalidArgument("path climbs out with '..'");
    if (!seg.empty() && seg != ".") {
      if (!out.empty()) out += '/';
      out += seg;
    }
    i = j + 1;
  }
  return out;
}

std::string EncodeSharePath(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace silo::transfer
