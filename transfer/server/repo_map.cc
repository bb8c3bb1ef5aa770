#include "transfer/server/repo_map.h"

#include <vector>

namespace silo::server {
namespace {

bool Alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
bool ValidComponent(std::string_view c) {
  if (c.empty() || !Alnum(c.front()) || !Alnum(c.back())) return false;
  for (size_t i = 0; i < c.size();) {
    if (Alnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !Alnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool ok = sep == "." || sep == "_" || sep == "__" || sep.find_first_not_of('-') == std::string_view::npos;
    if (!ok) return false;
    i = j;
  }
  return true;
}

std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> out;
  while (true) {
    size_t slash = s.find('/');
    out.push_back(s.substr(0, slash));
    if (slash == std::string_view::npos) break;
    s.remove_prefix(slash + 1);
  }
  return out;
}

// "host_5000" -> "host:5000" when the part after the last '_' is a port.
std::optional<std::string> PortForm(std::string_view c) {
  size_t u = c.rfind('_');
  if (u == std::string_view::npos || u == 0 || u + 1 >= c.size() || u + 6 < c.size()) return std::nullopt;
  std::string_view port = c.substr(u + 1);
  if (port.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  std::string_view host = c.substr(0, u);
  if (host.find('_') != std::string_view::npos) return std::nullopt;
  return std::string(host) + ":" + std::string(port);
}

bool LooksLikeRegistry(std::string_view c) {
  return c.find('.') != std::string_view::npos || c == "localhost" || PortForm(c).has_value();
}

}  // namespace

Result<RepoLocation> MapRepository(std::string_view name, std::string_view default_registry) {
  if (name.empty() || name.size() > 255) {
    return Status::InvalidArgument("repository name \"" + std::string(name) + "\": empty or longer than 255");
  }
  auto parts = Split(name);
  for (auto p : parts) {
    if (!ValidComponent(p)) {
      return Status::InvalidArgument("repository name \"" + std::string(name) + "\": component \"" + std::string(p) +
                                     "\" is not lowercase letters and digits joined by '.', '_', '__' or '-'");
    }
  }
  if (parts.size() >= 2 && LooksLikeRegistry(parts[0])) {
    auto port = PortForm(parts[0]);
    return RepoLocation{port ? *port : std::string(parts[0]), std::string(name.substr(parts[0].size() + 1))};
  }
  return RepoLocation{std::string(default_registry), std::string(name)};
}

std::optional<std::string> ServedName(const RepoLocation& loc, std::string_view default_registry) {
  if (loc.registry == default_registry) {
    auto back = MapRepository(loc.repository, default_registry);
    if (back.ok() && *back == loc) return loc.repository;
  }
  std::string reg = loc.registry;
  if (size_t colon = reg.find(':'); colon != std::string::npos) reg[colon] = '_';
  std::string name = reg + "/" + loc.repository;
  auto back = MapRepository(name, default_registry);
  if (back.ok() && *back == loc) return name;
  return std::nullopt;
}

std::optional<ImageRef> ParseImageRef(std::string_view ref) {
  if (!ref.starts_with("image/")) return std::nullopt;
  std::string_view rest = ref.substr(6);
  size_t first_slash = rest.find('/');
  if (first_slash == std::string_view::npos) return std::nullopt;
  ImageRef out;
  out.location.registry = std::string(rest.substr(0, first_slash));
  std::string_view tail = rest.substr(first_slash + 1);
  size_t last_slash = tail.rfind('/');
  size_t from = last_slash == std::string_view::npos ? 0 : last_slash + 1;
  if (size_t at = tail.find('@', from); at != std::string_view::npos) {
    out.location.repository = std::string(tail.substr(0, at));
    out.digest = std::string(tail.substr(at + 1));
  } else if (size_t colon = tail.find(':', from); colon != std::string_view::npos) {
    out.location.repository = std::string(tail.substr(0, colon));
    out.tag = std::string(tail.substr(colon + 1));
  } else {
    return std::nullopt;
  }
  if (out.location.repository.empty() || (out.tag.empty() && out.digest.empty())) return std::nullopt;
  return out;
}

bool ValidTag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  for (size_t i = 0; i < tag.size(); ++i) {
    char c = tag[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              (i > 0 && (c == '.' || c == '-'));
    if (!ok) return false;
  }
  return true;
}

}  // namespace silo::server
