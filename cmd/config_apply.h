// The user configuration ($SILO_HOME/silo.conf, util/config.h) applied to a command's
// options: flags given on the command line win, then the file's [SECTION], then the
// built-in defaults. Used by the commands that read the file (get, serve).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "util/result.h"

namespace silo::cmd {

// Sets each option of `sub` that the command line left unset from key `--NAME` = `NAME` in
// section `section` of the config file at `path` (empty: DefaultConfigPath()). A missing
// file is fine. InvalidArgument naming FILE:LINE for an unknown key or a value the option
// refuses.
Status ApplyConfig(CLI::App& sub, const std::string& section, const std::string& path = "");

}  // namespace silo::cmd
