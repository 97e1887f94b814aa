// The host-file lock every opener of a file-backed bdev takes (Bdev::lock_backing, taken by
// bdev::open): a writer is alone, readers share, across processes and across bdevs of one
// process over the same file. Handles of one bdev share its lock, which follows them.
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "bdev/bdev.h"

#include "temp_file.h"

namespace sluice::bdev::testing {
namespace {
using sluice::testing::TempFile;

class ImageLockTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(file_.path().empty());
    for (const char* name : {"img_a", "img_b"}) {
      auto made = create(std::string(GetParam()) + ":" + file_.path(), name);
      ASSERT_TRUE(made.ok()) << made.status().to_string();
    }
  }
  void TearDown() override {
    for (const char* name : {"img_a", "img_b"}) (void)unregister(name);
  }
  static Result<std::unique_ptr<BdevDesc>> open_as(const char* name, bool write) {
    OpenOptions o;
    o.write = write;
    return open(name, o);
  }
  static void expect_busy(const Result<std::unique_ptr<BdevDesc>>& d, const std::string& says) {
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), Errc::busy) << d.status().to_string();
    EXPECT_NE(d.status().message().find(says), std::string::npos) << d.status().message();
  }
  // What a bdev::open in a child process returns: 0 opened, 1 busy, 2 anything else.
  int open_in_child(bool write) {
    pid_t pid = fork();
    if (pid == 0) {
      auto made = create(std::string(GetParam()) + ":" + file_.path(), "img_child");
      if (!made.ok()) _exit(2);
      auto d = open_as("img_child", write);
      _exit(d.ok() ? 0 : d.status().code() == Errc::busy ? 1 : 2);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 3;
  }

  TempFile file_{8u << 20};
};

TEST_P(ImageLockTest, AWriterIsAlone) {
  auto w = open_as("img_a", true);
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  expect_busy(open_as("img_b", true), "open for writing");
  expect_busy(open_as("img_b", false), "open for writing");
  EXPECT_EQ(open_in_child(false), 1);
  auto second = open_as("img_a", true);  // another handle of the same bdev shares its lock
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  w->reset();
  expect_busy(open_as("img_b", false), "open for writing");  // `second` still writes
  second->reset();
  auto b = open_as("img_b", true);  // released with the last handle
  ASSERT_TRUE(b.ok()) << b.status().to_string();
}

TEST_P(ImageLockTest, ReadersShareAndKeepWritersOut) {
  auto r1 = open_as("img_a", false);
  auto r2 = open_as("img_b", false);
  ASSERT_TRUE(r1.ok()) << r1.status().to_string();
  ASSERT_TRUE(r2.ok()) << r2.status().to_string();
  EXPECT_EQ(open_in_child(false), 0);
  EXPECT_EQ(open_in_child(true), 1);
  r1->reset();
  EXPECT_EQ(open_in_child(true), 1);  // r2 still reads
  r2->reset();
  EXPECT_EQ(open_in_child(true), 0);
}

TEST_P(ImageLockTest, AWriterHandleRaisesTheLockAndARefusalKeepsIt) {
  auto r = open_as("img_a", false);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto other = open_as("img_b", false);
  ASSERT_TRUE(other.ok()) << other.status().to_string();
  // img_b reads too, so img_a cannot become a writer; its read lock stays.
  expect_busy(open_as("img_a", true), "open read-only");
  EXPECT_EQ(open_in_child(true), 1);
  other->reset();
  auto w = open_as("img_a", true);
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  expect_busy(open_as("img_b", false), "open for writing");
  EXPECT_EQ(open_in_child(false), 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, ImageLockTest, ::testing::Values("uring", "aio"));

}  // namespace
}  // namespace sluice::bdev::testing
