// ProxyLru (transfer/server/proxy_lru.h) on a real store: least recently used cached images
// go first, images without a cache mark (pushed or pulled explicitly) are never evicted,
// gc then removes what only the evicted images held, and an open reader keeps its object.
#include "transfer/server/proxy_lru.h"

#include <gtest/gtest.h>

#include "tests/support/store_test.h"
#include "util/hash.h"

namespace silo::testing {
namespace {

using server::ProxyLru;
using server::ProxyMark;

store::Digest DigestOfBytes(const std::string& s) {
  return store::Digest::Sha256(Sha256::Of(ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size())));
}

class ProxyLruTest : public StoreTest {
 protected:
  struct Image {
    std::string ref;
    store::Digest manifest, config, layer;
  };

  store::Digest PutBytes(const std::string& data, const store::PutOptions& po = {}) {
    auto info = store_->Put(ByteSpan(reinterpret_cast<const uint8_t*>(data.data()), data.size()), po);
    EXPECT_TRUE(info.ok()) << info.status().message();
    return info.ok() ? info->digest : store::Digest();
  }

  // An image of a config and one `layer_size` layer under `ref`; marked as the cache's
  // (with last access `accessed`) unless `cached` is false.
  Image MakeImage(const std::string& ref, uint64_t seed, size_t layer_size, bool cached, int64_t accessed) {
    Image img;
    img.ref = ref;
    std::string config = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":" + std::to_string(seed) + "}";
    std::string layer = RandomBytes(layer_size, seed);
    img.config = PutBytes(config);
    img.layer = PutBytes(layer);
    std::string manifest =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{"
        "\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" +
        img.config.ToString() + "\",\"size\":" + std::to_string(config.size()) +
        "},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" + img.layer.ToString() +
        "\",\"size\":" + std::to_string(layer.size()) + "}]}";
    img.manifest = DigestOfBytes(manifest);
    if (cached) {
      EXPECT_TRUE(store_->PutIndex(server::kProxyRefsSpace, ref, ProxyMark{img.manifest, accessed}.Encode()).ok());
    }
    store::PutOptions po;
    po.links = {img.config, img.layer};
    po.ref = ref;
    PutBytes(manifest, po);
    // Access times as a flush would have written them (8 bytes big-endian seconds).
    std::string t(8, '\0');
    for (int i = 0; i < 8; ++i) t[static_cast<size_t>(i)] = static_cast<char>((accessed >> (56 - 8 * i)) & 0xff);
    for (const auto& d : {img.manifest, img.config, img.layer}) {
      EXPECT_TRUE(store_->PutIndex(server::kProxyAccessSpace, d.raw(), t).ok());
    }
    return img;
  }

  bool Has(const store::Digest& d) { return store_->Stat(d).ok(); }
  bool HasRef(const std::string& ref) {
    auto r = store_->GetRef(ref);
    return r.ok() && r->has_value();
  }
};

TEST_F(ProxyLruTest, EvictsLeastRecentlyUsedCachedImagesAndKeepsExplicitOnes) {
  const size_t kLayer = 256 * 1024;
  Image explicit_img = MakeImage("image/up.example/pinned:1", 1, kLayer, /*cached=*/false, 50);
  Image oldest = MakeImage("image/up.example/a:1", 2, kLayer, true, 100);
  Image middle = MakeImage("image/up.example/b:1", 3, kLayer, true, 200);
  Image newest = MakeImage("image/up.example/c:1", 4, kLayer, true, 300);

  ProxyLru lru(*store_);
  // Room for two cached images: only the least recently used one goes.
  auto r = lru.Evict(2 * kLayer + 4096, std::chrono::seconds(0));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_GT(r->cache_bytes, 3 * kLayer);
  EXPECT_EQ(r->images_evicted, 1u);
  EXPECT_TRUE(r->collected);
  EXPECT_FALSE(HasRef(oldest.ref));
  EXPECT_FALSE(Has(oldest.layer));
  EXPECT_FALSE(Has(oldest.manifest));
  for (const auto* img : {&middle, &newest, &explicit_img}) {
    EXPECT_TRUE(HasRef(img->ref)) << img->ref;
    EXPECT_TRUE(Has(img->layer)) << img->ref;
  }

  // A recent access (Touch, flushed by Evict) makes `middle` the newest: `newest` goes next.
  lru.Touch(middle.layer);
  r = lru.Evict(kLayer + 4096, std::chrono::seconds(0));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->images_evicted, 1u);
  EXPECT_FALSE(HasRef(newest.ref));
  EXPECT_TRUE(HasRef(middle.ref));

  // A cap of one byte evicts every cached image but never the explicit one.
  r = lru.Evict(1, std::chrono::seconds(0));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(HasRef(middle.ref));
  EXPECT_TRUE(HasRef(explicit_img.ref));
  EXPECT_TRUE(Has(explicit_img.layer));
  EXPECT_TRUE(Has(explicit_img.config));
}

TEST_F(ProxyLruTest, ARefMovedByAPushIsNoLongerTheCaches) {
  Image cached = MakeImage("image/up.example/a:1", 5, 4096, true, 100);
  Image other = MakeImage("image/up.example/other:1", 6, 4096, false, 100);
  // The user pushes another manifest under the cached tag: the mark no longer matches.
  ASSERT_TRUE(store_->SetRef(cached.ref, other.manifest).ok());
  ProxyLru lru(*store_);
  auto r = lru.Evict(1, std::chrono::seconds(0));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->images_evicted, 0u);
  EXPECT_TRUE(HasRef(cached.ref));
  auto mark = store_->GetIndex(server::kProxyRefsSpace, cached.ref);
  ASSERT_TRUE(mark.ok());
  EXPECT_FALSE(mark->has_value()) << "the stale mark is dropped";
}

TEST_F(ProxyLruTest, AnOpenReaderKeepsItsObjectThroughAnEviction) {
  const size_t kLayer = 512 * 1024;
  Image img = MakeImage("image/up.example/a:1", 7, kLayer, true, 100);
  auto reader = store_->NewReader(img.layer);
  ASSERT_TRUE(reader.ok());
  ProxyLru lru(*store_);
  auto r = lru.Evict(1, std::chrono::seconds(0));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->images_evicted, 1u);
  EXPECT_FALSE(Has(img.manifest));
  EXPECT_TRUE(Has(img.layer)) << "pinned by the open reader";
  std::string got(kLayer, '\0');
  size_t done = 0;
  while (done < kLayer) {
    auto n = (*reader)->Read(std::span<uint8_t>(reinterpret_cast<uint8_t*>(got.data()) + done, kLayer - done));
    ASSERT_TRUE(n.ok()) << n.status().message();
    ASSERT_GT(*n, 0u);
    done += *n;
  }
  EXPECT_EQ(got, RandomBytes(kLayer, 7));
  reader->reset();
  // Unpinned: the next collection removes it.
  store::GcOptions go;
  go.grace = std::chrono::seconds(0);
  ASSERT_TRUE(store_->CollectGarbage(go).ok());
  EXPECT_FALSE(Has(img.layer));
}

}  // namespace
}  // namespace silo::testing
