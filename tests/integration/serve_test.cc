// `silo serve` against real clients on 127.0.0.1: skopeo pushes to it and pulls from it
// (digests compared with skopeo inspect --raw), curl for ranges, uploads, paging, mounts,
// deletes and referrers, raw sockets for malformed requests, TLS, SIGTERM, and other silo
// commands on a store the server owns.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/integration/serve_support.h"
#include "tests/integration/silo_cli.h"
#include "tests/support/imagegen.h"
#include "tests/support/process.h"
#include "tests/support/registry.h"
#include "tests/support/store_test.h"

namespace silo::testing {
namespace {

namespace fs = std::filesystem;

std::string SkopeoRaw(const std::string& ref, const std::vector<std::string>& extra = {"--tls-verify=false"}) {
  std::vector<std::string> argv = {"skopeo", "inspect", "--raw"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back("docker://" + ref);
  std::string out;
  if (RunCommand(argv, &out) != 0) throw std::runtime_error("skopeo inspect " + ref + " failed: " + out);
  return out;
}

// "127.0.0.1:1234/apps/x:1.0" -> "apps/x:1.0"
std::string RepoAndTag(const std::string& ref) {
  return ref.substr(ref.find('/') + 1);
}

class ServeTest : public RegistrySuite {
 protected:
  std::string store() const { return tmp_ / "store"; }
  std::unique_ptr<SiloServer> Serve(std::vector<std::string> extra = {}, bool tls = false) {
    return std::make_unique<SiloServer>(store(), tmp_ / "serve.log", std::move(extra), tls);
  }
  // Pushes `data` as a blob (monolithic POST ?digest=); returns its digest.
  std::string PushBlob(const SiloServer& s, const std::string& repo, const std::string& data) {
    std::string path = tmp_ / "blob.tmp";
    WriteFile(path, data);
    std::string digest = DigestOf(data);
    auto r = Curl({"-X", "POST", "--data-binary", "@" + path, "-H", "Content-Type: application/octet-stream",
                   s.url() + "/v2/" + repo + "/blobs/uploads/?digest=" + digest});
    EXPECT_EQ(r.status, 201) << r.body;
    return digest;
  }
  HttpResult PutManifest(const SiloServer& s, const std::string& repo, const std::string& ref, const std::string& json,
                         const std::string& type) {
    std::string path = tmp_ / "manifest.tmp";
    WriteFile(path, json);
    return Curl({"-X", "PUT", "--data-binary", "@" + path, "-H", "Content-Type: " + type,
                 s.url() + "/v2/" + repo + "/manifests/" + ref});
  }
  // A small OCI image (config + one layer) pushed under repo:tag; returns the manifest.
  std::string PushSmallImage(const SiloServer& s, const std::string& repo, const std::string& tag,
                             const std::string& layer_text) {
    std::string config = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\"}}";
    std::string cd = PushBlob(s, repo, config);
    std::string ld = PushBlob(s, repo, layer_text);
    std::string manifest =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{"
        "\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" +
        cd + "\",\"size\":" + std::to_string(config.size()) +
        "},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" + ld +
        "\",\"size\":" + std::to_string(layer_text.size()) + "}]}";
    auto r = PutManifest(s, repo, tag, manifest, "application/vnd.oci.image.manifest.v1+json");
    EXPECT_EQ(r.status, 201) << r.body;
    return manifest;
  }
};

TEST_F(ServeTest, SkopeoPushesEveryImageAndReadsBackTheSameDigests) {
  auto server = Serve();
  // imagegen pushes its whole set into silo serve with skopeo (indexes with --all).
  auto pushed = PushImageSet(server->host_port(), tmp_ / "gen");
  ASSERT_EQ(pushed.size(), refs_->size());
  for (const auto& ref : *refs_) {
    std::string name = RepoAndTag(ref);
    std::string theirs = SkopeoRaw(ref);
    std::string ours = SkopeoRaw(server->host_port() + "/" + name);
    EXPECT_EQ(DigestOf(ours), DigestOf(theirs)) << name;
  }
  // And back out: skopeo copy verifies every blob's digest as it writes the layout.
  std::string first = RepoAndTag(refs_->front());
  std::string out;
  ASSERT_EQ(RunCommand({"skopeo", "copy", "--all", "--src-tls-verify=false",
                        "docker://" + server->host_port() + "/" + first, "oci:" + (tmp_ / "layout") + ":x"},
                       &out),
            0)
      << out;
  // Read-only silo commands work while the server owns the store.
  auto images = RunSilo(store(), {"images"});
  EXPECT_EQ(images.code, 0) << images.err;
  EXPECT_NE(images.out.find("localhost/" + first.substr(0, first.find(':'))), std::string::npos) << images.out;
  auto refs = RunSilo(store(), {"ref", "ls"});
  EXPECT_EQ(refs.code, 0) << refs.err;
  EXPECT_NE(refs.out.find("image/localhost/"), std::string::npos);
}

TEST_F(ServeTest, ServesImagesPulledFromAnotherRegistryUnderTheirRegistryName) {
  auto pull = RunSilo(store(), {"pull", "--plain-http", registry_->host_port(), "--failed-file", tmp_ / "failed.txt",
                                refs_->at(0), refs_->at(1)});
  ASSERT_EQ(pull.code, 0) << pull.err;
  auto server = Serve();
  std::string reg = registry_->host_port();
  std::string served_reg = reg.substr(0, reg.find(':')) + "_" + reg.substr(reg.find(':') + 1);
  for (int i = 0; i < 2; ++i) {
    std::string name = RepoAndTag(refs_->at(i));
    EXPECT_EQ(DigestOf(SkopeoRaw(server->host_port() + "/" + served_reg + "/" + name)),
              DigestOf(SkopeoRaw(refs_->at(i))))
        << name;
  }
  auto catalog = Curl({server->url() + "/v2/_catalog"});
  EXPECT_EQ(catalog.status, 200);
  EXPECT_NE(catalog.body.find(served_reg + "/"), std::string::npos) << catalog.body;
}

TEST_F(ServeTest, BlobRangesHeadAndErrors) {
  auto server = Serve();
  std::string data = RandomBytes(3 * 1024 * 1024 + 123, 7);
  std::string d = PushBlob(*server, "app", data);
  std::string url = server->url() + "/v2/app/blobs/" + d;
  auto whole = Curl({url});
  ASSERT_EQ(whole.status, 200);
  EXPECT_EQ(whole.body, data);
  EXPECT_EQ(whole.headers["docker-content-digest"], d);
  EXPECT_EQ(whole.headers["accept-ranges"], "bytes");
  auto part = Curl({"-H", "Range: bytes=1000-1048575", url});
  ASSERT_EQ(part.status, 206);
  EXPECT_EQ(part.body, data.substr(1000, 1048576 - 1000));
  EXPECT_EQ(part.headers["content-range"], "bytes 1000-1048575/" + std::to_string(data.size()));
  auto tail = Curl({"-H", "Range: bytes=-10", url});
  EXPECT_EQ(tail.status, 206);
  EXPECT_EQ(tail.body, data.substr(data.size() - 10));
  auto beyond = Curl({"-H", "Range: bytes=" + std::to_string(data.size()) + "-", url});
  EXPECT_EQ(beyond.status, 416);
  EXPECT_EQ(beyond.headers["content-range"], "bytes */" + std::to_string(data.size()));
  auto head = Curl({"-I", url});
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.headers["content-length"], std::to_string(data.size()));
  EXPECT_TRUE(head.body.empty());

  auto unknown = Curl({server->url() + "/v2/app/blobs/sha256:" + std::string(64, '0')});
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(unknown.body.find("\"BLOB_UNKNOWN\""), std::string::npos) << unknown.body;
  auto bad = Curl({server->url() + "/v2/app/blobs/sha256:xyz"});
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("\"DIGEST_INVALID\""), std::string::npos) << bad.body;
  auto bad_name = Curl({server->url() + "/v2/App/blobs/" + d});
  EXPECT_EQ(bad_name.status, 400);
  EXPECT_NE(bad_name.body.find("\"NAME_INVALID\""), std::string::npos) << bad_name.body;
  // A blob whose bytes do not match the digest given is refused and not stored.
  std::string path = tmp_ / "wrong.tmp";
  WriteFile(path, "not the content");
  auto wrong = Curl({"-X", "POST", "--data-binary", "@" + path, server->url() + "/v2/app/blobs/uploads/?digest=" + d});
  EXPECT_EQ(wrong.status, 400);
  EXPECT_NE(wrong.body.find("DIGEST_INVALID"), std::string::npos) << wrong.body;
  auto not_stored = Curl({"-I", server->url() + "/v2/app/blobs/" + DigestOf("not the content")});
  EXPECT_EQ(not_stored.status, 404);
}

// Bodies are read ahead of the network in pieces (BodyFeed); many clients at once, more
// than the few that get the deep read-ahead, and ranges deep inside still get exact bytes.
TEST_F(ServeTest, LargeBlobsStreamWholeToManyClientsAtOnce) {
  auto server = Serve();
  std::string data = RandomBytes(24 * 1024 * 1024 + 4321, 9);
  std::string d = PushBlob(*server, "big", data);
  std::string url = server->url() + "/v2/big/blobs/" + d;
  std::vector<HttpResult> got(7);
  std::vector<std::thread> clients;
  for (size_t i = 0; i < got.size(); ++i) {
    clients.emplace_back([&, i] {
      got[i] = i == 0 ? Curl({"-H", "Range: bytes=5000000-20000000", url}) : Curl({"--limit-rate", "40M", url});
    });
  }
  for (auto& t : clients) t.join();
  ASSERT_EQ(got[0].status, 206);
  EXPECT_TRUE(got[0].body == data.substr(5000000, 15000001));
  for (size_t i = 1; i < got.size(); ++i) {
    ASSERT_EQ(got[i].status, 200) << i;
    EXPECT_EQ(got[i].body.size(), data.size()) << i;
    EXPECT_TRUE(got[i].body == data) << i;
  }
}

// A blob whose stored bytes are damaged is never served wrong: the body stops short of the
// damage (the client sees a truncated transfer) and the server goes on serving others.
TEST_F(ServeTest, ADamagedBlobIsCutShortAndTheServerKeepsServing) {
  std::string data = RandomBytes(6 * 1024 * 1024, 10);
  std::string other = RandomBytes(100000, 11);
  std::string d, od;
  {
    auto server = Serve();
    d = PushBlob(*server, "dmg", data);
    od = PushBlob(*server, "dmg", other);
    ASSERT_EQ(server->Stop(), 0);
  }
  ASSERT_TRUE(CorruptStoredBytes(store(), std::string_view(data).substr(4 * 1024 * 1024, 64)));
  auto server = Serve();
  auto r = Curl({server->url() + "/v2/dmg/blobs/" + d});
  EXPECT_EQ(r.status, -18) << "curl should report a partial transfer; body " << r.body.size() << " bytes";
  EXPECT_EQ(r.body.find(data.substr(4 * 1024 * 1024, 4096)), std::string::npos);
  auto ok = Curl({server->url() + "/v2/dmg/blobs/" + od});
  ASSERT_EQ(ok.status, 200);
  EXPECT_TRUE(ok.body == other);
}

// The value of `name` in a /metrics text; -1 when absent.
long long Metric(const std::string& text, const std::string& name) {
  size_t at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stoll(text.substr(at + name.size() + 2));
}

// A hot blob is read from the store once: later GETs (whole or by range) are served from
// the chunk cache, byte for byte; with --chunk-cache-size 0 every GET reads the store.
TEST_F(ServeTest, HotBlobsAreServedFromTheChunkCache) {
  std::string data = RandomBytes(6 * 1024 * 1024 + 77, 12);
  std::string d;
  {
    auto server = Serve({"--chunk-cache-size", "0"});
    d = PushBlob(*server, "hot", data);
    auto r = Curl({server->url() + "/v2/hot/blobs/" + d});
    ASSERT_EQ(r.status, 200);
    EXPECT_TRUE(r.body == data);
    auto m = Curl({server->url() + "/metrics"});
    EXPECT_EQ(Metric(m.body, "silo_chunk_cache_hits_total"), -1) << m.body;
    ASSERT_EQ(server->Stop(), 0);
  }
  auto server = Serve({"--chunk-cache-size", "64M"});
  std::string url = server->url() + "/v2/hot/blobs/" + d;
  auto first = Curl({url});
  ASSERT_EQ(first.status, 200);
  EXPECT_TRUE(first.body == data);
  auto m1 = Curl({server->url() + "/metrics"}).body;
  long long misses = Metric(m1, "silo_chunk_cache_misses_total");
  EXPECT_GT(misses, 0) << m1;
  EXPECT_EQ(Metric(m1, "silo_chunk_cache_hits_total"), 0) << m1;
  EXPECT_EQ(Metric(m1, "silo_chunk_cache_capacity_bytes"), 64 << 20) << m1;
  EXPECT_GT(Metric(m1, "silo_chunk_cache_usage_bytes"), static_cast<long long>(data.size())) << m1;
  auto second = Curl({url});
  auto range = Curl({"-H", "Range: bytes=3000000-5999999", url});
  ASSERT_EQ(second.status, 200);
  EXPECT_TRUE(second.body == data);
  ASSERT_EQ(range.status, 206);
  EXPECT_TRUE(range.body == data.substr(3000000, 3000000));
  auto m2 = Curl({server->url() + "/metrics"}).body;
  EXPECT_EQ(Metric(m2, "silo_chunk_cache_misses_total"), misses) << m2;
  EXPECT_GE(Metric(m2, "silo_chunk_cache_hits_total"), misses) << m2;

  auto bad = RunSilo(store() + "-other", {"serve", "--listen", "127.0.0.1:" + std::to_string(FreeLoopbackPort()),
                                          "--chunk-cache-size", "lots"});
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("--chunk-cache-size"), std::string::npos) << bad.err;
}

TEST_F(ServeTest, ChunkedUploadChecksRangesResumesAndVerifiesTheDigest) {
  auto server = Serve();
  std::string data = RandomBytes(5 * 1024 * 1024, 11);
  std::string d = DigestOf(data);
  auto start = Curl({"-X", "POST", server->url() + "/v2/team/app/blobs/uploads/"});
  ASSERT_EQ(start.status, 202) << start.body;
  std::string location = start.headers["location"];
  ASSERT_FALSE(location.empty());
  std::string url = server->url() + location;
  std::string half = tmp_ / "half";
  WriteFile(half, data.substr(0, data.size() / 2));
  auto p1 = Curl({"-X", "PATCH", "--data-binary", "@" + half, "-H",
                  "Content-Range: 0-" + std::to_string(data.size() / 2 - 1), url});
  ASSERT_EQ(p1.status, 202) << p1.body;
  EXPECT_EQ(p1.headers["range"], "0-" + std::to_string(data.size() / 2 - 1));
  // A chunk that does not start where the upload stands: 416 and the current range.
  std::string rest = tmp_ / "rest";
  WriteFile(rest, data.substr(data.size() / 2));
  auto gap = Curl({"-X", "PATCH", "--data-binary", "@" + rest, "-H", "Content-Range: 10-20", url});
  EXPECT_EQ(gap.status, 416);
  EXPECT_EQ(gap.headers["range"], "0-" + std::to_string(data.size() / 2 - 1));
  // The upload's state survives and is reported by GET.
  auto state = Curl({url});
  EXPECT_EQ(state.status, 204);
  EXPECT_EQ(state.headers["range"], "0-" + std::to_string(data.size() / 2 - 1));
  // Nothing is visible before the final PUT.
  EXPECT_EQ(Curl({"-I", server->url() + "/v2/team/app/blobs/" + d}).status, 404);
  // A final PUT naming the wrong digest fails and stores nothing.
  auto p2 = Curl({"-X", "PATCH", "--data-binary", "@" + rest, url});
  ASSERT_EQ(p2.status, 202);
  std::string sep = url.find('?') == std::string::npos ? "?" : "&";
  auto wrong = Curl({"-X", "PUT", url + sep + "digest=" + DigestOf("x")});
  EXPECT_EQ(wrong.status, 400);
  EXPECT_EQ(Curl({"-I", server->url() + "/v2/team/app/blobs/" + d}).status, 404);
  EXPECT_EQ(Curl({"-I", server->url() + "/v2/team/app/blobs/" + DigestOf("x")}).status, 404);

  // Again, correctly: POST, PATCH, PATCH, PUT.
  start = Curl({"-X", "POST", server->url() + "/v2/team/app/blobs/uploads/"});
  url = server->url() + start.headers["location"];
  ASSERT_EQ(Curl({"-X", "PATCH", "--data-binary", "@" + half, url}).status, 202);
  ASSERT_EQ(Curl({"-X", "PATCH", "--data-binary", "@" + rest, url}).status, 202);
  auto done = Curl({"-X", "PUT", url + sep + "digest=" + d});
  ASSERT_EQ(done.status, 201) << done.body;
  EXPECT_EQ(done.headers["docker-content-digest"], d);
  EXPECT_EQ(Curl({server->url() + "/v2/team/app/blobs/" + d}).body, data);
  // The session is gone after the commit.
  EXPECT_EQ(Curl({url}).status, 404);
}

TEST_F(ServeTest, ManifestsTagsPagingMountDeleteAndBadManifests) {
  auto server = Serve();
  for (const std::string tag : {"a", "b", "c", "d", "e"}) PushSmallImage(*server, "paged", tag, "layer " + tag);
  std::string manifest = PushSmallImage(*server, "other/repo", "1.0", "other layer");
  std::string md = DigestOf(manifest);

  auto get = Curl({server->url() + "/v2/other/repo/manifests/1.0"});
  ASSERT_EQ(get.status, 200);
  EXPECT_EQ(get.body, manifest);
  EXPECT_EQ(get.headers["docker-content-digest"], md);
  EXPECT_EQ(get.headers["content-type"], "application/vnd.oci.image.manifest.v1+json");
  auto by_digest = Curl({"-I", server->url() + "/v2/other/repo/manifests/" + md});
  EXPECT_EQ(by_digest.status, 200);
  EXPECT_EQ(by_digest.headers["content-length"], std::to_string(manifest.size()));

  // Tags, two at a time, following Link.
  std::vector<std::string> seen;
  std::string next = "/v2/paged/tags/list?n=2";
  int pages = 0;
  while (!next.empty() && pages < 10) {
    auto page = Curl({server->url() + next});
    ASSERT_EQ(page.status, 200) << page.body;
    ++pages;
    for (const std::string tag : {"a", "b", "c", "d", "e"}) {
      if (page.body.find("\"" + tag + "\"") != std::string::npos) seen.push_back(tag);
    }
    next.clear();
    if (auto link = page.headers.find("link"); link != page.headers.end()) {
      next = link->second.substr(1, link->second.find('>') - 1);
    }
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  auto catalog = Curl({server->url() + "/v2/_catalog?n=1"});
  EXPECT_EQ(catalog.body, "{\"repositories\":[\"other/repo\"]}\n");
  EXPECT_NE(catalog.headers["link"].find("last=other/repo"), std::string::npos);
  auto catalog2 = Curl({server->url() + "/v2/_catalog?n=1&last=other/repo"});
  EXPECT_EQ(catalog2.body, "{\"repositories\":[\"paged\"]}\n");
  EXPECT_EQ(Curl({server->url() + "/v2/nothing/tags/list"}).status, 404);

  // Mount: a blob the store has is mounted at once; an unknown one starts an upload.
  std::string layer = DigestOf("other layer");
  auto mount = Curl({"-X", "POST", server->url() + "/v2/third/blobs/uploads/?mount=" + layer + "&from=other/repo"});
  EXPECT_EQ(mount.status, 201);
  EXPECT_EQ(mount.headers["location"], "/v2/third/blobs/" + layer);
  auto no_mount =
      Curl({"-X", "POST", server->url() + "/v2/third/blobs/uploads/?mount=" + DigestOf("nope") + "&from=other/repo"});
  EXPECT_EQ(no_mount.status, 202);

  // Bad manifests: not JSON, a digest that does not match, a missing blob.
  auto junk = PutManifest(*server, "paged", "bad", "{not json", "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(junk.status, 400);
  EXPECT_NE(junk.body.find("MANIFEST_INVALID"), std::string::npos) << junk.body;
  auto mismatch = PutManifest(*server, "paged", DigestOf("x"), manifest, "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(mismatch.status, 400);
  EXPECT_NE(mismatch.body.find("DIGEST_INVALID"), std::string::npos);
  std::string dangling = manifest;
  dangling.replace(dangling.find(layer), layer.size(), DigestOf("absent"));
  auto missing = PutManifest(*server, "paged", "dangling", dangling, "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.body.find("MANIFEST_BLOB_UNKNOWN"), std::string::npos) << missing.body;
  EXPECT_EQ(Curl({server->url() + "/v2/paged/manifests/bad"}).status, 404);

  // Delete a tag, then a manifest by digest (every tag of it in that repository).
  EXPECT_EQ(Curl({"-X", "DELETE", server->url() + "/v2/paged/manifests/a"}).status, 202);
  EXPECT_EQ(Curl({server->url() + "/v2/paged/manifests/a"}).status, 404);
  EXPECT_EQ(Curl({"-X", "DELETE", server->url() + "/v2/other/repo/manifests/" + md}).status, 202);
  EXPECT_EQ(Curl({server->url() + "/v2/other/repo/manifests/1.0"}).status, 404);
  EXPECT_EQ(Curl({"-X", "DELETE", server->url() + "/v2/other/repo/manifests/" + md}).status, 404);
}

TEST_F(ServeTest, ReferrersListArtifactsBySubjectWithAFilter) {
  auto server = Serve();
  std::string subject = PushSmallImage(*server, "app", "1.0", "the layer");
  std::string sd = DigestOf(subject);
  std::string empty = PushBlob(*server, "app", "{}");
  auto artifact = [&](const std::string& type, const std::string& payload) {
    std::string pd = PushBlob(*server, "app", payload);
    std::string m =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"artifactType\":\"" +
        type + "\",\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"" + empty +
        "\",\"size\":2},\"layers\":[{\"mediaType\":\"text/plain\",\"digest\":\"" + pd +
        "\",\"size\":" + std::to_string(payload.size()) +
        "}],\"subject\":{\"mediaType\":"
        "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" +
        sd + "\",\"size\":" + std::to_string(subject.size()) + "},\"annotations\":{\"org.example\":\"yes\"}}";
    auto r = PutManifest(*server, "app", DigestOf(m), m, "application/vnd.oci.image.manifest.v1+json");
    EXPECT_EQ(r.status, 201) << r.body;
    EXPECT_EQ(r.headers["oci-subject"], sd);
    return DigestOf(m);
  };
  std::string sig = artifact("application/example.signature", "signed");
  std::string sbom = artifact("application/example.sbom", "sbom");
  auto all = Curl({server->url() + "/v2/app/referrers/" + sd});
  ASSERT_EQ(all.status, 200);
  EXPECT_EQ(all.headers["content-type"], "application/vnd.oci.image.index.v1+json");
  EXPECT_NE(all.body.find(sig), std::string::npos);
  EXPECT_NE(all.body.find(sbom), std::string::npos);
  EXPECT_NE(all.body.find("\"org.example\":\"yes\""), std::string::npos) << all.body;
  auto sigs = Curl({server->url() + "/v2/app/referrers/" + sd + "?artifactType=application/example.signature"});
  EXPECT_NE(sigs.body.find(sig), std::string::npos);
  EXPECT_EQ(sigs.body.find(sbom), std::string::npos);
  EXPECT_EQ(sigs.headers["oci-filters-applied"], "artifactType");
  // A deleted referrer leaves the list; an unknown subject has an empty one.
  EXPECT_EQ(Curl({"-X", "DELETE", server->url() + "/v2/app/manifests/" + sig}).status, 202);
  EXPECT_EQ(Curl({server->url() + "/v2/app/referrers/" + sd}).body.find(sig), std::string::npos);
  auto none = Curl({server->url() + "/v2/app/referrers/" + DigestOf("nothing")});
  EXPECT_EQ(none.status, 200);
  EXPECT_NE(none.body.find("\"manifests\":[]"), std::string::npos);
}

TEST_F(ServeTest, MalformedRequestsGetCleanErrorsAndTheServerKeepsServing) {
  auto server = Serve();
  std::string huge = "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n";
  std::string reply = RawExchange(server->port(), huge, true);
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 431")) << reply.substr(0, 200);
  std::string garbage = RawExchange(server->port(), "NOT HTTP AT ALL\r\n\r\n", true);
  EXPECT_TRUE(garbage.starts_with("HTTP/1.1 400")) << garbage.substr(0, 200);
  // A client that vanishes in the middle of a blob upload.
  auto start = Curl({"-X", "POST", server->url() + "/v2/app/blobs/uploads/"});
  ASSERT_EQ(start.status, 202);
  std::string location = start.headers["location"];
  std::string partial =
      "PATCH " + location + " HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" + std::string(300000, 'z');
  RawExchange(server->port(), partial, false);
  // What arrived was kept, the session is still usable, and the server answers.
  std::string range;
  for (int i = 0; i < 100; ++i) {
    auto state = Curl({server->url() + location});
    if (state.status == 204) {
      range = state.headers["range"];
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the server is still reading the cut request
  }
  EXPECT_EQ(range, "0-299999");
  EXPECT_EQ(Curl({server->url() + "/healthz"}).status, 200);
  EXPECT_EQ(Curl({server->url() + "/v2/"}).status, 200);
  auto metrics = Curl({server->url() + "/metrics"});
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("silo_http_requests_total{code=\"431\"} 1"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("silo_http_requests_in_flight"), std::string::npos);
  // Every request has an access-log line.
  std::string log = server->log();
  EXPECT_NE(log.find("method=GET target=/v2/ status=200"), std::string::npos) << log;
  EXPECT_NE(log.find("status=431"), std::string::npos);
}

TEST_F(ServeTest, TlsWithASelfSignedCertificate) {
  std::string cert = tmp_ / "certs/ca.crt", key = tmp_ / "server.key";
  fs::create_directories(tmp_ / "certs");
  std::string out;
  ASSERT_EQ(RunCommand({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"},
                       &out),
            0)
      << out;
  // Unreadable or wrong TLS files: a clear error naming the file, nothing served.
  auto missing = RunSilo(store(), {"serve", "--listen", "127.0.0.1:" + std::to_string(FreeLoopbackPort()), "--tls-cert",
                                   cert, "--tls-key", tmp_ / "nope.key"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find(tmp_ / "nope.key"), std::string::npos) << missing.err;
  auto swapped = RunSilo(store(), {"serve", "--listen", "127.0.0.1:" + std::to_string(FreeLoopbackPort()), "--tls-cert",
                                   key, "--tls-key", cert});
  EXPECT_EQ(swapped.code, 2);
  EXPECT_NE(swapped.err.find("not a PEM certificate chain"), std::string::npos) << swapped.err;
  // A shared file goes over TLS too (read ahead on the pool, not sendfile), ranges included.
  fs::create_directories(tmp_ / "www");
  std::string file = RandomBytes(5 * 1024 * 1024 + 17, 12);
  WriteFile(tmp_ / "www/f.bin", file);
  auto server = Serve({"--tls-cert", cert, "--tls-key", key, "--share", "www=" + std::string(tmp_ / "www")}, true);
  auto v2 = Curl({"--cacert", cert, server->url() + "/v2/"});
  EXPECT_EQ(v2.status, 200) << v2.body;
  auto whole = Curl({"--cacert", cert, server->url() + "/files/www/f.bin"});
  ASSERT_EQ(whole.status, 200) << whole.body.substr(0, 200);
  EXPECT_TRUE(whole.body == file);
  auto part = Curl({"--cacert", cert, "-H", "Range: bytes=1000000-", server->url() + "/files/www/f.bin"});
  ASSERT_EQ(part.status, 206);
  EXPECT_TRUE(part.body == file.substr(1000000));
  EXPECT_LT(Curl({server->url() + "/v2/"}).status, 0);  // unknown CA: curl refuses
  // skopeo pushes over TLS, verifying the certificate, and reads it back.
  ASSERT_EQ(RunCommand({"skopeo", "copy", "--src-tls-verify=false", "--dest-cert-dir", tmp_ / "certs",
                        "docker://" + refs_->back(), "docker://" + server->host_port() + "/tls/app:1"},
                       &out),
            0)
      << out;
  EXPECT_EQ(DigestOf(SkopeoRaw(server->host_port() + "/tls/app:1", {"--cert-dir", tmp_ / "certs"})),
            DigestOf(SkopeoRaw(refs_->back())));
}

TEST_F(ServeTest, SigtermFinishesTheResponseInFlightThenExits) {
  auto server = Serve();
  // Bigger than what the loopback socket buffers absorb, so the response is still being
  // sent when the signal arrives.
  std::string data = RandomBytes(24 * 1024 * 1024, 5);
  std::string d = PushBlob(*server, "app", data);
  ProcessOptions o;
  o.argv = {"curl",
            "-sS",
            "--noproxy",
            "*",
            "--limit-rate",
            "4M",
            "-o",
            tmp_ / "slow.out",
            server->url() + "/v2/app/blobs/" + d};
  o.stderr_path = tmp_ / "curl.err";
  Process slow(o);
  // Wait until the server has started answering it.
  for (int i = 0; i < 200 && !fs::exists(tmp_ / "slow.out"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_TRUE(server->process().Running());
  ASSERT_EQ(::kill(server->process().pid(), SIGTERM), 0);
  auto code = server->process().Wait(std::chrono::seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << server->log();
  EXPECT_EQ(slow.Wait(std::chrono::seconds(60)), 0) << ReadFileToString(tmp_ / "curl.err");
  EXPECT_TRUE(ReadFileToString(tmp_ / "slow.out") == data);
  // The server logged the whole response before it went, and then said it stopped.
  std::string log = server->log();
  EXPECT_NE(log.find("target=/v2/app/blobs/" + d + " status=200 bytes=" + std::to_string(data.size())),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("silo serve: stopped"), std::string::npos);
  EXPECT_FALSE(fs::exists(store() + "/serve.pid"));
  // New connections are refused once it has gone.
  EXPECT_LT(Curl({server->url() + "/healthz"}).status, 0);
}

TEST_F(ServeTest, OtherCommandsOnAStoreTheServerOwns) {
  auto server = Serve();
  std::string d = PushBlob(*server, "app", "hello from the server\n");
  auto cat = RunSilo(store(), {"cat", d});
  EXPECT_EQ(cat.code, 0) << cat.err;
  EXPECT_EQ(cat.out, "hello from the server\n");
  auto stat = RunSilo(store(), {"stat", d});
  EXPECT_EQ(stat.code, 0) << stat.err;
  auto du = RunSilo(store(), {"du"});
  EXPECT_EQ(du.code, 0) << du.err;
  // A writing command names the server and what to do instead of a lock error.
  WriteFile(tmp_ / "f", "x");
  auto put = RunSilo(store(), {"put", tmp_ / "f"});
  EXPECT_EQ(put.code, 2);
  EXPECT_NE(put.err.find("silo serve"), std::string::npos) << put.err;
  EXPECT_NE(put.err.find(std::to_string(server->process().pid())), std::string::npos) << put.err;
  EXPECT_EQ(put.err.find("LOCK"), std::string::npos) << put.err;
  // A second server on the same store says who has it.
  auto second = RunSilo(store(), {"serve", "--listen", "127.0.0.1:" + std::to_string(FreeLoopbackPort())});
  EXPECT_NE(second.code, 0);
  EXPECT_NE(second.err.find(std::to_string(server->process().pid())), std::string::npos) << second.err;
}

TEST_F(ServeTest, PullOnAServedStoreRunsInTheServer) {
  auto server = Serve();
  auto pull = RunSilo(store(), {"pull", "--plain-http", registry_->host_port(), "--failed-file", tmp_ / "failed.txt",
                                refs_->at(2), registry_->host_port() + "/no/such:image"});
  EXPECT_EQ(pull.code, 1) << pull.err;
  EXPECT_NE(pull.err.find("pid " + std::to_string(server->process().pid())), std::string::npos) << pull.err;
  EXPECT_EQ(Trim(ReadFileToString(tmp_ / "failed.txt")), registry_->host_port() + "/no/such:image");
  // The pulled image is in the store the server serves, under its registry's name.
  std::string reg = registry_->host_port();
  std::string served = server->host_port() + "/" + reg.substr(0, reg.find(':')) + "_" + reg.substr(reg.find(':') + 1) +
                       "/" + RepoAndTag(refs_->at(2));
  EXPECT_EQ(DigestOf(SkopeoRaw(served)), DigestOf(SkopeoRaw(refs_->at(2))));
  EXPECT_NE(pull.out.find(DigestOf(SkopeoRaw(refs_->at(2)))), std::string::npos) << pull.out;
  // Without the token the admin endpoint refuses.
  auto anon = Curl({"-X", "POST", "--data-binary", "ref x", server->url() + "/silo/v1/pull"});
  EXPECT_EQ(anon.status, 401);
}

TEST_F(ServeTest, DaemonStatusStopAndRestart) {
  int port = FreeLoopbackPort();
  std::string listen = "127.0.0.1:" + std::to_string(port);
  auto started = RunSilo(store(), {"serve", "--daemon", "--listen", listen, "--access-log", "off"});
  ASSERT_EQ(started.code, 0) << started.err;
  EXPECT_NE(started.out.find(listen), std::string::npos) << started.out;
  auto status = RunSilo(store(), {"serve", "status"});
  EXPECT_EQ(status.code, 0);
  EXPECT_NE(status.out.find(listen), std::string::npos) << status.out;
  std::string pid1 = status.out.substr(status.out.find("pid ") + 4);
  pid1 = pid1.substr(0, pid1.find(','));
  EXPECT_EQ(Curl({"http://" + listen + "/healthz"}).status, 200);
  auto restarted = RunSilo(store(), {"serve", "restart"});
  EXPECT_EQ(restarted.code, 0) << restarted.err;
  auto status2 = RunSilo(store(), {"serve", "status"});
  EXPECT_EQ(status2.code, 0);
  EXPECT_EQ(status2.out.find("pid " + pid1 + ","), std::string::npos) << status2.out;
  EXPECT_EQ(Curl({"http://" + listen + "/healthz"}).status, 200);
  auto stopped = RunSilo(store(), {"serve", "stop"});
  EXPECT_EQ(stopped.code, 0) << stopped.err;
  EXPECT_EQ(RunSilo(store(), {"serve", "status"}).code, 1);
  EXPECT_LT(Curl({"http://" + listen + "/healthz"}).status, 0);
  EXPECT_FALSE(fs::exists(store() + "/serve.pid"));
}

TEST_F(ServeTest, PodmanPullsFromIt) {
  auto server = Serve();
  std::string out;
  ASSERT_EQ(RunCommand({"skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                        "docker://" + refs_->back(), "docker://" + server->host_port() + "/podman/app:1"},
                       &out),
            0)
      << out;
  std::string root = tmp_ / "podman-root", runroot = tmp_ / "podman-run";
  int rc = RunCommand({"podman", "--root", root, "--runroot", runroot, "--storage-driver", "vfs", "pull",
                       "--tls-verify=false", server->host_port() + "/podman/app:1"},
                      &out);
  if (rc != 0 && (out.find("namespace") != std::string::npos || out.find("newuidmap") != std::string::npos ||
                  out.find("cannot re-exec") != std::string::npos || out.find("permission") != std::string::npos)) {
    GTEST_SKIP() << "podman cannot run here: " << out.substr(0, 300);
  }
  EXPECT_EQ(rc, 0) << out;
  RunCommand({"podman", "--root", root, "--runroot", runroot, "--storage-driver", "vfs", "rmi", "-a", "-f"}, &out);
}

}  // namespace
}  // namespace silo::testing
