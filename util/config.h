// silo.conf: the user configuration file, an INI subset.
//
//   # comment            ; comment
//   [get]                 a section per command
//   parts = 16            key = value; surrounding double quotes are removed
//   [serve]
//   share = logs=/var/log a key given again adds a value (for options taken several times)
//   share = data=/srv/data
//
// Precedence (as hsync documents it): command-line flags over this file over built-in
// defaults. The file is $SILO_HOME/silo.conf; SILO_HOME defaults to
// $XDG_CONFIG_HOME/silo, else ~/.config/silo. Pure logic apart from reading the file;
// a Config is immutable once loaded and safe to share between threads.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace silo {

struct ConfigEntry {
  std::vector<std::string> values;  // in file order
  std::string source;               // "FILE:LINE" of the first value
};

class Config {
 public:
  // Parses `text`; `what` names it in errors ("FILE:LINE: ..."). Errors: a key outside any
  // section, a line that is neither a section, a key = value pair nor a comment, an empty
  // key.
  static Result<Config> Parse(std::string_view text, const std::string& what);
  // Reads and parses `path`; a missing file is an empty Config (not an error).
  static Result<Config> Load(const std::string& path);

  // The entry for section.key, or null.
  const ConfigEntry* Find(std::string_view section, std::string_view key) const;
  // Every entry, keyed "section.key".
  const std::map<std::string, ConfigEntry, std::less<>>& entries() const { return entries_; }
  const std::string& path() const { return path_; }

 private:
  std::map<std::string, ConfigEntry, std::less<>> entries_;
  std::string path_;
};

// $SILO_HOME, else $XDG_CONFIG_HOME/silo, else $HOME/.config/silo.
std::string SiloHome();
// SiloHome() + "/silo.conf"
std::string DefaultConfigPath();

}  // namespace silo
