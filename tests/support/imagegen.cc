#include "tests/support/imagegen.h"

#include <stdexcept>

#include "tests/support/process.h"
#include "tests/support/store_test.h"

namespace silo::testing {

std::vector<std::string> PushImageSet(const std::string& host_port, const std::string& work,
                                      const std::vector<std::string>& extra_args) {
  std::vector<std::string> argv = {
      "python3", SILO_TEST_SUPPORT_DIR "/imagegen.py", "--registry", host_port, "--quiet", "--work", work};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  std::string out;
  if (RunCommand(argv, &out) != 0) throw std::runtime_error("imagegen failed: " + out);
  return Lines(out);
}

}  // namespace silo::testing
