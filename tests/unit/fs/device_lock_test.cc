// The device lock as SluiceFS mounts see it (the blobstore's bdev::open takes it,
// Bdev::lock_backing): one writer or many readers per host file, across processes and
// across bdevs of one process (each bdev has its own descriptor, so they conflict exactly
// as two processes would). Refusals are immediate.
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "fs/fs.h"

#include "temp_file.h"

namespace sluice::fs::testing {
namespace {

class DeviceLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(file_.path().empty());
    for (const char* name : {"lock_a", "lock_b", "lock_c"}) {
      auto made = bdev::create("uring:" + file_.path(), name);
      ASSERT_TRUE(made.ok()) << made.status().to_string();
    }
    Status st = FileSystem::format("lock_a");
    ASSERT_TRUE(st.ok()) << st.to_string();
  }
  void TearDown() override {
    for (const char* name : {"lock_a", "lock_b", "lock_c"}) (void)bdev::unregister(name);
  }
  static Result<std::unique_ptr<FileSystem>> mount(const char* dev, bool read_only) {
    MountOptions mo;
    mo.read_only = read_only;
    return FileSystem::mount(dev, mo);
  }
  static void expect_busy(const Result<std::unique_ptr<FileSystem>>& m, const std::string& says) {
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), Errc::busy) << m.status().to_string();
    EXPECT_NE(m.status().message().find(says), std::string::npos) << m.status().message();
  }

  sluice::testing::TempFile file_{32u << 20};
};

TEST_F(DeviceLockTest, AWriterIsAlone) {
  auto w = mount("lock_a", false);
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  expect_busy(mount("lock_b", false), "open for writing");
  expect_busy(mount("lock_b", true), "open for writing");  // its view could be torn
  EXPECT_EQ(FileSystem::format("lock_b").code(), Errc::busy);
  ASSERT_TRUE((*w)->unmount().ok());
  auto again = mount("lock_b", false);  // released at unmount
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  ASSERT_TRUE((*again)->unmount().ok());
}

TEST_F(DeviceLockTest, ReadersShareAndKeepWritersOut) {
  auto r1 = mount("lock_a", true);
  auto r2 = mount("lock_b", true);
  ASSERT_TRUE(r1.ok()) << r1.status().to_string();
  ASSERT_TRUE(r2.ok()) << r2.status().to_string();
  expect_busy(mount("lock_c", false), "open read-only");
  ASSERT_TRUE((*r1)->unmount().ok());
  expect_busy(mount("lock_c", false), "open read-only");  // r2 still reads
  ASSERT_TRUE((*r2)->unmount().ok());
  auto w = mount("lock_c", false);
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  ASSERT_TRUE((*w)->unmount().ok());
}

// A refused second mount through the same bdev must neither weaken nor drop the first one's
// lock (one descriptor: a second fcntl would convert the lock, and its unlock release it).
TEST_F(DeviceLockTest, ASecondMountOfTheSameBdevLeavesTheLockAlone) {
  auto w = mount("lock_a", false);
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  expect_busy(mount("lock_a", true), "this process");
  expect_busy(mount("lock_b", true), "open for writing");
  ASSERT_TRUE((*w)->unmount().ok());
}

TEST_F(DeviceLockTest, AbandonReleasesTheLock) {
  auto w = mount("lock_a", false);
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  (*w)->abandon();
  auto again = mount("lock_b", false);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  ASSERT_TRUE((*again)->unmount().ok());
}

}  // namespace
}  // namespace sluice::fs::testing
