// silo config show|path: the effective configuration of the commands that read
// $SILO_HOME/silo.conf, each value with where it came from (the file and line, or the
// built-in default), as hsync-echo-config does.
#include "util/config.h"

#include <iostream>

#include "cmd/command.h"
#include "cmd/config_apply.h"

namespace silo::cmd {
namespace {

// The sections a config file may have: the commands that read it.
constexpr const char* kSections[] = {"get", "serve"};

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

bool Configurable(const CLI::Option* opt) {
  return !opt->get_lnames().empty() && opt->get_lnames().front() != "help" && opt->get_lnames().front() != "config";
}

int RunShow(CLI::App& root, const std::string& path_flag) {
  std::string path = path_flag.empty() ? DefaultConfigPath() : path_flag;
  auto config = Config::Load(path);
  if (!config.ok()) return Fail(config.status());
  std::cout << "# " << path << "\n";
  int rc = kExitOk;
  for (const char* section : kSections) {
    CLI::App* sub = nullptr;
    try {
      sub = root.get_subcommand(section);
    } catch (const CLI::OptionNotFound&) {
      continue;
    }
    std::cout << "[" << section << "]\n";
    for (const CLI::Option* opt : sub->get_options()) {
      if (!Configurable(opt)) continue;
      const std::string& key = opt->get_lnames().front();
      const ConfigEntry* e = config->Find(section, key);
      if (e) {
        std::cout << key << " = " << Join(e->values) << "    # " << e->source << "\n";
      } else {
        std::string def = opt->get_default_str();
        if (def.empty() && opt->get_type_size() == 0) def = "false";  // a flag
        std::cout << key << " = " << def << "    # default\n";
      }
    }
  }
  // Keys the file holds that no command knows.
  for (const auto& [name, entry] : config->entries()) {
    std::string section = name.substr(0, name.find('.'));
    std::string key = name.substr(name.find('.') + 1);
    bool known = false;
    for (const char* s : kSections) {
      if (section != s) continue;
      try {
        CLI::App* sub = root.get_subcommand(s);
        for (const CLI::Option* opt : sub->get_options())
          if (Configurable(opt) && opt->get_lnames().front() == key) known = true;
      } catch (const CLI::OptionNotFound&) {
      }
    }
    if (!known) {
      std::cerr << "silo: " << entry.source << ": unknown key " << name << "\n";
      rc = kExitUsage;
    }
  }
  return rc;
}

}  // namespace

Status ApplyConfig(CLI::App& sub, const std::string& section, const std::string& path_arg) {
  std::string path = path_arg.empty() ? DefaultConfigPath() : path_arg;
  SILO_ASSIGN_OR_RETURN(Config config, Config::Load(path));
  std::string prefix = section + ".";
  for (const auto& [name, entry] : config.entries()) {
    if (!name.starts_with(prefix)) continue;
    std::string key = name.substr(prefix.size());
    CLI::Option* opt = sub.get_option_no_throw("--" + key);
    if (!opt || !Configurable(opt))
      return Status::InvalidArgument(entry.source + ": unknown key " + name + " (see silo config show)");
    if (opt->count() > 0) continue;  // the command line wins
    try {
      opt->add_result(entry.values);
      opt->run_callback();
    } catch (const CLI::Error& e) {
      return Status::InvalidArgument(entry.source + ": " + name + ": " + e.what());
    }
  }
  return Status::Ok();
}

void RegisterConfig(CLI::App& app, Context& ctx) {
  auto* sub =
      app.add_subcommand("config", "Show the configuration ($SILO_HOME/silo.conf) and where each value comes from");
  sub->require_subcommand(1);
  auto path = std::make_shared<std::string>();
  auto* show = sub->add_subcommand("show", "Print every configurable value of get and serve with its source");
  show->add_option("--file", *path, "Config file (default: $SILO_HOME/silo.conf)");
  CLI::App* root = &app;
  show->callback([&ctx, root, path] { ctx.run = [root, path] { return RunShow(*root, *path); }; });
  auto* where = sub->add_subcommand("path", "Print the config file's path");
  where->callback([&ctx] {
    ctx.run = [] {
      std::cout << DefaultConfigPath() << "\n";
      return kExitOk;
    };
  });
}

}  // namespace silo::cmd
