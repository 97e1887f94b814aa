// Write buffers are reused (src/fs/write_buffer_pool.h): a closed file's buffer file is
// emptied and renamed to an idle name, the next file opened for writing takes it under its
// own name, and idle files a dead process left are removed at the next mount. What each
// buffer holds when the process dies is checked by the process-death suite
// (tests/crash/fs_crash_test.cc), whose workloads open and close files throughout.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "fs_test_support.h"

namespace sluice::fs::testing {
namespace {

class WriteBufferPoolTest : public FsTest {
 protected:
  void SetUp() override {
    FsTest::SetUp();
    char tmpl[] = "/dev/shm/sluice-wbpool-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    MountOptions mo;
    mo.write_buffer_dir = root_;
    mo_ = mo;
    remount(mo_);
  }
  void TearDown() override {
    FsTest::TearDown();
    std::filesystem::remove_all(root_);
  }
  // The names in the store's buffer directory (the only directory under root_), sorted.
  std::vector<std::string> buffer_files() {
    std::vector<std::string> names;
    for (const auto& store : std::filesystem::directory_iterator(root_)) {
      store_dir_ = store.path();
      for (const auto& f : std::filesystem::directory_iterator(store.path())) names.push_back(f.path().filename());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  std::string id_of(const std::string& path) {
    auto st = fs_->stat(path);
    EXPECT_TRUE(st.ok());
    return st.ok() ? std::to_string(st->id) : "?";
  }

  std::string root_;
  std::filesystem::path store_dir_;
  MountOptions mo_;
};

TEST_P(WriteBufferPoolTest, AClosedFilesBufferServesTheNextFile) {
  const std::string a = pattern(1, 300000), b = pattern(2, 200000);
  auto fa = open_w("/a");
  ASSERT_TRUE(fa);
  ASSERT_TRUE(fa->append(a.data(), a.size()).ok());
  EXPECT_EQ(buffer_files(), std::vector<std::string>{id_of("/a")});
  ASSERT_TRUE(fa->close().ok());
  EXPECT_EQ(buffer_files(), std::vector<std::string>{"idle-0"});

  auto fb = open_w("/b");
  ASSERT_TRUE(fb);
  EXPECT_EQ(buffer_files(), std::vector<std::string>{id_of("/b")});  // the idle file, renamed
  ASSERT_TRUE(fb->append(b.data(), b.size()).ok());
  // Its header names only b's bytes: a's, still in the data area, are not b's.
  EXPECT_EQ(read_all(*fb), b);
  ASSERT_TRUE(fb->close().ok());
  EXPECT_EQ(slurp("/a"), a);
  EXPECT_EQ(slurp("/b"), b);

  // Two files open at once need two buffers; both come back.
  auto fc = open_w("/c"), fd = open_w("/d");
  ASSERT_TRUE(fc && fd);
  EXPECT_EQ(buffer_files().size(), 2u);
  ASSERT_TRUE(fc->close().ok());
  ASSERT_TRUE(fd->close().ok());
  auto left = buffer_files();
  EXPECT_EQ(left.size(), 2u);
  for (const auto& n : left) EXPECT_TRUE(n.starts_with("idle-")) << n;

  // Unmount removes the idle files and with them the store's directory.
  remount(mo_);
  EXPECT_EQ(buffer_files(), std::vector<std::string>{});
  ASSERT_TRUE(fs_->unmount().ok());
  fs_.reset();
  EXPECT_TRUE(std::filesystem::is_empty(root_));
}

TEST_P(WriteBufferPoolTest, IdleFilesADeadProcessLeftAreRemovedAtMount) {
  write_file("/f", pattern(3, 5000));
  buffer_files();  // finds the store's directory
  ASSERT_FALSE(store_dir_.empty());
  ASSERT_TRUE(fs_->unmount().ok());
  fs_.reset();
  // What a killed process leaves: an idle buffer holding another file's old bytes.
  std::filesystem::create_directories(store_dir_);
  const std::string junk = pattern(4, 8192);
  int fd = ::open((store_dir_ / "idle-3").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
  ::close(fd);
  remount(mo_);
  EXPECT_EQ(buffer_files(), std::vector<std::string>{});
  EXPECT_EQ(slurp("/f"), pattern(3, 5000));
}

INSTANTIATE_TEST_SUITE_P(Backends, WriteBufferPoolTest, ::testing::ValuesIn(backends()), backend_name);

}  // namespace
}  // namespace sluice::fs::testing
