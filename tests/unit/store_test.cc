// The store against a real RocksDB in a per-test temporary directory.
#include "tests/support/store_test.h"

#include <dirent.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "store/records.h"

namespace silo::store {
namespace {

using testing::RandomBytes;

class Store : public testing::StoreTest {
 protected:
  void SetUp() override {
    options_.chunking = {4096, 16384, 65536};
    options_.inline_max = 1024;
    StoreTest::SetUp();
  }

  std::string MustRead(const Digest& d) {
    auto r = store_->ReadAll(d, 1ull << 40);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : std::string();
  }
};

TEST_F(Store, RoundTripsEveryInterestingSize) {
  const auto& p = store_->chunk_params();
  for (size_t n : {size_t{0}, size_t{1}, size_t{1024}, size_t{1025}, size_t{p.min_size - 1}, size_t{p.min_size},
                   size_t{p.min_size + 1}, size_t{p.avg_size}, size_t{p.max_size - 1}, size_t{p.max_size},
                   size_t{p.max_size + 1}, size_t{3 * p.max_size + 7}, size_t{1 << 20}}) {
    std::string data = RandomBytes(n, n + 1);
    ObjectInfo info = MustPut(data);
    EXPECT_EQ(info.digest, Digest::Sha256(Sha256::Of(AsBytes(data)))) << n;
    EXPECT_EQ(info.size, n);
    EXPECT_EQ(info.inlined, n <= 1024) << n;
    EXPECT_TRUE(MustRead(info.digest) == data) << n;
    auto st = store_->Stat(info.digest);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->size, n);
  }
  Reopen();  // and everything is still there
  std::string big = RandomBytes(1 << 20, (1 << 20) + 1);
  EXPECT_TRUE(MustRead(Digest::Sha256(Sha256::Of(AsBytes(big)))) == big);
}

TEST_F(Store, StreamingWritesInOddPiecesGiveTheSameObject) {
  std::string data = RandomBytes(500000, 5);
  ObjectInfo whole = MustPut(data);
  auto w = store_->NewWriter();
  ASSERT_TRUE(w.ok());
  for (size_t pos = 0, step = 1; pos < data.size(); pos += step, step = step * 3 % 70001 + 1) {
    size_t n = std::min(step, data.size() - pos);
    ASSERT_TRUE((*w)->Write(AsBytes(std::string_view(data).substr(pos, n))).ok());
  }
  auto info = (*w)->Commit();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->digest, whole.digest);
  EXPECT_TRUE(info->existed);
  EXPECT_EQ(info->new_chunks, 0u);
}

TEST_F(Store, LargeWritesHashedOnTheLaneMixWithSmallOnesInOrder) {
  // Writes of 1 MiB and more are hashed on the writer's lane thread, smaller ones inline;
  // borrowed and owned, in any mix, the digest and the SHA-1 are those of the whole.
  std::string data = RandomBytes((9 << 20) + 12345, 21);
  PutOptions options;
  options.sha1_alias = true;
  auto w = store_->NewWriter(options);
  ASSERT_TRUE(w.ok());
  const size_t pieces[] = {3 << 20, 100000, 2 << 20, 1, 1 << 20, (1 << 20) - 1, 7};
  size_t pos = 0;
  for (size_t i = 0; pos < data.size(); ++i) {
    size_t n = i < std::size(pieces) ? std::min(pieces[i], data.size() - pos) : data.size() - pos;
    if (i % 2 == 1) {  // the last, large write is owned
      auto owned = std::make_shared<std::string>(data.substr(pos, n));
      ASSERT_TRUE((*w)->WriteShared(AsBytes(*owned), owned).ok());
    } else {
      ASSERT_TRUE((*w)->Write(AsBytes(std::string_view(data).substr(pos, n))).ok());
    }
    pos += n;
  }
  auto info = (*w)->Commit();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->digest, Digest::Sha256(Sha256::Of(AsBytes(data))));
  Sha1 sha1;
  sha1.Update(AsBytes(data));
  ASSERT_TRUE(info->sha1.has_value());
  EXPECT_EQ(*info->sha1, Digest::Sha1(sha1.Final()));
  EXPECT_TRUE(MustRead(info->digest) == data);
}

TEST_F(Store, RangesAtEveryEdge) {
  std::string data = RandomBytes(300000, 7);
  ObjectInfo info = MustPut(data);
  auto r = store_->NewReader(info.digest);
  ASSERT_TRUE(r.ok());
  auto rec_bounds = [&] {
    std::vector<uint64_t> b{0};
    // Chunk boundaries are not exposed; probe every position near multiples of the sizes
    // the chunker can produce, plus the ends.
    for (uint64_t x = 1; x < data.size(); x += 4093) b.push_back(x);
    b.push_back(data.size() - 1);
    return b;
  }();
  std::vector<uint8_t> buf(70000);
  for (uint64_t start : rec_bounds) {
    for (size_t len : {size_t{1}, size_t{2}, size_t{4096}, size_t{65537}}) {
      ASSERT_TRUE((*r)->Seek(start).ok());
      size_t want = std::min<size_t>(len, data.size() - start);
      auto n = (*r)->Read({buf.data(), len});
      ASSERT_TRUE(n.ok());
      ASSERT_EQ(*n, want);
      ASSERT_EQ(std::string_view(reinterpret_cast<char*>(buf.data()), *n), std::string_view(data).substr(start, want))
          << "start " << start << " len " << len;
    }
  }
  ASSERT_TRUE((*r)->Seek(data.size()).ok());
  EXPECT_EQ(*(*r)->Read({buf.data(), buf.size()}), 0u);
  EXPECT_EQ((*r)->Seek(data.size() + 1).code(), Code::kInvalidArgument);
}

TEST_F(Store, PiecesAreHandedOutInPlaceAndOutliveLaterReads) {
  std::string data = RandomBytes(400000, 8);  // incompressible: chunks are read in place
  ObjectInfo info = MustPut(data);
  auto r = store_->NewReader(info.digest);
  ASSERT_TRUE(r.ok());
  // Every piece is kept while the reader goes on: each must still hold its bytes.
  std::vector<ObjectPiece> pieces;
  for (;;) {
    auto p = (*r)->ReadPiece(5000);
    ASSERT_TRUE(p.ok()) << p.status().message();
    if (p->bytes.empty()) break;
    ASSERT_LE(p->bytes.size(), 5000u);
    pieces.push_back(std::move(p).value());
  }
  std::string joined;
  for (const auto& p : pieces) joined += p.bytes;
  EXPECT_TRUE(joined == data);
  // Chunks are at most 64 KiB here: pieces of one chunk share its buffer, so there are
  // far fewer buffers than pieces, and none is shared across a chunk boundary.
  std::set<const void*> owners;
  for (const auto& p : pieces) owners.insert(p.owner.get());
  EXPECT_LT(owners.size(), pieces.size());
  EXPECT_GE(owners.size(), data.size() / 65536);

  // From a position, and mixed with Read.
  ASSERT_TRUE((*r)->Seek(123457).ok());
  auto p = (*r)->ReadPiece(1 << 20);
  ASSERT_TRUE(p.ok());
  ASSERT_FALSE(p->bytes.empty());
  EXPECT_EQ(p->bytes, std::string_view(data).substr(123457, p->bytes.size()));
  std::vector<uint8_t> buf(10);
  uint64_t next = 123457 + p->bytes.size();
  ASSERT_EQ(*(*r)->Read({buf.data(), buf.size()}), 10u);
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(buf.data()), 10), std::string_view(data).substr(next, 10));

  // An inline object, and the end.
  ObjectInfo small = MustPut("tiny");
  auto rs = store_->NewReader(small.digest);
  ASSERT_TRUE(rs.ok());
  auto ps = (*rs)->ReadPiece(100);
  ASSERT_TRUE(ps.ok());
  rs->reset();  // the piece owns its bytes
  EXPECT_EQ(ps->bytes, "tiny");
}

TEST_F(Store, ADamagedChunkFailsThePieceThatReadsIt) {
  std::string data = RandomBytes(200000, 18);
  ObjectInfo info = MustPut(data);
  Close();
  ASSERT_TRUE(testing::CorruptStoredBytes(store_path(), data.substr(150000, 64)));
  Reopen();
  auto r = store_->NewReader(info.digest);
  ASSERT_TRUE(r.ok());
  uint64_t good = 0;
  Status failed;
  for (;;) {
    auto p = (*r)->ReadPiece(1 << 20);
    if (!p.ok()) {
      failed = std::move(p).take_status();
      break;
    }
    ASSERT_FALSE(p->bytes.empty()) << "read to the end through a damaged chunk";
    EXPECT_EQ(p->bytes, std::string_view(data).substr(good, p->bytes.size()));
    good += p->bytes.size();
  }
  EXPECT_EQ(failed.code(), Code::kIntegrity);
  EXPECT_NE(failed.message().find(info.digest.ToString()), std::string::npos) << failed.message();
  EXPECT_LE(good, 150000u);
}

TEST_F(Store, SecondPutOfTheSameContentWritesNoChunk) {
  std::string data = RandomBytes(400000, 11);
  ObjectInfo first = MustPut(data);
  EXPECT_FALSE(first.existed);
  EXPECT_GT(first.new_chunks, 5u);
  auto before = store_->Stats();
  ObjectInfo second = MustPut(data);
  EXPECT_TRUE(second.existed);
  EXPECT_EQ(second.new_chunks, 0u);
  EXPECT_EQ(second.new_stored_bytes, 0u);
  auto after = store_->Stats();
  EXPECT_EQ(after->chunks, before->chunks);
  EXPECT_EQ(after->objects, before->objects);
}

// An object of one chunk names its chunk by its own digest (computed once, not hashed again
// on the pool): fsck re-hashes every chunk against its id.
TEST_F(Store, AnObjectOfOneChunkIsStoredUnderItsOwnDigest) {
  const auto& p = store_->chunk_params();
  for (size_t n : {size_t{1025}, size_t{p.min_size - 1}, size_t{p.min_size}}) {
    std::string data = RandomBytes(n, n + 3);
    ObjectInfo info = MustPut(data);
    EXPECT_FALSE(info.inlined) << n;
    EXPECT_EQ(info.chunk_count, 1u) << n;
    EXPECT_EQ(info.new_chunks, 1u) << n;
    EXPECT_EQ(info.digest, Digest::Sha256(Sha256::Of(AsBytes(data)))) << n;
    EXPECT_TRUE(MustRead(info.digest) == data) << n;
  }
  auto fsck = store_->Check({});
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE(fsck->clean());
  EXPECT_EQ(fsck->chunks_checked, 3u);
}

TEST_F(Store, TheUnloggedBulkOfALargeObjectIsConfirmedByItsCommit) {
  // Past 16 MiB a writer's chunks skip the WAL; the commit flushes and confirms them.
  std::string data = RandomBytes(72 << 20, 13);
  ObjectInfo first = MustPut(data);
  Reopen();
  EXPECT_TRUE(MustRead(first.digest) == data);
  // Confirmed chunks deduplicate: another object holding the same bytes writes none.
  std::string twin = data + "x";
  ObjectInfo second = MustPut(twin);
  EXPECT_LE(second.new_chunks, 2u);
  auto fsck = store_->Check({});
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE(fsck->clean());
}

TEST_F(Store, PendingChunksOfAnAbandonedLargeWriteAreNeverDedupedAgainstAndGcSweepsThem) {
  std::string keep = RandomBytes(300000, 14);
  PutOptions with_ref;
  with_ref.ref = "image/keep:1";
  ObjectInfo kept = MustPut(keep, with_ref);
  std::string data = RandomBytes(72 << 20, 15);
  {
    auto w = store_->NewWriter({});
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(AsBytes(data)).ok());
    // destroyed without a commit: the chunks past 16 MiB stay pending
  }
  Reopen();
  auto fsck = store_->Check({});
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE(fsck->clean()) << "pending chunks are not damage";
  // The same bytes put again: the pending chunks are written afresh (a crash could have
  // lost them), the logged ones are found.
  uint64_t stats_before = store_->Stats()->chunks;
  ObjectInfo again = MustPut(data);
  EXPECT_GT(again.new_chunks, 0u);
  EXPECT_LT(again.new_chunks, stats_before);
  EXPECT_TRUE(MustRead(again.digest) == data);
  // Abandon another large write, then collect with no grace: its chunks go, and what
  // refs reach stays.
  {
    auto w = store_->NewWriter({});
    ASSERT_TRUE((*w)->Write(AsBytes(RandomBytes(72 << 20, 16))).ok());
  }
  GcOptions go;
  go.grace = std::chrono::seconds(0);
  auto gc = store_->CollectGarbage(go);
  ASSERT_TRUE(gc.ok()) << gc.status().message();
  EXPECT_GT(gc->chunks_removed, 1000u);
  EXPECT_TRUE(MustRead(kept.digest) == keep);
  EXPECT_EQ(store_->Stat(again.digest).status().code(), Code::kNotFound);  // no ref reached it
  fsck = store_->Check({});
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE(fsck->clean());
}

TEST_F(Store, AnObjectExpectedToBeLargeSkipsTheWalFromItsFirstChunk) {
  // 6 MiB with no expected size is logged whole: after an abandoned write its chunks are
  // confirmed and a second put finds all but the tail the writer still held. With an
  // expected size of 4 MiB or more
  // every chunk skips the WAL: abandoned, they stay pending and are written afresh.
  std::string logged = RandomBytes(6 << 20, 17);
  std::string bulk = RandomBytes(6 << 20, 18);
  {
    auto w = store_->NewWriter({});
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(AsBytes(logged)).ok());
    PutOptions expect;
    expect.expected_size = bulk.size();
    auto b = store_->NewWriter(expect);
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE((*b)->Write(AsBytes(bulk)).ok());
  }
  Reopen();
  ObjectInfo first = MustPut(logged);
  EXPECT_GE(first.chunk_count, 3u);
  EXPECT_LE(first.new_chunks, 1u);
  ObjectInfo again = MustPut(bulk);
  EXPECT_EQ(again.new_chunks, again.chunk_count);
  PutOptions expect;
  expect.expected_size = bulk.size();
  EXPECT_EQ(MustPut(bulk, expect).new_chunks, 0u);  // committed ones are confirmed
  Reopen();
  EXPECT_TRUE(MustRead(again.digest) == bulk);
  auto fsck = store_->Check({});
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE(fsck->clean());
}

TEST_F(Store, WrongExpectedDigestOrSizeIsRefusedAndNothingIsVisible) {
  std::string data = RandomBytes(200000, 13);
  Digest right = Digest::Sha256(Sha256::Of(AsBytes(data)));
  Digest wrong = Digest::Sha256(Sha256::Of(AsBytes("something else")));
  PutOptions o;
  o.expected_digest = wrong;
  auto r = store_->Put(AsBytes(data), o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kIntegrity);
  EXPECT_NE(r.status().message().find(wrong.ToString()), std::string::npos);
  EXPECT_TRUE(store_->Stat(right).status().IsNotFound());
  EXPECT_TRUE(store_->Stat(wrong).status().IsNotFound());

  for (uint64_t size : {uint64_t{data.size() - 1}, uint64_t{data.size() + 1}}) {
    PutOptions s;
    s.expected_size = size;
    auto rs = store_->Put(AsBytes(data), s);
    EXPECT_EQ(rs.status().code(), Code::kIntegrity) << size;
    EXPECT_TRUE(store_->Stat(right).status().IsNotFound());
  }
  auto missing = store_->Missing(std::vector<Digest>{right});
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->size(), 1u);
  PutOptions ok;
  ok.expected_digest = right;
  ok.expected_size = data.size();
  EXPECT_TRUE(store_->Put(AsBytes(data), ok).ok());
}

TEST_F(Store, ExpectedDigestSetAtTheEndIsCheckedBeforeAnythingIsVisible) {
  std::string data = RandomBytes(300000, 17);
  Digest right = Digest::Sha256(Sha256::Of(AsBytes(data)));
  Digest wrong = Digest::Sha256(Sha256::Of(AsBytes("not it")));
  {
    auto w = store_->NewWriter();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(AsBytes(data)).ok());
    ASSERT_TRUE((*w)->SetExpected(wrong, std::nullopt).ok());
    auto r = (*w)->Commit();
    EXPECT_EQ(r.status().code(), Code::kIntegrity);
    EXPECT_TRUE(store_->Stat(right).status().IsNotFound());
  }
  {
    auto w = store_->NewWriter();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(AsBytes(data)).ok());
    ASSERT_TRUE((*w)->SetExpected(right, data.size() + 1).ok());
    EXPECT_EQ((*w)->Commit().status().code(), Code::kIntegrity);
    EXPECT_TRUE(store_->Stat(right).status().IsNotFound());
  }
  auto w = store_->NewWriter();
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->SetExpected(*Digest::Parse("sha1:22596363b3de40b06f981fb85d82312e8c0ed511"), std::nullopt).code(),
            Code::kInvalidArgument);
  ASSERT_TRUE((*w)->Write(AsBytes(data)).ok());
  ASSERT_TRUE((*w)->SetExpected(right, data.size()).ok());
  auto r = (*w)->Commit();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->digest, right);
}

TEST_F(Store, Sha1AliasesResolve) {
  std::string data = "hello world\n";
  PutOptions o;
  o.sha1_alias = true;
  ObjectInfo info = MustPut(data, o);
  ASSERT_TRUE(info.sha1.has_value());
  EXPECT_EQ(info.sha1->ToString(), "sha1:22596363b3de40b06f981fb85d82312e8c0ed511");
  auto st = store_->Stat(*info.sha1);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->digest, info.digest);
  EXPECT_EQ(MustRead(*info.sha1), data);

  PutOptions by_sha1;
  by_sha1.expected_digest = *Digest::Parse("sha1:22596363b3de40b06f981fb85d82312e8c0ed511");
  EXPECT_TRUE(store_->Put(AsBytes(data), by_sha1).ok());
  by_sha1.expected_digest = *Digest::Parse("sha1:0000000000000000000000000000000000000000");
  EXPECT_EQ(store_->Put(AsBytes(data), by_sha1).status().code(), Code::kIntegrity);
}

TEST_F(Store, MissingAnswersForABatchInOrder) {
  ObjectInfo a = MustPut("a");
  PutOptions o;
  o.sha1_alias = true;
  ObjectInfo b = MustPut(RandomBytes(100000, 3), o);
  Digest x = Digest::Sha256(Sha256::Of(AsBytes("x")));
  Digest y = *Digest::Parse("sha1:0123456789012345678901234567890123456789");
  auto m = store_->Missing(std::vector<Digest>{x, a.digest, y, *b.sha1, b.digest});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, (std::vector<Digest>{x, y}));
}

TEST_F(Store, RefsSetGetListCompareAndSetDelete) {
  ObjectInfo a = MustPut("a"), b = MustPut("b");
  ASSERT_TRUE(store_->SetRef("image/reg/app:1", a.digest).ok());
  ASSERT_TRUE(store_->SetRef("image/reg/app:2", b.digest).ok());
  ASSERT_TRUE(store_->SetRef("snapshot/home/1", a.digest).ok());
  EXPECT_EQ(**store_->GetRef("image/reg/app:1"), a.digest);
  EXPECT_FALSE(store_->GetRef("image/reg/none")->has_value());
  auto images = store_->ListRefs("image/");
  ASSERT_EQ(images->size(), 2u);
  EXPECT_EQ((*images)[0].name, "image/reg/app:1");
  EXPECT_EQ(store_->ListRefs("")->size(), 3u);

  // Compare-and-set: wins only against the expected value.
  EXPECT_EQ(store_->SetRef("image/reg/app:1", b.digest, std::optional<Digest>(b.digest)).code(), Code::kConflict);
  EXPECT_TRUE(store_->SetRef("image/reg/app:1", b.digest, std::optional<Digest>(a.digest)).ok());
  EXPECT_EQ(store_->SetRef("image/reg/app:1", a.digest, std::optional<Digest>()).code(), Code::kConflict);
  EXPECT_TRUE(store_->SetRef("image/reg/new", a.digest, std::optional<Digest>()).ok());
  EXPECT_EQ(store_->DeleteRef("image/reg/app:1", a.digest).code(), Code::kConflict);
  EXPECT_TRUE(store_->DeleteRef("image/reg/app:1", b.digest).ok());
  EXPECT_TRUE(store_->DeleteRef("image/reg/app:1").IsNotFound());

  Digest absent = Digest::Sha256(Sha256::Of(AsBytes("absent")));
  EXPECT_TRUE(store_->SetRef("image/x", absent).IsNotFound());
  for (const char* bad : {"", "noslash", "image//x", "image/../x", "/abs", "image/x\n"}) {
    EXPECT_EQ(store_->SetRef(bad, a.digest).code(), Code::kInvalidArgument) << bad;
  }
  PutOptions with_ref;
  with_ref.ref = "export/tracker";
  ObjectInfo c = MustPut("c", with_ref);
  EXPECT_EQ(**store_->GetRef("export/tracker"), c.digest);
}

TEST_F(Store, AnInterruptedWriteResumesFromItsCheckpoint) {
  std::string data = RandomBytes(3 << 20, 31);
  PutOptions o;
  o.resume_key = "blob/sha256:x";
  o.expected_size = data.size();
  uint64_t resumed_at = 0;
  {
    auto w = store_->NewWriter(o);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ((*w)->bytes_written(), 0u);
    ASSERT_TRUE((*w)->Write(AsBytes(std::string_view(data).substr(0, 2 << 20))).ok());
    ASSERT_TRUE((*w)->Checkpoint().ok());
    // destroyed: the process "died" here
  }
  Reopen();
  {
    auto w = store_->NewWriter(o);
    ASSERT_TRUE(w.ok());
    resumed_at = (*w)->bytes_written();
    EXPECT_GT(resumed_at, 1u << 20);  // up to the last chunk boundary before 2 MiB
    EXPECT_LE(resumed_at, 2u << 20);
    ASSERT_TRUE((*w)->Write(AsBytes(std::string_view(data).substr(resumed_at))).ok());
    auto info = (*w)->Commit();
    ASSERT_TRUE(info.ok()) << info.status().message();
    EXPECT_EQ(info->digest, Digest::Sha256(Sha256::Of(AsBytes(data))));
  }
  EXPECT_TRUE(MustRead(Digest::Sha256(Sha256::Of(AsBytes(data)))) == data);
  EXPECT_FALSE(store_->GetIndex("partial", o.resume_key)->has_value());
  // A new writer under the same key starts from nothing once the object is committed.
  auto again = store_->NewWriter(o);
  EXPECT_EQ((*again)->bytes_written(), 0u);
}

TEST_F(Store, ADamagedCheckpointIsDiscarded) {
  std::string data = RandomBytes(1 << 20, 37);
  PutOptions o;
  o.resume_key = "k";
  {
    auto w = store_->NewWriter(o);
    ASSERT_TRUE((*w)->Write(AsBytes(data)).ok());
    ASSERT_TRUE((*w)->Checkpoint().ok());
  }
  Close();
  ASSERT_TRUE(testing::CorruptStoredBytes(store_path(), data.substr(40000, 64)));
  Reopen();
  auto w = store_->NewWriter(o);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->bytes_written(), 0u);
  ASSERT_TRUE((*w)->Write(AsBytes(data)).ok());
  auto info = (*w)->Commit();
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(MustRead(info->digest) == data);
}

TEST_F(Store, IndexSpacesAreSeparateOrderedAndAtomic) {
  ASSERT_TRUE(store_->PutIndex("statcache/a", "k1", "v1").ok());
  ASSERT_TRUE(store_->PutIndex("statcache/a", "k2", "v2").ok());
  ASSERT_TRUE(store_->PutIndex("statcache/ab", "k1", "other").ok());
  EXPECT_EQ(**store_->GetIndex("statcache/a", "k1"), "v1");
  EXPECT_FALSE(store_->GetIndex("statcache/a", "k3")->has_value());
  std::vector<std::pair<std::string, std::optional<std::string>>> changes{{"k1", std::nullopt}, {"k3", "v3"}};
  ASSERT_TRUE(store_->WriteIndex("statcache/a", changes).ok());
  std::vector<std::string> seen;
  ASSERT_TRUE(store_
                  ->ScanIndex("statcache/a", "",
                              [&](std::string_view k, std::string_view v) {
                                seen.push_back(std::string(k) + "=" + std::string(v));
                                return true;
                              })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"k2=v2", "k3=v3"}));
  ASSERT_TRUE(store_->DropIndex("statcache/a").ok());
  EXPECT_FALSE(store_->GetIndex("statcache/a", "k2")->has_value());
  EXPECT_EQ(**store_->GetIndex("statcache/ab", "k1"), "other");
  EXPECT_EQ(store_->PutIndex("", "k", "v").code(), Code::kInvalidArgument);
}

TEST_F(Store, PutCompressionLevelAppliesToThatObject) {
  // Two texts of equal compressibility (the second is the first in upper case).
  std::mt19937_64 rng(7);
  const std::vector<std::string> words = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"};
  std::string lower;
  while (lower.size() < (1 << 20)) {
    lower += words[rng() % words.size()];
    lower += rng() % 13 == 0 ? '\n' : ' ';
  }
  std::string upper = lower;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto fast = store_->Put(AsBytes(lower));
  ASSERT_TRUE(fast.ok());
  store::PutOptions o;
  o.compression_level = 9;
  auto hard = store_->Put(AsBytes(upper), o);
  ASSERT_TRUE(hard.ok());
  EXPECT_GT(fast->new_stored_bytes, 0u);
  EXPECT_LT(fast->new_stored_bytes, lower.size() / 2);
  EXPECT_LT(hard->new_stored_bytes, fast->new_stored_bytes);
  EXPECT_TRUE(MustRead(fast->digest) == lower);
  EXPECT_TRUE(MustRead(hard->digest) == upper);
  auto fsck = store_->Check({});
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE(fsck->clean());
}

TEST_F(Store, GetIndexManyAnswersEachKeyInOrder) {
  ASSERT_TRUE(store_->PutIndex("statcache/a", "k1", "v1").ok());
  ASSERT_TRUE(store_
                  ->PutIndex("statcache/a", "k3",
                             std::string("v\0"
                                         "3",
                                         3))
                  .ok());
  ASSERT_TRUE(store_->PutIndex("statcache/ab", "k2", "other space").ok());
  // Enough keys that RocksDB batches them, some repeated, one empty.
  std::vector<std::string> keys{"k3", "k2", "k1", "", "k1"};
  for (int i = 0; i < 300; ++i) keys.push_back("missing" + std::to_string(i));
  auto got = store_->GetIndexMany("statcache/a", keys);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), keys.size());
  EXPECT_EQ((*got)[0], std::optional<std::string>(std::string("v\0"
                                                              "3",
                                                              3)));
  EXPECT_FALSE((*got)[1].has_value());  // k2 lives in another space
  EXPECT_EQ((*got)[2], std::optional<std::string>("v1"));
  EXPECT_FALSE((*got)[3].has_value());
  EXPECT_EQ((*got)[4], std::optional<std::string>("v1"));
  for (size_t i = 5; i < keys.size(); ++i) EXPECT_FALSE((*got)[i].has_value()) << keys[i];
  // After a flush the values come from SST files rather than the memtable.
  Reopen();
  got = store_->GetIndexMany("statcache/a", keys);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)[2], std::optional<std::string>("v1"));
  EXPECT_TRUE(store_->GetIndexMany("statcache/a", {}).ok());
  EXPECT_EQ(store_->GetIndexMany("", keys).status().code(), Code::kInvalidArgument);
}

TEST_F(Store, OpenErrorsNameThePathAndTheProblem) {
  Close();
  // A directory with other files is not a store.
  std::string other = tmp_ / "other";
  std::filesystem::create_directories(other);
  testing::WriteFile(other + "/notes.txt", "x");
  auto r = store::Store::Open(other);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(other), std::string::npos);
  EXPECT_NE(r.status().message().find("not a silo store"), std::string::npos);

  // A file is not a store.
  auto f = store::Store::Open(other + "/notes.txt");
  EXPECT_FALSE(f.ok());

  // Read-only open of nothing.
  OpenOptions ro;
  ro.read_only = true;
  auto none = store::Store::Open(tmp_ / "nothing", ro);
  EXPECT_TRUE(none.status().IsNotFound()) << none.status().message();

  // An uncreatable path.
  auto bad = store::Store::Open("/proc/silo-cannot-create/store");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("/proc/silo-cannot-create/store"), std::string::npos);

  // A store of a newer format.
  Reopen();
  Close();
  {
    // Rewrite the format record through RocksDB's own tools is not available here; use the
    // store's meta column family via a raw open.
    auto s = store::Store::Open(store_path());
    ASSERT_TRUE(s.ok());
  }
  ASSERT_TRUE(testing::SetFormatVersionForTest(store_path(), kFormatVersion + 1));
  auto newer = store::Store::Open(store_path());
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().code(), Code::kUnsupported);
  EXPECT_NE(newer.status().message().find("newer"), std::string::npos);
}

TEST_F(Store, ReadOnlyStoresRefuseWrites) {
  MustPut("x");
  Close();
  OpenOptions ro;
  ro.read_only = true;
  auto s = store::Store::Open(store_path(), ro);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_FALSE((*s)->NewWriter().ok());
  EXPECT_TRUE((*s)->Stat(Digest::Sha256(Sha256::Of(AsBytes("x")))).ok());
}

TEST_F(Store, ACorruptedChunkIsAnIntegrityErrorAndFsckFindsIt) {
  std::string data = RandomBytes(200000, 17);  // incompressible, so stored as is
  ObjectInfo info = MustPut(data);
  Close();
  ASSERT_TRUE(testing::CorruptStoredBytes(store_path(), data.substr(100000, 64)));
  Reopen();
  auto r = store_->ReadAll(info.digest, 1 << 30);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kIntegrity);
  EXPECT_NE(r.status().message().find(info.digest.ToString()), std::string::npos) << r.status().message();

  std::vector<std::string> problems;
  FsckOptions fo;
  fo.on_problem = [&](const std::string& p) { problems.push_back(p); };
  auto report = store_->Check(fo);
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->clean());
  ASSERT_EQ(report->damaged_objects.size(), 1u);
  EXPECT_EQ(report->damaged_objects[0], info.digest);
  EXPECT_GE(report->damaged_chunks, 1u);

  fo.repair = true;
  ASSERT_TRUE(store_->Check(fo).ok());
  EXPECT_TRUE(store_->Stat(info.digest).status().IsNotFound());
  FsckOptions again;
  EXPECT_TRUE(store_->Check(again)->clean());
  // It can be stored again, whole.
  ObjectInfo back = MustPut(data);
  EXPECT_TRUE(MustRead(back.digest) == data);
}

TEST_F(Store, OneByteChangeInTheMiddleOfA256MiBFileAddsOnlyAFewChunks) {
  options_ = {};  // the production chunk parameters
  Reopen();
  std::string data = RandomBytes(256 << 20, 23);
  ObjectInfo first = MustPut(data);
  data[data.size() / 2] ^= 1;
  ObjectInfo second = MustPut(data);
  EXPECT_NE(first.digest, second.digest);
  EXPECT_GE(second.new_chunks, 1u);
  EXPECT_LE(second.new_chunks, 3u);
  EXPECT_GT(first.chunk_count, 100u);
}

TEST_F(Store, MultiGiBObjectRoundTripsWithBoundedBuffers) {
  options_ = {};
  Reopen();
  // 2 GiB + 3 bytes, generated on the fly; hashed on the way in and out.
  const uint64_t total = (2ull << 30) + 3;
  std::string block = RandomBytes(4 << 20, 29);
  auto w = store_->NewWriter();
  ASSERT_TRUE(w.ok());
  Sha256 in;
  uint64_t done = 0;
  for (uint64_t i = 0; done < total; ++i) {
    block[i % block.size()] ^= static_cast<char>(i);  // no two blocks alike
    size_t n = static_cast<size_t>(std::min<uint64_t>(block.size(), total - done));
    in.Update(AsBytes(std::string_view(block).substr(0, n)));
    ASSERT_TRUE((*w)->Write(AsBytes(std::string_view(block).substr(0, n))).ok());
    done += n;
  }
  auto info = (*w)->Commit();
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->digest, Digest::Sha256(in.Final()));
  EXPECT_EQ(info->size, total);
  auto r = store_->NewReader(info->digest);
  ASSERT_TRUE(r.ok());
  Sha256 out;
  std::vector<uint8_t> buf(3 << 20);
  uint64_t read = 0;
  for (;;) {
    auto n = (*r)->Read(buf);
    ASSERT_TRUE(n.ok());
    if (*n == 0) break;
    out.Update({buf.data(), *n});
    read += *n;
  }
  EXPECT_EQ(read, total);
  EXPECT_EQ(Digest::Sha256(out.Final()), info->digest);
}

}  // namespace
}  // namespace silo::store
