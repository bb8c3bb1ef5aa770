#include "util/config.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace silo {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool ValidName(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

}  // namespace

Result<Config> Config::Parse(std::string_view text, const std::string& what) {
  Config c;
  c.path_ = what;
  std::string section;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = Trim(text.substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    std::string where = what + ":" + std::to_string(line_no);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      if (line.back() != ']') return Status::InvalidArgument(where + ": a section line must end with ']'");
      std::string_view name = Trim(line.substr(1, line.size() - 2));
      if (!ValidName(name)) return Status::InvalidArgument(where + ": bad section name '" + std::string(name) + "'");
      section = name;
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string_view::npos)
      return Status::InvalidArgument(where + ": expected 'key = value', got '" + std::string(line) + "'");
    std::string_view key = Trim(line.substr(0, eq));
    std::string_view value = Trim(line.substr(eq + 1));
    if (!ValidName(key)) return Status::InvalidArgument(where + ": bad key '" + std::string(key) + "'");
    if (section.empty()) return Status::InvalidArgument(where + ": key '" + std::string(key) + "' outside a [section]");
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    auto& e = c.entries_[section + "." + std::string(key)];
    if (e.values.empty()) e.source = where;
    e.values.emplace_back(value);
  }
  return c;
}

Result<Config> Config::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) {
      Config empty;
      empty.path_ = path;
      return empty;
    }
    return Status::FromErrno("config " + path, errno);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

const ConfigEntry* Config::Find(std::string_view section, std::string_view key) const {
  std::string k = std::string(section) + "." + std::string(key);
  auto it = entries_.find(k);
  return it == entries_.end() ? nullptr : &it->second;
}

std::string SiloHome() {
  if (const char* s = std::getenv("SILO_HOME"); s && *s) return s;
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) return std::string(x) + "/silo";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.config/silo";
  return ".silo";
}

std::string DefaultConfigPath() {
  return SiloHome() + "/silo.conf";
}

}  // namespace silo
