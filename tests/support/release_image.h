// An OpenShift-style release image for tests of release mode (`pull --release`,
// `mirror --release`): one OCI image whose single tar.gz layer holds
// release-manifests/image-references, an ImageStream naming the component images.
#pragma once

#include <string>
#include <vector>

namespace silo::testing {

// Builds the release image as an OCI layout under `work` and copies it with skopeo into
// `host_port` (plain HTTP) as `repo_tag` ("ocp/release:4.99.0"). `components` are image
// references (normally by digest). Returns "host_port/repo_tag". Throws std::runtime_error
// with the tool's output when a step fails.
std::string PushReleaseImage(const std::string& host_port, const std::string& repo_tag,
                             const std::vector<std::string>& components, const std::string& work);

}  // namespace silo::testing
