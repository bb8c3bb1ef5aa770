// The image graph over a real store: children before their index, unique blobs, absent
// children of a platform-filtered index, missing blobs; image naming and selection.
#include "index/image.h"

#include <gtest/gtest.h>

#include "tests/support/store_test.h"

namespace silo::index {
namespace {

class ImageTest : public silo::testing::StoreTest {
 protected:
  // Stores `bytes` and returns its descriptor JSON fragment's digest.
  std::string PutBlob(const std::string& bytes) {
    auto info = store_->Put(AsBytes(bytes));
    EXPECT_TRUE(info.ok()) << info.status().message();
    return info->digest.ToString();
  }
  static std::string Desc(std::string_view media_type, const std::string& digest, size_t size,
                          std::string_view platform = "") {
    std::string d = "{\"mediaType\":\"" + std::string(media_type) + "\",\"digest\":\"" + digest +
                    "\",\"size\":" + std::to_string(size);
    if (!platform.empty()) d += ",\"platform\":" + std::string(platform);
    return d + "}";
  }
  std::string Manifest(const std::string& config, const std::string& layer) {
    return "{\"schemaVersion\":2,\"mediaType\":\"" + std::string(media::kOciManifest) +
           "\",\"config\":" + Desc("application/vnd.oci.image.config.v1+json", PutBlob(config), config.size()) +
           ",\"layers\":[" + Desc("application/vnd.oci.image.layer.v1.tar", PutBlob(layer), layer.size()) + "]}";
  }
};

TEST_F(ImageTest, GraphOrdersChildrenFirstAndDedupsBlobs) {
  std::string shared_layer = silo::testing::RandomBytes(50000, 1);
  const std::string amd_config = R"({"os":"linux","architecture":"amd64"})";
  const std::string arm_config = R"({"os":"linux","architecture":"arm64"})";
  std::string amd = Manifest(amd_config, shared_layer);
  std::string arm = Manifest(arm_config, shared_layer);
  std::string absent = "sha256:" + std::string(64, 'c');
  std::string index = "{\"schemaVersion\":2,\"mediaType\":\"" + std::string(media::kOciIndex) + "\",\"manifests\":[" +
                      Desc(media::kOciManifest, PutBlob(amd), amd.size(), R"({"os":"linux","architecture":"amd64"})") +
                      "," +
                      Desc(media::kOciManifest, PutBlob(arm), arm.size(), R"({"os":"linux","architecture":"arm64"})") +
                      "," + Desc(media::kOciManifest, absent, 10, R"({"os":"linux","architecture":"s390x"})") + "]}";
  auto top = store::Digest::Parse(PutBlob(index));
  ASSERT_TRUE(top.ok());

  auto g = LoadImageGraph(*store_, *top);
  ASSERT_TRUE(g.ok()) << g.status().message();
  ASSERT_EQ(g->manifests.size(), 3u);
  EXPECT_EQ(g->manifests.back().digest, *top);
  EXPECT_EQ(g->manifests.back().bytes, index);
  EXPECT_EQ(g->manifests[0].platform->architecture, "amd64");
  EXPECT_EQ(g->blobs.size(), 3u);  // two configs, one shared layer
  ASSERT_EQ(g->absent_children.size(), 1u);
  EXPECT_EQ(g->absent_children[0].digest, absent);
  EXPECT_TRUE(g->partial());
  EXPECT_TRUE(g->missing_blobs.empty());
  EXPECT_EQ(g->total_bytes(),
            index.size() + amd.size() + arm.size() + shared_layer.size() + amd_config.size() + arm_config.size());

  GraphOptions only_arm;
  only_arm.platforms.push_back(*Platform::Parse("linux/arm64"));
  auto filtered = LoadImageGraph(*store_, *top, only_arm);
  ASSERT_TRUE(filtered.ok());
  EXPECT_EQ(filtered->manifests.size(), 2u);
  EXPECT_EQ(filtered->absent_children.size(), 2u);
}

TEST_F(ImageTest, MissingBlobsAndBadManifestsAreReported) {
  std::string layer_digest = "sha256:" + std::string(64, 'd');
  std::string m = "{\"schemaVersion\":2,\"mediaType\":\"" + std::string(media::kOciManifest) +
                  "\",\"config\":" + Desc("application/vnd.oci.image.config.v1+json", PutBlob("{}"), 2) +
                  ",\"layers\":[" + Desc("application/vnd.oci.image.layer.v1.tar", layer_digest, 5) + "]}";
  auto g = LoadImageGraph(*store_, *store::Digest::Parse(PutBlob(m)));
  ASSERT_TRUE(g.ok()) << g.status().message();
  ASSERT_EQ(g->missing_blobs.size(), 1u);
  EXPECT_EQ(g->missing_blobs[0].digest, layer_digest);

  auto bad = LoadImageGraph(*store_, *store::Digest::Parse(PutBlob("{not json")));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("manifest sha256:"), std::string::npos) << bad.status().message();
  auto absent = LoadImageGraph(*store_, *store::Digest::Parse("sha256:" + std::string(64, 'e')));
  EXPECT_EQ(absent.status().code(), Code::kNotFound);
}

TEST_F(ImageTest, NamesSelectRefs) {
  auto d = store::Digest::Parse(PutBlob("{}"));
  ASSERT_TRUE(store_->SetRef("image/127.0.0.1:5000/team/app:1.0", *d).ok());
  ASSERT_TRUE(store_->SetRef("image/127.0.0.1:5000/team/web:2", *d).ok());
  ASSERT_TRUE(store_->SetRef("image/docker.io/library/nginx:latest", *d).ok());

  auto one = FindImages(*store_, "127.0.0.1:5000/team/app:1.0");
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].name, "image/127.0.0.1:5000/team/app:1.0");
  EXPECT_EQ(FindImages(*store_, "nginx")->size(), 1u);
  EXPECT_EQ(FindImages(*store_, "127.0.0.1:5000/team/*")->size(), 2u);
  auto by_digest = FindImages(*store_, "127.0.0.1:5000/other@" + d->ToString());
  ASSERT_TRUE(by_digest.ok());
  EXPECT_EQ((*by_digest)[0].name, "image/127.0.0.1:5000/other@" + d->ToString());
  EXPECT_EQ(FindImages(*store_, "127.0.0.1:5000/team/app:2.0").status().code(), Code::kNotFound);

  auto ref = ImageRefReference("image/127.0.0.1:5000/team/app:1.0");
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->registry, "127.0.0.1:5000");
  EXPECT_EQ(ref->repository, "team/app");
  EXPECT_EQ(ref->tag, "1.0");
  EXPECT_EQ(ImageRefName(*ref), "image/127.0.0.1:5000/team/app:1.0");
  EXPECT_FALSE(ImageRefReference("snapshot/x").ok());
  EXPECT_FALSE(ImageRefReference("image/reg/app").ok());
}

}  // namespace
}  // namespace silo::index
