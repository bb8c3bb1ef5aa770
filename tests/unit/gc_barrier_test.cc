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

TEST(GcBarrier, PinnedAndShadedIdsAreNotDeletable) {
  GcBarrier b;
  b.PinObject(Id('a'));
  b.PinChunk(Id('c'));
  {
    GcBarrier::SweepLock lock(b);
    EXPECT_FALSE(b.ObjectDeletableLocked(Id('a')));
    EXPECT_FALSE(b.ChunkDeletableLocked(Id('c')));
    EXPECT_TRUE(b.ObjectDeletableLocked(Id('c')));  // a chunk pin is not an object pin
  }
  b.Begin();
  b.UnpinObject(Id('a'));
  {
    std::lock_guard lock(b.mutex());
    b.ShadeObjectLocked(Id('s'));
  }
  {
    GcBarrier::SweepLock lock(b);
    EXPECT_TRUE(b.ObjectDeletableLocked(Id('a')));  // pinned before the collection, unpinned, never shaded
    EXPECT_FALSE(b.ObjectDeletableLocked(Id('s')));
  }
  b.End();
  GcBarrier::SweepLock lock(b);
  EXPECT_TRUE(b.ObjectDeletableLocked(Id('s')));
  EXPECT_FALSE(b.ChunkDeletableLocked(Id('c')));
}

TEST(GcBarrier, APinSetProtectsItsIdsWhileItLivesAndReleasesThemAtOnce) {
  GcBarrier b;
  {
    PinSet set(b);
    set.PinObject(Id('a'));
    set.PinObject(Id('a'));  // once however often
    set.PinChunk(Id('c'));
    GcBarrier::SweepLock lock(b);
    EXPECT_FALSE(b.ObjectDeletableLocked(Id('a')));
    EXPECT_FALSE(b.ChunkDeletableLocked(Id('c')));
    EXPECT_TRUE(b.ObjectDeletableLocked(Id('b')));
    EXPECT_TRUE(b.ChunkDeletableLocked(Id('a')));
    EXPECT_TRUE(b.ObjectDeletableLocked("short"));  // not an id a set can hold
    EXPECT_EQ(b.ProtectedObjectsLocked(), std::vector<std::string>{Id('a')});
  }
  GcBarrier::SweepLock lock(b);
  EXPECT_TRUE(b.ObjectDeletableLocked(Id('a')));
  EXPECT_TRUE(b.ChunkDeletableLocked(Id('c')));
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
  {
    GcBarrier::SweepLock lock(b);
    EXPECT_FALSE(b.ObjectDeletableLocked(Id('a')));
    EXPECT_FALSE(b.ChunkDeletableLocked(Id('c')));
    EXPECT_EQ(b.ProtectedObjectsLocked(), std::vector<std::string>{Id('a')});
  }
  b.End();
  GcBarrier::SweepLock lock(b);
  EXPECT_TRUE(b.ObjectDeletableLocked(Id('a')));
  EXPECT_TRUE(b.ChunkDeletableLocked(Id('c')));
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
  GcBarrier::SweepLock lock(b);
  EXPECT_FALSE(b.ObjectDeletableLocked(Id('a')));
}

}  // namespace
}  // namespace silo::store
