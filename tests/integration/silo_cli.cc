#include "tests/integration/silo_cli.h"

#include "tests/support/process.h"
#include "tests/support/store_test.h"

namespace silo::testing {

CliResult RunSilo(const std::string& store, const std::vector<std::string>& args, const std::string& stdin_path) {
  TempDir io;
  ProcessOptions o;
  if (stdin_path.empty()) {
    o.argv = {SILO_BINARY, "--store", store};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
  } else {
    // Process gives children /dev/null for stdin; a shell redirect feeds the file instead.
    std::string cmd = "exec \"$0\" --store \"$1\"";
    for (size_t i = 0; i < args.size(); ++i) cmd += " \"$" + std::to_string(i + 2) + "\"";
    cmd += " < \"$" + std::to_string(args.size() + 2) + "\"";
    o.argv = {"sh", "-c", cmd, SILO_BINARY, store};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.argv.push_back(stdin_path);
  }
  o.stdout_path = io / "out";
  o.stderr_path = io / "err";
  Process p(o);
  CliResult r;
  auto status = p.Wait(std::chrono::minutes(5));
  r.code = status ? *status : p.Stop();
  r.out = ReadFileToString(o.stdout_path);
  r.err = ReadFileToString(o.stderr_path);
  return r;
}

}  // namespace silo::testing
