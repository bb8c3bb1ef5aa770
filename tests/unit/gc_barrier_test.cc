// GcBarrier and PinSet: what the sweep may delete while writers hold pins.
#include "store/gc_barrier.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace silo::store {
namespace {

std::string Id(char c) {
  return std::string(32, c);
}

// What the sweep would decide now, under its lock.
bool ObjectDeletable(GcBarrier& b, const std::string& id) {
  GcBarrier::SweepLock lock(b);
  return b.ObjectDeletableLocked(id);
}
bool ChunkDeletable(GcBarrier& b, const std::string& id) {
  GcBarrier::SweepLock lock(b);
  return b.ChunkDeletableLocked(id);
}

TEST(GcBarrier, PinnedAndShadedIdsAreNotDeletable) {
  GcBarrier b;
  b.PinObject(Id('a'));
  b.PinChunk(Id('c'));
  EXPECT_FALSE(ObjectDeletable(b, Id('a')));
  EXPECT_FALSE(ChunkDeletable(b, Id('c')));
  EXPECT_TRUE(ObjectDeletable(b, Id('c')));  // a chunk pin is not an object pin
  b.Begin();
  b.UnpinObject(Id('a'));
  {
    std::lock_guard lock(b.mutex());
    b.ShadeObjectLocked(Id('s'));
  }
  EXPECT_TRUE(ObjectDeletable(b, Id('a')));  // pinned before the collection, unpinned, never shaded
  EXPECT_FALSE(ObjectDeletable(b, Id('s')));
  b.End();
  EXPECT_TRUE(ObjectDeletable(b, Id('s')));
  EXPECT_FALSE(ChunkDeletable(b, Id('c')));
}

TEST(GcBarrier, APinSetProtectsItsIdsWhileItLivesAndReleasesThemAtOnce) {
  GcBarrier b;
  {
    PinSet set(b);
    set.PinObject(Id('a'));
    set.PinObject(Id('a'));  // once however often
    set.PinChunk(Id('c'));
    EXPECT_FALSE(ObjectDeletable(b, Id('a')));
    EXPECT_FALSE(ChunkDeletable(b, Id('c')));
    EXPECT_TRUE(ObjectDeletable(b, Id('b')));
    EXPECT_TRUE(ChunkDeletable(b, Id('a')));
    EXPECT_TRUE(ObjectDeletable(b, "short"));  // not an id a set can hold
    GcBarrier::SweepLock lock(b);
    EXPECT_EQ(b.ProtectedObjectsLocked(), std::vector<std::string>{Id('a')});
  }
  EXPECT_TRUE(ObjectDeletable(b, Id('a')));
  EXPECT_TRUE(ChunkDeletable(b, Id('c')));
  GcBarrier::SweepLock lock(b);
  EXPECT_TRUE(b.ProtectedObjectsLocked().empty());
}

TEST(GcBarrier, APinSetReleasedDuringACollectionStaysProtectedUntilItEnds) {
  GcBarrier b;
  b.Begin();
  {
    PinSet set(b);
    set.PinObject(Id('a'));
    set.PinChunk(Id('c'));
  }
  EXPECT_FALSE(ObjectDeletable(b, Id('a')));
  EXPECT_FALSE(ChunkDeletable(b, Id('c')));
  {
    GcBarrier::SweepLock lock(b);
    EXPECT_EQ(b.ProtectedObjectsLocked(), std::vector<std::string>{Id('a')});
  }
  b.End();
  EXPECT_TRUE(ObjectDeletable(b, Id('a')));
  EXPECT_TRUE(ChunkDeletable(b, Id('c')));
}

// A pin taken while the sweep decides waits for the sweep's lock: the sweep's decision
// and the write carrying it out see the set as it was.
TEST(GcBarrier, APinWaitsForTheSweepLock) {
  GcBarrier b;
  PinSet set(b);
  std::atomic<bool> pinned{false};
  std::thread t;
  {
    GcBarrier::SweepLock lock(b);
    t = std::thread([&] {
      set.PinObject(Id('a'));
      pinned = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_FALSE(pinned.load());
    EXPECT_TRUE(b.ObjectDeletableLocked(Id('a')));
  }
  t.join();
  EXPECT_TRUE(pinned.load());
  EXPECT_FALSE(ObjectDeletable(b, Id('a')));
}

}  // namespace
}  // namespace silo::store
