// Runs tests/support/imagegen.py: synthetic OCI images pushed into a registry with skopeo.
#pragma once

#include <string>
#include <vector>

namespace silo::testing {

// Pushes imagegen's small set into `host_port` (scratch files under `work`; extra
// arguments such as --set 2, --creds U:P or --cert-dir DIR appended); returns the
// references pushed. Throws std::runtime_error with imagegen's output when it fails.
std::vector<std::string> PushImageSet(const std::string& host_port, const std::string& work,
                                      const std::vector<std::string>& extra_args = {});

}  // namespace silo::testing
