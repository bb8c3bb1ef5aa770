// kill -9 at any point of a put leaves a consistent store: the object is absent or whole.
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "tests/integration/silo_cli.h"
#include "tests/support/process.h"
#include "tests/support/store_test.h"
#include "util/hash.h"

namespace silo::testing {
namespace {

TEST(Crash, KilledMidPutThenReopenAndFsckAreClean) {
  TempDir tmp;
  std::string store = tmp / "store";
  // Big enough that a put takes a while: unlogged bulk writes, flushes and the commit all
  // get interrupted at some point across the runs.
  std::string data = RandomBytes(192 << 20, 42);
  std::string input = tmp / "input";
  WriteFile(input, data);
  std::string digest = "sha256:" + ToHex(Sha256::Of(AsBytes(data)));
  // A first object that must survive every crash.
  std::string small = RandomBytes(3 << 20, 43);
  WriteFile(tmp / "small", small);
  ASSERT_EQ(RunSilo(store, {"put", "--ref", "image/keep/me:1", tmp / "small"}).code, 0);

  int completed = 0;
  for (int delay_ms : {5, 40, 120, 250, 400, 700, 1000, 1500}) {
    ProcessOptions o;
    o.argv = {SILO_BINARY, "--store", store, "-q", "put", input};
    o.stdout_path = tmp / "put.out";
    o.stderr_path = tmp / "put.err";
    Process put(o);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(put.pid(), SIGKILL);
    int status = put.Stop();
    completed += status == 0 ? 1 : 0;

    CliResult fsck = RunSilo(store, {"fsck"});
    ASSERT_EQ(fsck.code, 0) << "after kill at " << delay_ms << " ms:\n" << fsck.out << fsck.err;
    CliResult stat = RunSilo(store, {"stat", "--json", digest});
    if (stat.code == 0) {
      // Present means whole.
      CliResult cat = RunSilo(store, {"cat", digest});
      ASSERT_EQ(cat.code, 0);
      ASSERT_TRUE(cat.out == data) << "torn object after kill at " << delay_ms << " ms";
    } else {
      EXPECT_NE(stat.err.find("not in the store"), std::string::npos) << stat.err;
    }
    CliResult keep = RunSilo(store, {"cat", "sha256:" + ToHex(Sha256::Of(AsBytes(small)))});
    ASSERT_EQ(keep.code, 0) << keep.err;
    ASSERT_TRUE(keep.out == small);
  }
  // Finally a put runs to the end, reusing what earlier attempts stored.
  CliResult put = RunSilo(store, {"put", input});
  ASSERT_EQ(put.code, 0) << put.err;
  EXPECT_EQ(put.out, digest + "\n");
  EXPECT_EQ(RunSilo(store, {"fsck"}).code, 0);
  CliResult gc = RunSilo(store, {"gc", "--grace", "0"});
  EXPECT_EQ(gc.code, 0);
  EXPECT_EQ(RunSilo(store, {"fsck"}).code, 0);
  std::printf("puts that finished before the kill: %d of 8\n", completed);
}

}  // namespace
}  // namespace silo::testing
