#include "transfer/server/router.h"

#include <strings.h>

#include <algorithm>
#include <charconv>

namespace silo::server {
namespace {

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::string_view> Request::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (IEquals(k, name)) return std::string_view(v);
  }
  return std::nullopt;
}

std::optional<std::string> Request::QueryParam(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    if (key != name) continue;
    std::string_view value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    std::string plus_decoded(value);
    std::replace(plus_decoded.begin(), plus_decoded.end(), '+', ' ');
    auto decoded = PercentDecode(plus_decoded);
    if (!decoded.ok()) return std::nullopt;
    return std::move(decoded).value();
  }
  return std::nullopt;
}

Result<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) {
      return Status::InvalidArgument("bad percent escape in \"" + std::string(s) + "\"");
    }
    int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return Status::InvalidArgument("bad percent escape in \"" + std::string(s) + "\"");
    char c = static_cast<char>(hi * 16 + lo);
    if (c == '\0') return Status::InvalidArgument("NUL byte (%00) in \"" + std::string(s) + "\"");
    out += c;
    i += 2;
  }
  return out;
}

Response Response::Text(int status, std::string body, std::string content_type) {
  Response r;
  r.status = status;
  r.kind = Kind::kString;
  r.body = std::move(body);
  r.headers.emplace_back("Content-Type", std::move(content_type));
  return r;
}

Response Response::Empty(int status) {
  Response r;
  r.status = status;
  return r;
}

Response Response::File(Fd fd, uint64_t offset, uint64_t length, std::string content_type) {
  Response r;
  r.kind = Kind::kFile;
  r.file = std::move(fd);
  r.file_offset = offset;
  r.length = length;
  r.ranges = true;
  r.headers.emplace_back("Content-Type", std::move(content_type));
  return r;
}

Response Response::Object(std::unique_ptr<store::ObjectReader> reader, std::string content_type) {
  Response r;
  r.kind = Kind::kObject;
  r.length = reader->info().size;
  r.object = std::move(reader);
  r.ranges = true;
  r.headers.emplace_back("Content-Type", std::move(content_type));
  return r;
}

Response& Response::With(std::string name, std::string value) {
  headers.emplace_back(std::move(name), std::move(value));
  return *this;
}

std::optional<std::string_view> Response::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (IEquals(k, name)) return std::string_view(v);
  }
  return std::nullopt;
}

uint64_t Response::EntityLength() const {
  switch (kind) {
    case Kind::kEmpty:
      return 0;
    case Kind::kString:
      return body.size();
    case Kind::kFile:
    case Kind::kObject:
      return length;
  }
  return 0;
}

void Router::Add(std::string prefix, Handler handler) {
  for (auto& [p, h] : routes_) {
    if (p == prefix) {
      h = std::move(handler);
      return;
    }
  }
  routes_.emplace_back(std::move(prefix), std::move(handler));
  std::stable_sort(routes_.begin(), routes_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

const Handler* Router::Find(std::string_view path) const {
  for (const auto& [prefix, handler] : routes_) {
    if (prefix.back() == '/' ? path.starts_with(prefix) : path == prefix) return &handler;
  }
  return nullptr;
}

RangeResult ParseRange(std::string_view header, uint64_t length, ByteRange* out) {
  header = Trim(header);
  if (!header.starts_with("bytes=")) return RangeResult::kNone;
  std::string_view spec = Trim(header.substr(6));
  if (spec.find(',') != std::string_view::npos) return RangeResult::kNone;
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeResult::kNone;
  std::string_view a = Trim(spec.substr(0, dash)), b = Trim(spec.substr(dash + 1));
  uint64_t first = 0, last = 0;
  if (a.empty()) {  // suffix: the last n bytes
    uint64_t n = 0;
    if (!ParseU64(b, &n)) return RangeResult::kNone;
    if (n == 0 || length == 0) return RangeResult::kUnsatisfiable;
    out->first = n >= length ? 0 : length - n;
    out->last = length - 1;
    return RangeResult::kRange;
  }
  if (!ParseU64(a, &first)) return RangeResult::kNone;
  if (b.empty()) {
    last = length == 0 ? 0 : length - 1;
  } else {
    if (!ParseU64(b, &last) || last < first) return RangeResult::kNone;
  }
  if (first >= length) return RangeResult::kUnsatisfiable;
  out->first = first;
  out->last = std::min(last, length - 1);
  return RangeResult::kRange;
}

}  // namespace silo::server
