// The free-space reserve (src/fs/reserve.h): a file system that file growth filled can still
// be remounted read-write, take the few small files a database creates when it opens, and
// give space back by deletes and truncates.
#include "base/size.h"
#include "fs/reserve.h"

#include "fs_test_support.h"

namespace sluice::fs::testing {
namespace {

TEST(ReserveSize, OneThirtySecondOfTheDeviceWithinBounds) {
  EXPECT_EQ(default_reserve_clusters(1024, kMiB), 32u);        // 1 GiB: 32 MiB
  EXPECT_EQ(default_reserve_clusters(64, kMiB), 8u);           // 64 MiB: the 8 MiB floor
  EXPECT_EQ(default_reserve_clusters(100 * 1024, kMiB), 256u);  // 100 GiB: the 256 MiB cap
  EXPECT_EQ(default_reserve_clusters(16, kMiB), 4u);           // 16 MiB: never over a quarter
  EXPECT_EQ(default_reserve_clusters(1024, 64 * 1024), 128u);  // 64 MiB of 64 KiB clusters: 8 MiB
  EXPECT_EQ(reserve_clusters_for(0, 1024, kMiB), 0u);
  EXPECT_EQ(reserve_clusters_for(kMiB + 1, 1024, kMiB), 2u);   // whole clusters, rounded up
  EXPECT_EQ(reserve_clusters_for(1ull << 40, 1024, kMiB), 256u);
}

class ReserveTest : public FsTest {
 protected:
  // Appends to files of up to 4 MiB until an append fails: in 256 KiB pieces, then, once
  // those no longer fit, 4 KiB ones, so that nothing ordinary growth could take is left.
  // Returns the failure (no_space is the expected one).
  Status fill() {
    size_t piece = 256 * 1024;
    const std::string data = pattern(7, piece);
    for (int i = 0;; ++i) {
      auto f = open_w(fmt::format("/fill/{}", i), true);
      if (!f) return Status(Errc::io_error, "cannot open a fill file");
      while (f->size() < 4 * kMiB) {
        Status st = f->append(data.data(), piece);
        if (st.ok()) continue;
        if (st.code() == Errc::no_space && piece > 4096) {
          piece = 4096;
          continue;
        }
        Status closed = f->close();
        return closed.ok() ? st : closed;
      }
      Status st = f->sync();
      if (st.ok()) st = f->close();
      if (!st.ok()) return st;
    }
  }

  // What RocksDB creates when it opens a database, a few KiB each.
  Status create_small_files() {
    for (const char* name : {"LOG", "MANIFEST-000002", "OPTIONS-000003", "CURRENT", "000004.log"}) {
      auto f = fs_->open(fmt::format("/db/{}", name), {.write = true, .create = true});
      if (!f.ok()) return f.status();
      const std::string data = pattern(name[0], 4096);
      Status st = (*f)->append(data.data(), data.size());
      if (st.ok()) st = (*f)->sync();
      Status closed = (*f)->close();
      if (!st.ok()) return st;
      if (!closed.ok()) return closed;
    }
    return fs_->sync_dir("/db");
  }

  void SetUp() override {
    FsTest::SetUp();
    ASSERT_TRUE(fs_->mkdirs("/fill").ok());
    ASSERT_TRUE(fs_->mkdirs("/db").ok());
  }
};

TEST_P(ReserveTest, FullFileSystemRemountsTakesSmallFilesAndShrinks) {
  const FsStat empty = fs_->statfs();
  EXPECT_GT(empty.reserved_bytes, 0u);
  EXPECT_LE(empty.reserved_bytes, empty.total_bytes / 4);

  Status st = fill();
  ASSERT_EQ(st.code(), Errc::no_space) << st.to_string();
  FsStat full = fs_->statfs();
  EXPECT_LT(full.free_bytes, 2 * cluster_) << "the fill stopped early";
  // Right after a mount (no delete yet) growth may take half of it, for a database's reopen.
  EXPECT_GE(full.reserved_bytes + cluster_, empty.reserved_bytes / 2) << "ordinary growth took the reserve";
  auto big = open_w("/fill/0");  // growth of a large file stays out of the reserve
  ASSERT_TRUE(big);
  const std::string more = pattern(9, kMiB);
  EXPECT_EQ(big->append(more.data(), more.size()).code(), Errc::no_space);
  ASSERT_TRUE(big->close().ok());

  remount();  // read-write
  st = create_small_files();
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(slurp("/db/CURRENT"), pattern('C', 4096));
  EXPECT_LT(fs_->statfs().reserved_bytes, full.reserved_bytes);

  // Deletes and truncates work on a full file system and give the space back.
  ASSERT_TRUE(fs_->truncate("/fill/0", 0).ok());
  auto names = fs_->list("/fill");
  ASSERT_TRUE(names.ok());
  for (const auto& name : *names) {
    if (name == "0") continue;
    ASSERT_TRUE(fs_->unlink("/fill/" + name).ok()) << name;
  }
  ASSERT_TRUE(fs_->sync_dir("/fill").ok());
  const FsStat emptied = fs_->statfs();
  EXPECT_GT(emptied.free_bytes, empty.free_bytes / 2);
  EXPECT_EQ(emptied.reserved_bytes, empty.reserved_bytes);  // the reserve is whole again
  write_file("/fill/again", pattern(3, 4 * kMiB));
  EXPECT_EQ(slurp("/fill/again"), pattern(3, 4 * kMiB));

  remount();
  EXPECT_EQ(slurp("/db/LOG"), pattern('L', 4096));
  auto c = fs_->check();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_TRUE(c->ok()) << c->problems.front();
}

// Once a delete has happened (a database's open is done), growth leaves all of the reserve
// but the first step of the file that found the device full.
TEST_P(ReserveTest, AfterADeleteGrowthLeavesTheWholeReserve) {
  write_file("/db/old", pattern(1, 4096));
  ASSERT_TRUE(fs_->unlink("/db/old").ok());
  const FsStat empty = fs_->statfs();
  Status st = fill();
  ASSERT_EQ(st.code(), Errc::no_space) << st.to_string();
  const FsStat full = fs_->statfs();
  EXPECT_LT(full.free_bytes, 2 * cluster_);
  EXPECT_GE(full.reserved_bytes + kMiB, empty.reserved_bytes);
}

// The control: without a reserve the same fill leaves nothing, and a database could not
// create its files at the next open. (If this passes but the test above fails, the reserve
// is broken; if both pass, the fill does not reach the point the reserve is for.)
TEST_P(ReserveTest, WithoutReserveAFullFileSystemTakesNoNewFile) {
  MountOptions none;
  none.reserve_bytes = 0;
  remount(none);
  EXPECT_EQ(fs_->statfs().reserved_bytes, 0u);
  Status st = fill();
  ASSERT_EQ(st.code(), Errc::no_space) << st.to_string();
  remount(none);
  EXPECT_EQ(create_small_files().code(), Errc::no_space);
  // Still, deleting gives the space back.
  ASSERT_TRUE(fs_->unlink("/fill/0").ok());
  ASSERT_TRUE(fs_->sync_dir("/fill").ok());
  EXPECT_TRUE(create_small_files().ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, ReserveTest, ::testing::ValuesIn(backends()), backend_name);

}  // namespace
}  // namespace sluice::fs::testing
