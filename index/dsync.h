// dsync compatibility: its sync configuration (dsync.json) and its `.tree` index text.
//
// The configuration is dsync's JSON, which in the wild is often JavaScript-flavoured
// (comments, unquoted keys, trailing commas); those are accepted. silo adds optional
// fields of its own: "name" (the snapshot name) and "exclude" (a list of globs).
//   { "name": "site", "archiveType": "tar", "exclude": ["*.tmp"],
//     "dirs": [ { "key": "p0", "path": "~/site", "ignoreHidden": true,
//                 "ignoreTop": true, "leafOnly": false } ] }
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "index/tree.h"
#include "store/store.h"
#include "util/result.h"

namespace silo::index {

struct DsyncDir {
  std::string key;   // default "p<index>"
  std::string path;  // "~/" expanded with $HOME
  bool ignore_hidden = false;
  bool ignore_top = false;
  bool leaf_only = false;
};

struct DsyncConfig {
  std::string name;                  // silo extension; empty when absent
  std::string archive_type = "zip";  // zip, tar, tar.gz, tgz (silo also takes tar.zst)
  std::vector<DsyncDir> dirs;
  std::vector<std::string> excludes;  // silo extension
};

// Parses a configuration; InvalidArgument naming the problem. `home` expands "~".
Result<DsyncConfig> ParseDsyncConfig(std::string_view text, std::string_view home);

// Renders tree `root` as dsync's .tree text, depth first in name order:
//   D:~/dir
//   F:~/dir/file;=SHA1(<hex>);=LEN(<size>)
// Symlinks and special files are not part of dsync's format and are left out. A '\\' or a
// newline in a name is written as "\\\\" or "\\n". SHA-1 comes from the content's alias,
// or is computed from the stored content when there is none.
Status RenderDsyncTree(store::Store& store, const store::Digest& root,
                       const std::function<void(std::string_view)>& out);

}  // namespace silo::index
