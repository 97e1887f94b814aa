// Blobstore metadata: every operation, persistence across unload/load and across a crash
// (no unload), and refusal of foreign, newer and corrupt images.
#include <cstring>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "bdev/channel.h"
#include "blob/blob.h"
#include "blob/format.h"
#include "blob/super_rebuild.h"

namespace sluice::blob {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto n = bdev::create("malloc:64M", "");
    ASSERT_TRUE(n.ok()) << n.status().to_string();
    dev_ = *n;
  }
  void TearDown() override {
    bs_.reset();
    (void)bdev::unregister(dev_);
  }
  InitOptions small() {
    InitOptions o;
    o.cluster_size = 64 * 1024;
    return o;
  }
  void init() {
    auto s = Blobstore::init(dev_, small());
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    bs_ = std::move(s.value());
  }
  // Reloads after a clean unload (clean = true) or as after a power cut (the in-memory
  // store is dropped without writing anything).
  void reload(bool clean) {
    if (clean) {
      ASSERT_TRUE(bs_->unload().ok());
    } else {
      abandon();
    }
    bs_.reset();
    auto s = Blobstore::load(dev_);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    bs_ = std::move(s.value());
  }
  void abandon() { bs_->abandon(); }
  void expect_clean_fsck() {
    auto problems = bs_->check();
    for (auto& p : problems) ADD_FAILURE() << p;
  }

  std::string dev_;
  std::unique_ptr<Blobstore> bs_;
};

TEST_F(StoreTest, InitGivesAnEmptyStore) {
  init();
  StoreInfo si = bs_->store_info();
  EXPECT_EQ(si.cluster_size, 64u * 1024);
  EXPECT_GT(si.total_clusters, 800u);
  EXPECT_EQ(si.free_clusters, si.total_clusters);
  EXPECT_EQ(si.blobs, 0u);
  expect_clean_fsck();
}

TEST_F(StoreTest, CreateResizeXattrsDeleteSurviveReload) {
  init();
  CreateOptions co;
  co.size_clusters = 10;
  co.xattrs["name"] = "alpha";
  auto a = bs_->create(co);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  co.thin = true;
  co.size_clusters = 1000;
  co.xattrs["name"] = "beta";
  auto b = bs_->create(co);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(bs_->resize(*a, 20).ok());
  ASSERT_TRUE(bs_->set_xattr(*a, "color", "blue").ok());
  ASSERT_TRUE(bs_->set_xattr(*a, "secret", "42", true).ok());
  auto c = bs_->create(CreateOptions{3, false, {}});
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(bs_->remove(*c).ok());
  ASSERT_TRUE(bs_->sync_md().ok());
  const uint64_t free_before = bs_->store_info().free_clusters;

  for (bool clean : {false, true}) {  // crash first: the journal still holds the changes
    reload(clean);
    expect_clean_fsck();
    EXPECT_EQ(bs_->list(), (std::vector<BlobId>{*a, *b}));
    auto ia = bs_->info(*a);
    ASSERT_TRUE(ia.ok());
    EXPECT_EQ(ia->size_clusters, 20u);
    EXPECT_EQ(ia->allocated_clusters, 20u);
    EXPECT_EQ(ia->xattrs.at("name"), "alpha");
    EXPECT_EQ(ia->xattrs.at("color"), "blue");
    EXPECT_EQ(ia->internal_xattrs.at("secret"), "42");
    EXPECT_EQ(*bs_->get_xattr(*a, "secret", true), "42");
    EXPECT_EQ(bs_->get_xattr(*a, "secret").status().code(), Errc::not_found);
    auto ib = bs_->info(*b);
    EXPECT_TRUE(ib->thin);
    EXPECT_EQ(ib->allocated_clusters, 0u);
    EXPECT_EQ(bs_->info(*c).status().code(), Errc::not_found);
    EXPECT_EQ(bs_->store_info().free_clusters, free_before);
    EXPECT_EQ(bs_->store_info().recovered, !clean);
  }
}

TEST_F(StoreTest, UnsyncedChangesVanishWholeAfterACrash) {
  init();
  auto a = bs_->create(CreateOptions{4, false, {{"v", "1"}}});
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(bs_->sync_md().ok());
  ASSERT_TRUE(bs_->set_xattr(*a, "v", "2").ok());
  ASSERT_TRUE(bs_->resize(*a, 8).ok());  // served from clusters reserved at create: no commit
  auto b = bs_->create(CreateOptions{0, true, {}});
  ASSERT_TRUE(b.ok());
  reload(false);
  expect_clean_fsck();
  EXPECT_EQ(*bs_->get_xattr(*a, "v"), "1");
  EXPECT_EQ(bs_->info(*a)->size_clusters, 4u);
  EXPECT_EQ(bs_->info(*b).status().code(), Errc::not_found);
  EXPECT_TRUE(bs_->store_info().recovered);
}

TEST_F(StoreTest, SnapshotsClonesInflateDecouple) {
  init();
  auto a = bs_->create(CreateOptions{8, false, {}});
  ASSERT_TRUE(a.ok());
  auto s1 = bs_->snapshot(*a);
  ASSERT_TRUE(s1.ok()) << s1.status().to_string();
  auto ia = bs_->info(*a);
  EXPECT_EQ(ia->parent, *s1);
  EXPECT_EQ(ia->allocated_clusters, 0u);
  auto is = bs_->info(*s1);
  EXPECT_TRUE(is->snapshot);
  EXPECT_TRUE(is->read_only);
  EXPECT_EQ(is->allocated_clusters, 8u);
  EXPECT_EQ(bs_->resize(*s1, 9).code(), Errc::permission);
  auto c1 = bs_->clone(*s1);
  ASSERT_TRUE(c1.ok());
  EXPECT_EQ(bs_->clone(*a).status().code(), Errc::invalid_argument);  // not a snapshot
  EXPECT_EQ(bs_->info(*s1)->clones.size(), 2u);
  EXPECT_EQ(bs_->remove(*s1).code(), Errc::busy);  // two clones
  ASSERT_TRUE(bs_->inflate(*c1).ok());
  auto ic = bs_->info(*c1);
  EXPECT_EQ(ic->parent, 0u);
  EXPECT_EQ(ic->allocated_clusters, 8u);
  EXPECT_FALSE(ic->thin);
  // Snapshot of a clone, then decouple the clone from that second snapshot.
  auto s2 = bs_->snapshot(*a);
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(bs_->info(*s2)->parent, *s1);
  ASSERT_TRUE(bs_->decouple(*a).ok());
  EXPECT_EQ(bs_->info(*a)->parent, *s1);
  expect_clean_fsck();
  // s2 now has no clones; s1 has one (a): deleting s1 merges it into a.
  ASSERT_TRUE(bs_->remove(*s2).ok());
  ASSERT_TRUE(bs_->remove(*s1).ok());
  auto ia2 = bs_->info(*a);
  EXPECT_EQ(ia2->parent, 0u);
  EXPECT_EQ(ia2->allocated_clusters, 8u);
  ASSERT_TRUE(bs_->sync_md().ok());
  expect_clean_fsck();
  reload(false);
  expect_clean_fsck();
  EXPECT_EQ(bs_->info(*a)->allocated_clusters, 8u);
}

TEST_F(StoreTest, FullStoreIsAnErrorAndFreedClustersComeBack) {
  init();
  const uint64_t total = bs_->store_info().total_clusters;
  auto big = bs_->create(CreateOptions{total, false, {}});
  ASSERT_TRUE(big.ok()) << big.status().to_string();
  auto more = bs_->create(CreateOptions{1, false, {}});
  EXPECT_EQ(more.status().code(), Errc::no_space);
  EXPECT_NE(more.status().message().find("full"), std::string::npos);
  ASSERT_TRUE(bs_->remove(*big).ok());
  auto again = bs_->create(CreateOptions{total, false, {}});
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  expect_clean_fsck();
}

TEST_F(StoreTest, ManyMetadataOpsWrapTheJournalAndCheckpoint) {
  init();
  auto a = bs_->create(CreateOptions{1, true, {}});
  ASSERT_TRUE(a.ok());
  for (int i = 0; i < 3000; ++i) {
    ASSERT_TRUE(bs_->set_xattr(*a, "counter", std::to_string(i) + std::string(200, 'x')).ok());
    ASSERT_TRUE(bs_->sync_md().ok());
  }
  reload(false);
  EXPECT_EQ(bs_->get_xattr(*a, "counter")->substr(0, 4), "2999");
  expect_clean_fsck();
}

TEST_F(StoreTest, BadArgumentsAreErrors) {
  init();
  EXPECT_EQ(bs_->resize(999, 1).code(), Errc::not_found);
  EXPECT_EQ(bs_->remove(999).code(), Errc::not_found);
  auto a = bs_->create(CreateOptions{1, true, {}});
  EXPECT_EQ(bs_->set_xattr(*a, "", "x").code(), Errc::invalid_argument);
  EXPECT_EQ(bs_->set_xattr(*a, "n", std::string(5000, 'x')).code(), Errc::invalid_argument);
  EXPECT_EQ(bs_->create(CreateOptions{1ull << 40, true, {}}).status().code(), Errc::invalid_argument);
  auto open = bs_->open(*a);
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(bs_->remove(*a).code(), Errc::busy);
  EXPECT_EQ(bs_->unload().code(), Errc::busy);
  ASSERT_TRUE(bs_->close(std::move(*open)).ok());
  EXPECT_TRUE(bs_->remove(*a).ok());
}

// ---- images that must be refused -------------------------------------------------------

class ImageTest : public StoreTest {
 protected:
  // Reads or writes one 4 KiB page of the raw device.
  void page_io(bool write, uint64_t page, char* buf) {
    auto d = bdev::open(dev_);
    ASSERT_TRUE(d.ok());
    auto ch = (*d)->get_channel();
    bdev::SyncIo io{**d, *ch};
    const uint32_t bpp = 4096 / (*d)->geometry().block_size;
    ASSERT_TRUE((write ? io.write(buf, page * bpp, bpp) : io.read(buf, page * bpp, bpp)).ok());
    ASSERT_TRUE((*d)->put_channel(*ch).ok());
  }
  Status load_status() { return Blobstore::load(dev_).status(); }
};

TEST_F(ImageTest, ForeignDeviceIsNotABlobstore) {
  Status st = load_status();
  EXPECT_EQ(st.code(), Errc::not_found);
  EXPECT_NE(st.message().find("not a Sluice blobstore"), std::string::npos) << st.to_string();
}

TEST_F(ImageTest, NewerVersionIsRefused) {
  init();
  ASSERT_TRUE(bs_->unload().ok());
  bs_.reset();
  alignas(4096) static char page[4096];
  for (uint64_t p : {0, 1}) {
    page_io(false, p, page);
    page[8] = 9;  // version 9; the checksum no longer matches either
    page_io(true, p, page);
  }
  Status st = load_status();
  EXPECT_TRUE(st.code() == Errc::corrupt || st.code() == Errc::not_supported) << st.to_string();
}

TEST_F(ImageTest, OneDamagedSuperCopyIsSurvivedTwoAreNot) {
  init();
  ASSERT_TRUE(bs_->create(CreateOptions{2, false, {}}).ok());
  ASSERT_TRUE(bs_->unload().ok());
  bs_.reset();
  alignas(4096) static char page[4096];
  page_io(false, 0, page);
  page[200] ^= 1;
  page_io(true, 0, page);
  auto ok = Blobstore::load(dev_);
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ((*ok)->list().size(), 1u);
  ASSERT_TRUE((*ok)->unload().ok());
  ok.value().reset();
  for (uint64_t p : {0, 1}) {
    page_io(false, p, page);
    page[300] ^= 1;
    page_io(true, p, page);
  }
  Status st = load_status();
  EXPECT_EQ(st.code(), Errc::corrupt) << st.to_string();
}

TEST_F(ImageTest, DamagedCheckpointIsCorrupt) {
  init();
  ASSERT_TRUE(bs_->unload().ok());
  bs_.reset();
  alignas(4096) static char page[4096];
  page_io(false, 0, page);
  auto sb = decode_super(page, 1u << 20);
  ASSERT_TRUE(sb.ok());
  for (uint64_t p = 2; p < sb->journal_start; ++p) {  // every page of both checkpoint slots
    page_io(false, p, page);
    page[100] ^= 0x55;
    page_io(true, p, page);
  }
  EXPECT_EQ(load_status().code(), Errc::corrupt);
}

// ---- both super block copies lost: rebuilt from the checkpoint -------------------------

class SuperRebuildTest : public ImageTest {
 protected:
  void lose_both_supers() {
    alignas(4096) static char zero[4096];
    std::memset(zero, 0, sizeof(zero));
    page_io(true, 0, zero);
    page_io(true, 1, zero);
  }
};

TEST_F(SuperRebuildTest, LoadSaysACheckpointSurvivesAndRebuildRestoresTheStore) {
  init();
  auto id = bs_->create(CreateOptions{3, false, {}});
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(bs_->set_xattr(*id, "name", "kept").ok());
  ASSERT_TRUE(bs_->unload().ok());
  bs_.reset();
  lose_both_supers();
  Status st = load_status();
  EXPECT_EQ(st.code(), Errc::corrupt) << st.to_string();
  EXPECT_NE(st.message().find("a checkpoint survives"), std::string::npos) << st.to_string();
  EXPECT_TRUE(checkpoint_survives(dev_));

  auto sb = plan_super_rebuild(dev_, 0);
  ASSERT_TRUE(sb.ok()) << sb.status().to_string();
  EXPECT_EQ(sb->cluster_size, small().cluster_size);
  ASSERT_TRUE(write_rebuilt_super(dev_, *sb).ok());
  auto s = Blobstore::load(dev_);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  bs_ = std::move(s.value());
  ASSERT_EQ(bs_->list().size(), 1u);
  auto v = bs_->get_xattr(*id, "name");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, "kept");
  expect_clean_fsck();
  reload(true);  // and it stays loadable through its own checkpoints
  EXPECT_EQ(bs_->list().size(), 1u);
}

TEST_F(SuperRebuildTest, SeveralFittingClusterSizesNeedTheOneGiven) {
  InitOptions o;
  o.cluster_size = 4u << 20;  // on 64 MiB, 2 MiB and larger give the same checkpoint slots
  auto s = Blobstore::init(dev_, o);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ASSERT_TRUE((*s)->unload().ok());
  s.value().reset();
  lose_both_supers();
  auto guess = plan_super_rebuild(dev_, 0);
  EXPECT_EQ(guess.status().code(), Errc::invalid_argument) << guess.status().to_string();
  auto given = plan_super_rebuild(dev_, 4u << 20);
  ASSERT_TRUE(given.ok()) << given.status().to_string();
  ASSERT_TRUE(write_rebuilt_super(dev_, *given).ok());
  auto loaded = Blobstore::load(dev_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_TRUE((*loaded)->unload().ok());
}

TEST_F(SuperRebuildTest, NothingToRebuildFromIsNotFound) {
  EXPECT_FALSE(checkpoint_survives(dev_));
  EXPECT_EQ(plan_super_rebuild(dev_, 0).status().code(), Errc::not_found);
  EXPECT_EQ(load_status().code(), Errc::not_found);
}

}  // namespace
}  // namespace sluice::blob
