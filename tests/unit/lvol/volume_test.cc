// Volumes: lifecycle, names, rename, resize, snapshot/clone relations, inflate/decouple,
// refusals while open, and persistence across unload/load and across a crash.
#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "lvol/lvol.h"
#include "lvol_test_util.h"

namespace sluice::lvol {
namespace {

using testing::kCluster;
using testing::LvolTest;

std::vector<std::string> names(const std::vector<VolumeInfo>& list) {
  std::vector<std::string> out;
  for (auto& v : list) out.push_back(v.name);
  return out;
}

TEST_F(LvolTest, CreateRoundsUpToClustersAndRegistersABdev) {
  make_store();
  VolumeInfo thick = must_create("thick", 100 * 1024);
  EXPECT_EQ(thick.name, "thick");
  EXPECT_EQ(thick.bdev_name, "pool/thick");
  EXPECT_EQ(thick.size_bytes, 2u * kCluster);
  EXPECT_EQ(thick.allocated_bytes, 2u * kCluster);
  EXPECT_FALSE(thick.thin);
  EXPECT_FALSE(thick.snapshot);
  EXPECT_TRUE(thick.parent.empty());

  VolumeInfo thin = must_create("thin", 1 << 20, true);
  EXPECT_EQ(thin.size_bytes, 1u << 20);
  EXPECT_EQ(thin.allocated_bytes, 0u);
  EXPECT_TRUE(thin.thin);

  auto dev = bdev::find("pool/thick");
  ASSERT_TRUE(dev);
  const bdev::Geometry& g = dev->geometry();
  EXPECT_EQ(g.block_size, 512u);
  EXPECT_EQ(g.num_blocks, 2u * kCluster / 512);
  EXPECT_EQ(g.max_transfer_blocks, kCluster / 512);
  EXPECT_TRUE(g.supports(bdev::IoType::read));
  EXPECT_TRUE(g.supports(bdev::IoType::write));
  EXPECT_TRUE(g.supports(bdev::IoType::flush));
  EXPECT_TRUE(g.supports(bdev::IoType::unmap));
  EXPECT_TRUE(g.supports(bdev::IoType::write_zeroes));
  EXPECT_TRUE(g.supports(bdev::IoType::reset));
  EXPECT_EQ(g.queue_depth, bdev::find(dev_)->geometry().queue_depth);
  EXPECT_EQ(dev->spec(), "lvol:pool/thick");

  EXPECT_EQ(names(store_->list_volumes()), (std::vector<std::string>{"thick", "thin"}));
  EXPECT_EQ(store_->info().volumes, 2u);
  EXPECT_EQ(store_->info().free_bytes, store_->info().total_bytes - 2 * kCluster);
}

TEST_F(LvolTest, BadNamesAndDuplicatesAreClearErrors) {
  make_store();
  must_create("ok.name_1-A", kCluster);
  must_create(std::string(63, 'n'), kCluster);
  struct Case {
    std::string name;
    std::string says;
  } cases[] = {
      {"", "empty"},
      {std::string(64, 'n'), "the limit is 63"},
      {"has space", "' '"},
      {"a/b", "'/'"},
      {"colon:", "':'"},
      {"tab\t", "0x09"},
      {"\xff", "0xff"},
  };
  for (auto& c : cases) {
    auto v = store_->create_volume(c.name, kCluster);
    EXPECT_EQ(v.status().code(), Errc::invalid_argument) << c.name;
    EXPECT_NE(v.status().message().find("volume name"), std::string::npos) << v.status().message();
    EXPECT_NE(v.status().message().find(c.says), std::string::npos) << v.status().message();
  }
  auto dup = store_->create_volume("ok.name_1-A", kCluster);
  EXPECT_EQ(dup.status().code(), Errc::exists);
  EXPECT_NE(dup.status().message().find("already has a volume named ok.name_1-A"), std::string::npos);
  auto zero = store_->create_volume("zero", 0);
  EXPECT_EQ(zero.status().code(), Errc::invalid_argument);
  auto huge = store_->create_volume("huge", 128ull << 20);  // thick: more than the device
  EXPECT_EQ(huge.status().code(), Errc::no_space) << huge.status().to_string();
  EXPECT_NE(huge.status().message().find("volume huge"), std::string::npos);
  EXPECT_FALSE(bdev::find("pool/huge"));
  EXPECT_EQ(store_->list_volumes().size(), 2u);
  EXPECT_TRUE(check_name("x").ok());
  EXPECT_FALSE(check_name("x y").ok());
}

TEST_F(LvolTest, UnknownVolumesAreNotFound) {
  make_store();
  EXPECT_EQ(store_->volume("nope").status().code(), Errc::not_found);
  EXPECT_EQ(store_->delete_volume("nope").code(), Errc::not_found);
  EXPECT_EQ(store_->resize_volume("nope", kCluster).code(), Errc::not_found);
  EXPECT_EQ(store_->rename_volume("nope", "x").code(), Errc::not_found);
  EXPECT_EQ(store_->snapshot_volume("nope", "x").status().code(), Errc::not_found);
  EXPECT_EQ(store_->clone_volume("nope", "x").status().code(), Errc::not_found);
  EXPECT_EQ(store_->inflate_volume("nope").code(), Errc::not_found);
  EXPECT_EQ(store_->decouple_volume("nope").code(), Errc::not_found);
  EXPECT_NE(store_->volume("nope").status().message().find("pool has no volume 'nope'"), std::string::npos);
}

TEST_F(LvolTest, DeleteRemovesTheBdevAndFreesTheName) {
  make_store();
  must_create("a", 4 * kCluster);
  const uint64_t free_before = store_->info().free_bytes;
  ASSERT_OK(store_->delete_volume("a"));
  EXPECT_FALSE(bdev::find("pool/a"));
  EXPECT_EQ(store_->volume("a").status().code(), Errc::not_found);
  EXPECT_EQ(store_->info().free_bytes, free_before + 4 * kCluster);
  must_create("a", kCluster);
  EXPECT_TRUE(bdev::find("pool/a"));
}

TEST_F(LvolTest, OpenVolumesCannotBeDeletedResizedOrRenamed) {
  make_store();
  must_create("a", 2 * kCluster);
  auto desc = bdev::open("pool/a");
  ASSERT_TRUE(desc.ok());
  Status del = store_->delete_volume("a");
  EXPECT_EQ(del.code(), Errc::busy);
  EXPECT_NE(del.message().find("cannot delete volume a while its bdev pool/a is open"), std::string::npos) << del.message();
  EXPECT_EQ(store_->resize_volume("a", 4 * kCluster).code(), Errc::busy);
  EXPECT_EQ(store_->rename_volume("a", "b").code(), Errc::busy);
  // Unchanged, and still open.
  EXPECT_EQ(store_->volume("a")->size_bytes, 2u * kCluster);
  EXPECT_EQ((*desc)->geometry().num_blocks, 2u * kCluster / 512);
  EXPECT_FALSE(bdev::find("pool/b"));
  desc->reset();
  ASSERT_OK(store_->resize_volume("a", 4 * kCluster));
  ASSERT_OK(store_->delete_volume("a"));
}

TEST_F(LvolTest, ResizeOfAClosedVolumeUpdatesItsBdev) {
  make_store();
  must_create("a", 2 * kCluster);
  must_create("t", 2 * kCluster, true);
  ASSERT_OK(store_->resize_volume("a", 5 * kCluster - 1));
  EXPECT_EQ(store_->volume("a")->size_bytes, 5u * kCluster);
  EXPECT_EQ(store_->volume("a")->allocated_bytes, 5u * kCluster);
  EXPECT_EQ(bdev::find("pool/a")->geometry().num_blocks, 5u * kCluster / 512);
  ASSERT_OK(store_->resize_volume("a", kCluster));
  EXPECT_EQ(bdev::find("pool/a")->geometry().num_blocks, kCluster / 512);
  ASSERT_OK(store_->resize_volume("t", 1000 * kCluster));
  EXPECT_EQ(store_->volume("t")->allocated_bytes, 0u);
  EXPECT_EQ(store_->resize_volume("t", 0).code(), Errc::invalid_argument);
  // A newly opened handle sees the new size.
  auto desc = bdev::open("pool/t");
  ASSERT_TRUE(desc.ok());
  EXPECT_EQ((*desc)->geometry().num_blocks, 1000u * kCluster / 512);
  desc->reset();
  reload(true);
  EXPECT_EQ(store_->volume("a")->size_bytes, 1u * kCluster);
  EXPECT_EQ(store_->volume("t")->size_bytes, 1000u * kCluster);
  EXPECT_EQ(bdev::find("pool/t")->geometry().num_blocks, 1000u * kCluster / 512);
}

TEST_F(LvolTest, RenameMovesTheBdevAndPersists) {
  make_store();
  must_create("a", kCluster);
  must_create("b", kCluster);
  ASSERT_OK(store_->rename_volume("a", "c"));
  EXPECT_FALSE(bdev::find("pool/a"));
  ASSERT_TRUE(bdev::find("pool/c"));
  EXPECT_EQ(bdev::find("pool/c")->spec(), "lvol:pool/c");
  EXPECT_EQ(store_->rename_volume("c", "b").code(), Errc::exists);
  EXPECT_EQ(store_->rename_volume("c", "no/slash").code(), Errc::invalid_argument);
  EXPECT_OK(store_->rename_volume("c", "c"));
  EXPECT_EQ(names(store_->list_volumes()), (std::vector<std::string>{"b", "c"}));
  reload(false);
  EXPECT_EQ(names(store_->list_volumes()), (std::vector<std::string>{"b", "c"}));
  EXPECT_TRUE(bdev::find("pool/c"));
  // The old name is free again.
  must_create("a", kCluster);
}

TEST_F(LvolTest, SnapshotsAndClonesKnowEachOther) {
  make_store();
  must_create("base", 4 * kCluster);
  auto snap = store_->snapshot_volume("base", "snap1");
  ASSERT_TRUE(snap.ok()) << snap.status().to_string();
  EXPECT_TRUE(snap->snapshot);
  EXPECT_EQ(snap->size_bytes, 4u * kCluster);
  EXPECT_EQ(snap->allocated_bytes, 4u * kCluster);  // the clusters moved to the snapshot
  EXPECT_EQ(snap->clones, std::vector<std::string>{"base"});
  auto base = store_->volume("base");
  EXPECT_EQ(base->parent, "snap1");
  EXPECT_TRUE(base->thin);
  EXPECT_EQ(base->allocated_bytes, 0u);

  // The snapshot's bdev is read-only.
  auto sdev = bdev::find("pool/snap1");
  ASSERT_TRUE(sdev);
  EXPECT_TRUE(sdev->geometry().supports(bdev::IoType::read));
  EXPECT_FALSE(sdev->geometry().supports(bdev::IoType::write));
  EXPECT_FALSE(sdev->geometry().supports(bdev::IoType::unmap));

  auto clone = store_->clone_volume("snap1", "clone1");
  ASSERT_TRUE(clone.ok()) << clone.status().to_string();
  EXPECT_EQ(clone->parent, "snap1");
  EXPECT_TRUE(clone->thin);
  EXPECT_EQ(store_->volume("snap1")->clones, (std::vector<std::string>{"base", "clone1"}));

  // What cannot be done, and says why.
  auto c2 = store_->clone_volume("base", "x");
  EXPECT_EQ(c2.status().code(), Errc::invalid_argument);
  EXPECT_NE(c2.status().message().find("not a snapshot"), std::string::npos);
  auto s2 = store_->snapshot_volume("snap1", "x");
  EXPECT_EQ(s2.status().code(), Errc::invalid_argument);
  EXPECT_NE(s2.status().message().find("already a snapshot"), std::string::npos);
  EXPECT_EQ(store_->snapshot_volume("base", "clone1").status().code(), Errc::exists);
  EXPECT_EQ(store_->resize_volume("snap1", kCluster).code(), Errc::permission);
  Status del = store_->delete_volume("snap1");
  EXPECT_EQ(del.code(), Errc::busy);
  EXPECT_NE(del.message().find("snapshot snap1 has 2 clones (base, clone1)"), std::string::npos) << del.message();
  EXPECT_TRUE(bdev::find("pool/snap1"));

  // A snapshot of a clone: chains.
  auto snap2 = store_->snapshot_volume("clone1", "snap2");
  ASSERT_TRUE(snap2.ok()) << snap2.status().to_string();
  EXPECT_EQ(snap2->parent, "snap1");
  EXPECT_EQ(store_->volume("clone1")->parent, "snap2");
  EXPECT_EQ(store_->volume("snap1")->clones, (std::vector<std::string>{"base", "snap2"}));

  // Persisted as they are.
  reload(true);
  EXPECT_EQ(store_->volume("base")->parent, "snap1");
  EXPECT_EQ(store_->volume("clone1")->parent, "snap2");
  EXPECT_EQ(store_->volume("snap2")->parent, "snap1");
  EXPECT_TRUE(store_->volume("snap2")->snapshot);
  EXPECT_EQ(store_->volume("snap1")->clones, (std::vector<std::string>{"base", "snap2"}));
  EXPECT_FALSE(bdev::find("pool/snap2")->geometry().supports(bdev::IoType::write));
}

TEST_F(LvolTest, InflateAndDecoupleCutTies) {
  make_store();
  must_create("v", 4 * kCluster, true);
  ASSERT_TRUE(store_->snapshot_volume("v", "s1").ok());
  ASSERT_TRUE(store_->snapshot_volume("v", "s2").ok());  // v -> s2 -> s1
  EXPECT_EQ(store_->volume("v")->parent, "s2");
  EXPECT_EQ(store_->volume("s2")->parent, "s1");

  EXPECT_EQ(store_->decouple_volume("s1").code(), Errc::invalid_argument);  // not a clone
  ASSERT_OK(store_->decouple_volume("v"));
  EXPECT_EQ(store_->volume("v")->parent, "s1");
  EXPECT_TRUE(store_->volume("s2")->clones.empty());
  // s2 has no clones left and can go; then s1 has one clone (v) and merges into it.
  ASSERT_OK(store_->delete_volume("s2"));
  ASSERT_TRUE(store_->clone_volume("s1", "c").ok());
  ASSERT_OK(store_->inflate_volume("c"));
  auto c = store_->volume("c");
  EXPECT_TRUE(c->parent.empty());
  EXPECT_FALSE(c->thin);
  EXPECT_EQ(c->allocated_bytes, 4u * kCluster);
  EXPECT_EQ(store_->volume("s1")->clones, std::vector<std::string>{"v"});
  EXPECT_EQ(store_->inflate_volume("s1").code(), Errc::permission);
  ASSERT_OK(store_->delete_volume("s1"));
  EXPECT_TRUE(store_->volume("v")->parent.empty());
  reload(false);
  EXPECT_EQ(names(store_->list_volumes()), (std::vector<std::string>{"c", "v"}));
  EXPECT_TRUE(store_->volume("v")->parent.empty());
}

// Everything a store knows, for comparing before and after a reload.
std::string describe(LvolStore& s) {
  std::string out;
  for (auto& v : s.list_volumes()) {
    out += v.name + " " + v.bdev_name + " " + std::to_string(v.size_bytes) + " " + std::to_string(v.allocated_bytes) +
           (v.thin ? " thin" : "") + (v.snapshot ? " snapshot" : "") + " parent=" + v.parent + " clones=";
    for (auto& c : v.clones) out += c + ",";
    out += "\n";
  }
  return out;
}

TEST_F(LvolTest, EveryOperationIsDurableWhenItReturns) {
  make_store();
  const std::string uuid = store_->info().uuid;
  // Each step, then a power cut: the step must be there after recovery.
  auto step = [&](const char* what, auto&& op) {
    SCOPED_TRACE(what);
    op();
    const std::string before = describe(*store_);
    reload(false);
    EXPECT_EQ(describe(*store_), before);
    EXPECT_EQ(store_->info().uuid, uuid);
    EXPECT_EQ(store_->info().name, "pool");
  };
  step("create", [&] { must_create("a", 3 * kCluster); });
  step("create thin", [&] { must_create("t", 30 * kCluster, true); });
  step("resize", [&] { EXPECT_OK(store_->resize_volume("a", 6 * kCluster)); });
  step("snapshot", [&] { EXPECT_TRUE(store_->snapshot_volume("a", "s").ok()); });
  step("clone", [&] { EXPECT_TRUE(store_->clone_volume("s", "c").ok()); });
  step("rename", [&] { EXPECT_OK(store_->rename_volume("t", "t2")); });
  step("decouple", [&] { EXPECT_OK(store_->decouple_volume("c")); });
  step("inflate", [&] { EXPECT_OK(store_->inflate_volume("a")); });
  step("delete", [&] { EXPECT_OK(store_->delete_volume("t2")); });
  step("delete snapshot", [&] { EXPECT_OK(store_->delete_volume("s")); });
  EXPECT_EQ(names(store_->list_volumes()), (std::vector<std::string>{"a", "c"}));
  // And the same after a clean unload.
  const std::string before = describe(*store_);
  reload(true);
  EXPECT_EQ(describe(*store_), before);
}

}  // namespace
}  // namespace sluice::lvol
