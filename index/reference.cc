#include "index/reference.h"

#include <cctype>

namespace silo::index {
namespace {

bool IsAlnumLower(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// A path component: lowercase alphanumerics separated by '.', '_', '__' or runs of '-'.
bool ValidComponent(std::string_view c) {
  if (c.empty() || !IsAlnumLower(c.front()) || !IsAlnumLower(c.back())) return false;
  for (size_t i = 0; i < c.size(); ++i) {
    char ch = c[i];
    if (IsAlnumLower(ch)) continue;
    if (ch == '.' || ch == '_' || ch == '-') {
      if (ch == '.' && !IsAlnumLower(c[i + 1])) return false;
      continue;
    }
    return false;
  }
  return true;
}

bool ValidTag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (!word(t.front())) return false;
  for (char c : t) {
    if (!word(c) && c != '.' && c != '-') return false;
  }
  return true;
}

bool ValidDigest(std::string_view d) {
  constexpr std::string_view kPrefix = "sha256:";
  if (d.substr(0, kPrefix.size()) != kPrefix || d.size() != kPrefix.size() + 64) return false;
  for (char c : d.substr(kPrefix.size())) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) || std::isupper(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

std::string Reference::ToString() const {
  std::string s = registry + "/" + repository;
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

Result<Reference> ParseReference(std::string_view text, std::string_view default_registry) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("image reference '" + std::string(text) + "': " + why);
  };
  if (text.empty()) return bad("empty");
  Reference r;
  std::string_view rest = text;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    r.digest = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (!ValidDigest(r.digest)) return bad("digest must be sha256: and 64 lowercase hex digits");
  }
  auto slash = rest.rfind('/');
  auto colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    r.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (!ValidTag(r.tag)) return bad("tag '" + r.tag + "' is not valid");
  }
  auto first_slash = rest.find('/');
  std::string_view first = rest.substr(0, first_slash);
  if (first_slash != std::string_view::npos && (first.find('.') != std::string_view::npos ||
                                                first.find(':') != std::string_view::npos || first == "localhost")) {
    r.registry = std::string(first);
    rest = rest.substr(first_slash + 1);
  } else {
    r.registry = std::string(default_registry);
  }
  if (r.registry == "index.docker.io" || r.registry == "registry-1.docker.io") r.registry = "docker.io";
  if (rest.empty()) return bad("no repository name");
  if (r.registry == "docker.io" && rest.find('/') == std::string_view::npos) {
    r.repository = "library/" + std::string(rest);
  } else {
    r.repository = std::string(rest);
  }
  size_t start = 0;
  while (start <= r.repository.size()) {
    size_t end = r.repository.find('/', start);
    if (end == std::string::npos) end = r.repository.size();
    if (!ValidComponent(std::string_view(r.repository).substr(start, end - start))) {
      return bad("repository '" + r.repository + "' must be lowercase letters, digits and separators");
    }
    start = end + 1;
  }
  if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
  return r;
}

}  // namespace silo::index
