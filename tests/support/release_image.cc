#include "tests/support/release_image.h"

#include <filesystem>
#include <stdexcept>

#include "tests/support/process.h"
#include "tests/support/store_test.h"
#include "util/hash.h"

namespace silo::testing {
namespace {

namespace fs = std::filesystem;

// Writes `data` into the layout's blob directory; returns its descriptor fields.
std::string PutBlob(const fs::path& layout, std::string_view data, const std::string& media_type) {
  std::string hex = ToHex(Sha256::Of(AsBytes(data)));
  WriteFile(layout / "blobs/sha256" / hex, data);
  return "{\"mediaType\":\"" + media_type + "\",\"digest\":\"sha256:" + hex +
         "\",\"size\":" + std::to_string(data.size()) + "}";
}

void Run(const std::vector<std::string>& argv) {
  std::string out;
  if (RunCommand(argv, &out) != 0) throw std::runtime_error(argv.front() + " failed: " + out);
}

}  // namespace

std::string PushReleaseImage(const std::string& host_port, const std::string& repo_tag,
                             const std::vector<std::string>& components, const std::string& work) {
  fs::path dir(work);
  std::string json = "{\"kind\":\"ImageStream\",\"apiVersion\":\"image.openshift.io/v1\",\"spec\":{\"tags\":[";
  for (size_t i = 0; i < components.size(); ++i) {
    json += std::string(i ? "," : "") + "{\"name\":\"c" + std::to_string(i) +
            "\",\"from\":{\"kind\":\"DockerImage\",\"name\":\"" + components[i] + "\"}}";
  }
  json += "]}}";
  fs::create_directories(dir / "rel/release-manifests");
  WriteFile(dir / "rel/release-manifests/image-references", json);
  WriteFile(dir / "rel/release-manifests/0000_readme", "not the references");
  Run({"tar", "-C", dir / "rel", "-czf", dir / "layer.tar.gz", "release-manifests"});

  fs::path layout = dir / "layout";
  fs::create_directories(layout / "blobs/sha256");
  WriteFile(layout / "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
  std::string layer =
      PutBlob(layout, ReadFileToString(dir / "layer.tar.gz"), "application/vnd.oci.image.layer.v1.tar+gzip");
  std::string config =
      PutBlob(layout, "{\"architecture\":\"amd64\",\"os\":\"linux\"}", "application/vnd.oci.image.config.v1+json");
  std::string manifest =
      "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":" + config +
      ",\"layers\":[" + layer + "]}";
  std::string desc = PutBlob(layout, manifest, "application/vnd.oci.image.manifest.v1+json");
  std::string tag = repo_tag.substr(repo_tag.rfind(':') + 1);
  desc.insert(desc.size() - 1, ",\"annotations\":{\"org.opencontainers.image.ref.name\":\"" + tag + "\"}");
  WriteFile(layout / "index.json", "{\"schemaVersion\":2,\"manifests\":[" + desc + "]}");

  std::string ref = host_port + "/" + repo_tag;
  Run({"skopeo", "copy", "-q", "--dest-tls-verify=false", "oci:" + layout.string() + ":" + tag, "docker://" + ref});
  return ref;
}

}  // namespace silo::testing
