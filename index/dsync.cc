#include "index/dsync.h"

#include <simdjson.h>

#include <cctype>

namespace silo::index {
namespace {

// Turns JavaScript-flavoured JSON into JSON: drops // and /* */ comments and trailing
// commas, quotes bare keys. Strings are copied untouched.
std::string Normalize(std::string_view in) {
  std::string out;
  size_t i = 0;
  auto last_significant = [&]() -> char {
    for (size_t k = out.size(); k > 0; --k) {
      if (!std::isspace(static_cast<unsigned char>(out[k - 1]))) return out[k - 1];
    }
    return '\0';
  };
  while (i < in.size()) {
    char c = in[i];
    if (c == '"' || c == '\'') {
      char q = c;
      out += '"';
      for (++i; i < in.size() && in[i] != q; ++i) {
        if (in[i] == '\\' && i + 1 < in.size()) {
          out += in[i++];
          out += in[i];
        } else if (in[i] == '"') {
          out += "\\\"";
        } else {
          out += in[i];
        }
      }
      out += '"';
      ++i;
    } else if (c == '/' && i + 1 < in.size() && in[i + 1] == '/') {
      while (i < in.size() && in[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < in.size() && in[i + 1] == '*') {
      size_t end = in.find("*/", i + 2);
      i = end == std::string_view::npos ? in.size() : end + 2;
    } else if ((c == '}' || c == ']') && last_significant() == ',') {
      out.erase(out.find_last_of(','), 1);
      out += c;
      ++i;
    } else if ((std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '$') &&
               (last_significant() == '{' || last_significant() == ',')) {
      size_t j = i;
      while (j < in.size() && (std::isalnum(static_cast<unsigned char>(in[j])) || in[j] == '_' || in[j] == '$')) ++j;
      size_t k = j;
      while (k < in.size() && std::isspace(static_cast<unsigned char>(in[k]))) ++k;
      if (k < in.size() && in[k] == ':') {
        out += '"';
        out.append(in.substr(i, j - i));
        out += '"';
      } else {
        out.append(in.substr(i, j - i));
      }
      i = j;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

std::string Escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

Status Render(store::Store& store, const store::Digest& tree, const std::string& prefix,
              const std::function<void(std::string_view)>& out) {
  SILO_ASSIGN_OR_RETURN(Tree t, LoadTree(store, tree));
  for (const auto& e : t.entries) {
    std::string path = prefix + "/" + Escape(e.name);
    if (e.type == EntryType::kDir) {
      out("D:" + path + "\n");
      SILO_TRY(Render(store, e.digest, path, out));
    } else if (e.type == EntryType::kFile) {
      SILO_ASSIGN_OR_RETURN(auto info, store.Stat(e.digest).WithContext(path));
      std::string sha1;
      if (info.sha1) {
        sha1 = info.sha1->hex();
      } else {
        SILO_ASSIGN_OR_RETURN(auto reader, store.NewReader(e.digest));
        Sha1 h;
        std::vector<uint8_t> buf(1 << 20);
        for (;;) {
          SILO_ASSIGN_OR_RETURN(size_t n, reader->Read(buf));
          if (n == 0) break;
          h.Update({buf.data(), n});
        }
        sha1 = ToHex(h.Final());
      }
      out("F:" + path + ";=SHA1(" + sha1 + ");=LEN(" + std::to_string(e.size) + ")\n");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<DsyncConfig> ParseDsyncConfig(std::string_view text, std::string_view home) {
  std::string json = Normalize(text);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc) != simdjson::SUCCESS) return Status::InvalidArgument("config: not valid JSON");
  simdjson::dom::object root;
  if (doc.get(root) != simdjson::SUCCESS) return Status::InvalidArgument("config: not a JSON object");
  DsyncConfig cfg;
  std::string_view s;
  if (root["name"].get(s) == simdjson::SUCCESS) cfg.name = std::string(s);
  if (root["archiveType"].get(s) == simdjson::SUCCESS) cfg.archive_type = std::string(s);
  if (cfg.archive_type != "zip" && cfg.archive_type != "tar" && cfg.archive_type != "tar.gz" &&
      cfg.archive_type != "tgz" && cfg.archive_type != "tar.zst") {
    return Status::InvalidArgument("config: archiveType \"" + cfg.archive_type +
                                   "\": use zip, tar, tar.gz, tgz or tar.zst");
  }
  simdjson::dom::array arr;
  if (root["exclude"].get(arr) == simdjson::SUCCESS) {
    for (auto v : arr) {
      if (v.get(s) != simdjson::SUCCESS) return Status::InvalidArgument("config: exclude holds a non-string");
      cfg.excludes.emplace_back(s);
    }
  }
  if (root["dirs"].get(arr) != simdjson::SUCCESS) return Status::InvalidArgument("config: no \"dirs\" list");
  size_t i = 0;
  for (auto v : arr) {
    simdjson::dom::object o;
    std::string where = "config: dirs[" + std::to_string(i) + "]";
    if (v.get(o) != simdjson::SUCCESS) return Status::InvalidArgument(where + " is not an object");
    DsyncDir d;
    d.key = o["key"].get(s) == simdjson::SUCCESS ? std::string(s) : "p" + std::to_string(i);
    if (o["path"].get(s) != simdjson::SUCCESS || s.empty()) return Status::InvalidArgument(where + ": no \"path\"");
    d.path = std::string(s);
    if (d.path == "~" || d.path.rfind("~/", 0) == 0) d.path = std::string(home) + d.path.substr(1);
    bool b = false;
    if (o["ignoreHidden"].get(b) == simdjson::SUCCESS) d.ignore_hidden = b;
    if (o["ignoreTop"].get(b) == simdjson::SUCCESS) d.ignore_top = b;
    if (o["leafOnly"].get(b) == simdjson::SUCCESS) d.leaf_only = b;
    SILO_TRY(ValidateEntryName(d.key).WithContext(where + ": key"));
    cfg.dirs.push_back(std::move(d));
    ++i;
  }
  if (cfg.dirs.empty()) return Status::InvalidArgument("config: \"dirs\" is empty");
  return cfg;
}

Status RenderDsyncTree(store::Store& store, const store::Digest& root,
                       const std::function<void(std::string_view)>& out) {
  return Render(store, root, "~", out);
}

}  // namespace silo::index
