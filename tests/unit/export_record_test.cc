// Export records (silo-export.json), the base they build, trackers kept in a real store,
// and the docker save manifest.json with the Docker manifest rebuilt from it.
#include "index/export_record.h"

#include <gtest/gtest.h>

#include "index/docker_save.h"
#include "index/manifest.h"
#include "tests/support/store_test.h"

namespace silo::index {
namespace {

const std::string kA = "sha256:" + std::string(64, 'a');
const std::string kB = "sha256:" + std::string(64, 'b');
const std::string kC = "sha256:" + std::string(64, 'c');

ExportRecord Sample() {
  ExportRecord r;
  r.tracker = "airgap";
  r.images = {{"reg.example/app:1.0", kA}, {"reg.example/db:\"2\"", kB}};
  r.blobs = {{kA, 10, ""}, {kB, 20, ""}};
  r.omitted = {{kC, 3000000000ULL, "day1.tar"}};
  r.requires_archives = {{"day1.tar", std::string(64, 'f')}};
  return r;
}

TEST(ExportRecord, EncodeParseRoundTripsAndIsCanonical) {
  std::string json = EncodeExportRecord(Sample());
  auto r = ParseExportRecord(json);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->tracker, "airgap");
  ASSERT_EQ(r->images.size(), 2u);
  EXPECT_EQ(r->images[1].name, "reg.example/db:\"2\"");
  EXPECT_EQ(r->images[1].digest, kB);
  ASSERT_EQ(r->blobs.size(), 2u);
  EXPECT_EQ(r->blobs[1].size, 20u);
  ASSERT_EQ(r->omitted.size(), 1u);
  EXPECT_EQ(r->omitted[0].size, 3000000000ULL);
  EXPECT_EQ(r->omitted[0].archive, "day1.tar");
  ASSERT_EQ(r->requires_archives.size(), 1u);
  EXPECT_EQ(r->requires_archives[0].sha256, std::string(64, 'f'));
  EXPECT_EQ(EncodeExportRecord(*r), json);
  // An empty record too.
  auto empty = ParseExportRecord(EncodeExportRecord({}));
  ASSERT_TRUE(empty.ok()) << empty.status().message();
  EXPECT_TRUE(empty->blobs.empty());
  EXPECT_TRUE(empty->tracker.empty());
}

TEST(ExportRecord, MalformedRecordsAreRefusedSayingWhat) {
  const std::string digest = "\"digest\":\"" + kA + "\"";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{not json", "not valid JSON"},
      {"[1,2]", "top level is not an object"},
      {"{\"tracker\":\"x\"}", "unknown version"},
      {"{\"silo_export\":2}", "unknown version"},
      {"{\"silo_export\":1,\"images\":[3]}", "images: an entry is not an object"},
      {"{\"silo_export\":1,\"requires\":[\"x\"]}", "requires: an entry is not an object"},
      {"{\"silo_export\":1,\"blobs\":[7]}", "blobs: an entry is not an object"},
      {"{\"silo_export\":1,\"blobs\":[{" + digest + "}]}", "lacks a sha256 digest or a size"},
      {"{\"silo_export\":1,\"blobs\":[{" + digest + ",\"size\":-1}]}", "lacks a sha256 digest or a size"},
      {"{\"silo_export\":1,\"omitted\":[{\"digest\":\"sha256:abc\",\"size\":1}]}", "'sha256:abc'"},
      {"{\"silo_export\":1,\"omitted\":[{\"digest\":\"md5:" + std::string(64, 'a') + "\",\"size\":1}]}",
       "lacks a sha256 digest"},
  };
  for (const auto& [json, want] : cases) {
    auto r = ParseExportRecord(json);
    ASSERT_FALSE(r.ok()) << json;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << json;
    EXPECT_NE(r.status().message().find("silo-export.json"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(want), std::string::npos) << json << ": " << r.status().message();
  }
}

TEST(ExportRecord, BaseKnowsWhichArchiveCarriesEachBlob) {
  ExportBase base;
  base.Add(Sample(), {"day2.tar", std::string(64, 'e')});
  EXPECT_EQ(base.carried.at(kA), "day2.tar");
  EXPECT_EQ(base.carried.at(kC), "day1.tar");  // omitted: its carrier, not day2
  EXPECT_EQ(base.archive_sha256.at("day2.tar"), std::string(64, 'e'));
  EXPECT_EQ(base.archive_sha256.at("day1.tar"), std::string(64, 'f'));
  // The first carrier stays.
  ExportRecord later;
  later.blobs = {{kA, 10, ""}};
  base.Add(later, {"day3.tar", std::string(64, '0')});
  EXPECT_EQ(base.carried.at(kA), "day2.tar");
}

class TrackerTest : public silo::testing::StoreTest {};

TEST_F(TrackerTest, NamesAreChecked) {
  for (const std::string& bad : std::vector<std::string>{"", "a/b", "..", ".", "a b", std::string(101, 'x'), "t\n"}) {
    EXPECT_EQ(ValidateTrackerName(bad).code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(ValidateTrackerName("Air-gap_1.x").ok());
  EXPECT_EQ(LoadTracker(*store_, "a/b").status().code(), Code::kInvalidArgument);
}

TEST_F(TrackerTest, RecordListDescribeRemove) {
  auto none = LoadTracker(*store_, "t");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->carried.empty());
  ASSERT_TRUE(RecordExport(*store_, "t", {"one.tar", std::string(64, '1')}, {{kA, 10, ""}, {kB, 20, ""}}, 2000).ok());
  ASSERT_TRUE(RecordExport(*store_, "t", {"two.tar", std::string(64, '2')}, {{kB, 20, ""}, {kC, 300, ""}}, 1000).ok());
  ASSERT_TRUE(RecordExport(*store_, "u", {"x.tar", std::string(64, '3')}, {{kA, 10, ""}}, 5).ok());
  auto base = LoadTracker(*store_, "t");
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(base->carried.at(kB), "one.tar");
  EXPECT_EQ(base->carried.at(kC), "two.tar");
  EXPECT_EQ(base->archive_sha256.at("two.tar"), std::string(64, '2'));

  auto names = ListTrackers(*store_);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"t", "u"}));
  auto t = DescribeTracker(*store_, "t");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_TRUE(t->has_value());
  const auto& s = **t;
  EXPECT_EQ(s.blobs, 3u);
  EXPECT_EQ(s.bytes, 330u);
  ASSERT_EQ(s.exports.size(), 2u);
  // Recording order, whatever the clock said.
  EXPECT_EQ(s.exports[0].archive, "one.tar");
  EXPECT_EQ(s.exports[0].blobs, 2u);
  EXPECT_EQ(s.exports[0].time_ns, 2000);
  EXPECT_EQ(s.exports[1].archive, "two.tar");
  EXPECT_EQ(s.exports[1].blobs, 1u);  // kB was carried by one.tar
  EXPECT_EQ(s.exports[1].bytes, 300u);
  EXPECT_EQ(s.exports[1].sha256, std::string(64, '2'));

  ASSERT_TRUE(RemoveTracker(*store_, "t").ok());
  auto gone = DescribeTracker(*store_, "t");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  EXPECT_TRUE(LoadTracker(*store_, "t")->carried.empty());
  EXPECT_EQ(*ListTrackers(*store_), std::vector<std::string>{"u"});
  Status again = RemoveTracker(*store_, "t");
  EXPECT_EQ(again.code(), Code::kNotFound);
  EXPECT_NE(again.message().find("no tracker named 't'"), std::string::npos) << again.message();
  // The other tracker is untouched.
  EXPECT_EQ(LoadTracker(*store_, "u")->carried.at(kA), "x.tar");
}

TEST_F(TrackerTest, EntriesWrittenBeforeListingAreReadAndBadOnesReported) {
  // A tracker from before trackers were listed: "a/<archive>" holds the sha256 alone.
  ASSERT_TRUE(store_->PutIndex("export/old", "a/old.tar", std::string(64, '9')).ok());
  ASSERT_TRUE(store_->PutIndex("export/old", "b/" + kA, "old.tar").ok());
  EXPECT_EQ(LoadTracker(*store_, "old")->archive_sha256.at("old.tar"), std::string(64, '9'));
  auto d = DescribeTracker(*store_, "old");
  ASSERT_TRUE(d.ok() && d->has_value());
  EXPECT_EQ((*d)->exports.at(0).time_ns, 0);
  EXPECT_EQ((*d)->blobs, 1u);
  // Not listed (it predates the list), but removable by name.
  EXPECT_TRUE(ListTrackers(*store_)->empty());
  EXPECT_TRUE(RemoveTracker(*store_, "old").ok());
  // An unreadable entry is a Corruption naming the archive.
  ASSERT_TRUE(store_->PutIndex("export/bad", "a/x.tar", std::string(64, '9') + " 12 zz").ok());
  auto bad = DescribeTracker(*store_, "bad");
  EXPECT_EQ(bad.status().code(), Code::kCorruption);
  EXPECT_NE(bad.status().message().find("x.tar"), std::string::npos) << bad.status().message();
}

TEST(DockerSave, ManifestJsonIsParsedAndBadOnesNamed) {
  auto m = ParseDockerSaveManifest(
      R"([{"Config":"abc.json","RepoTags":["app:1","reg.example/app:2"],"Layers":["./l1/layer.tar","l2.tar"]},
          {"Config":"def.json","RepoTags":null,"Layers":[]}])");
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->size(), 2u);
  EXPECT_EQ((*m)[0].repo_tags, (std::vector<std::string>{"app:1", "reg.example/app:2"}));
  EXPECT_EQ((*m)[0].layers, (std::vector<std::string>{"l1/layer.tar", "l2.tar"}));
  EXPECT_TRUE((*m)[1].repo_tags.empty());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "not valid JSON"},
      {"{}", "top level is not an array"},
      {"[]", "no images"},
      {"[1]", "entry 1 is not an object"},
      {R"([{"Layers":[]}])", "entry 1 has no Config"},
      {R"([{"Config":"a.json"}])", "entry 1 has no Layers"},
      {R"([{"Config":"a.json","Layers":[]},{"Config":"b.json","Layers":[1]}])", "entry 2: a Layers item"},
      {R"([{"Config":"a.json","RepoTags":"x","Layers":[]}])", "entry 1: RepoTags is not a list"},
  };
  for (const auto& [json, want] : cases) {
    auto r = ParseDockerSaveManifest(json);
    ASSERT_FALSE(r.ok()) << json;
    EXPECT_NE(r.status().message().find("manifest.json: " + want), std::string::npos) << r.status().message();
  }
}

TEST(DockerSave, ConfigDiffIdsAndLayerTypes) {
  auto ids = ConfigDiffIds(R"({"rootfs":{"type":"layers","diff_ids":[")" + kA + "\",\"" + kB + "\"]}}");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<std::string>{kA, kB}));
  EXPECT_EQ(ConfigDiffIds("{}").status().code(), Code::kCorruption);
  EXPECT_EQ(*DockerLayerMediaType(std::string("\x1f\x8b\x08\x00", 4), "l"), kDockerLayerGzip);
  EXPECT_EQ(*DockerLayerMediaType("etc/passwd", "l"), kDockerLayerTar);
  EXPECT_EQ(*DockerLayerMediaType("", "l"), kDockerLayerTar);
  auto zstd = DockerLayerMediaType("\x28\xb5\x2f\xfd", "layer x.tar");
  EXPECT_EQ(zstd.status().code(), Code::kUnsupported);
  EXPECT_NE(zstd.status().message().find("layer x.tar is zstd"), std::string::npos);
}

TEST(DockerSave, RebuiltManifestIsADockerManifestAndDeterministic) {
  BlobRef config{std::string(kDockerConfigType), kA, 100};
  std::vector<BlobRef> layers = {{std::string(kDockerLayerTar), kB, 2048}, {std::string(kDockerLayerGzip), kC, 7}};
  std::string bytes = BuildDockerManifest(config, layers);
  EXPECT_EQ(bytes, BuildDockerManifest(config, layers));
  auto m = ParseManifest(bytes);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->media_type, media::kDockerManifest);
  EXPECT_EQ(m->config.digest, kA);
  EXPECT_EQ(m->config.size, 100u);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[0].media_type, kDockerLayerTar);
  EXPECT_EQ(m->layers[1].digest, kC);
}

}  // namespace
}  // namespace silo::index
