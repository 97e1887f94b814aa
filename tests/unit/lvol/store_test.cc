// Lvol stores: create/load/unload roundtrips on malloc and on a uring file, the store
// registry, refusal of devices that hold no lvol store, and crash recovery.

#include <gtest/gtest.h>

#include "blob/blob.h"
#include "lvol/lvol.h"
#include "lvol_test_util.h"

#include "temp_file.h"

namespace sluice::lvol {
namespace {

// 8-4-4-4-12 lowercase hex, version 4, RFC 4122 variant. (No std::regex: GCC 12's <regex>
// trips -Wmaybe-uninitialized in sanitizer builds.)
bool is_uuid_v4(const std::string& u) {
  if (u.size() != 36) return false;
  for (size_t i = 0; i < u.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (u[i] == '-')) return false;
    if (!dash && !((u[i] >= '0' && u[i] <= '9') || (u[i] >= 'a' && u[i] <= 'f'))) return false;
  }
  return u[14] == '4' && (u[19] == '8' || u[19] == '9' || u[19] == 'a' || u[19] == 'b');
}

using testing::kCluster;
using testing::LvolTest;

TEST_F(LvolTest, CreateRegistersTheStoreAndLoadFindsItAgain) {
  make_store("pool");
  StoreInfo info = store_->info();
  EXPECT_EQ(info.name, "pool");
  EXPECT_EQ(info.bdev_name, dev_);
  EXPECT_EQ(info.cluster_size, kCluster);
  EXPECT_EQ(info.block_size, 512u);
  EXPECT_GT(info.total_bytes, 32u << 20);
  EXPECT_EQ(info.free_bytes, info.total_bytes);
  EXPECT_EQ(info.volumes, 0u);
  EXPECT_TRUE(is_uuid_v4(info.uuid))
      << info.uuid;
  EXPECT_EQ(LvolStore::find("pool"), store_);
  EXPECT_EQ(LvolStore::list_stores(), std::vector<std::string>{"pool"});

  ASSERT_OK(store_->unload());
  EXPECT_EQ(LvolStore::find("pool"), nullptr);
  EXPECT_TRUE(LvolStore::list_stores().empty());
  // A store that was unloaded refuses further work, clearly.
  auto late = store_->create_volume("v", 1 << 20);
  EXPECT_EQ(late.status().code(), Errc::aborted);
  EXPECT_NE(late.status().message().find("unloaded"), std::string::npos) << late.status().message();
  EXPECT_EQ(store_->unload().code(), Errc::aborted);

  auto again = LvolStore::load(dev_);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ((*again)->info().name, "pool");
  EXPECT_EQ((*again)->info().uuid, info.uuid);
  EXPECT_EQ(LvolStore::find("pool"), *again);
  store_ = *again;
}

TEST_F(LvolTest, RoundtripOnAUringFile) {
  sluice::testing::TempFile file(64 << 20);
  ASSERT_FALSE(file.path().empty());
  auto dev = bdev::create("uring:" + file.path(), "lvol_uring_dev");
  if (!dev.ok()) GTEST_SKIP() << "uring backend unavailable: " << dev.status().to_string();
  {
    auto s = LvolStore::create(*dev, "filepool", kCluster);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    ASSERT_TRUE((*s)->create_volume("a", 3 * kCluster, false).ok());
    ASSERT_TRUE((*s)->create_volume("b", 100 * kCluster, true).ok());
    ASSERT_OK((*s)->unload());
  }
  // A fresh device on the same file: everything comes from the file.
  ASSERT_OK(bdev::unregister(*dev));
  dev = bdev::create("uring:" + file.path(), "lvol_uring_dev");
  ASSERT_TRUE(dev.ok()) << dev.status().to_string();
  auto s = LvolStore::load(*dev);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  auto list = (*s)->list_volumes();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name, "a");
  EXPECT_EQ(list[0].size_bytes, 3u * kCluster);
  EXPECT_FALSE(list[0].thin);
  EXPECT_EQ(list[1].name, "b");
  EXPECT_TRUE(list[1].thin);
  EXPECT_TRUE(bdev::find("filepool/a"));
  ASSERT_OK((*s)->unload());
  EXPECT_FALSE(bdev::find("filepool/a"));
  ASSERT_OK(bdev::unregister(*dev));
}

TEST_F(LvolTest, DuplicateStoreNamesAreRefused) {
  auto other = bdev::create("malloc:32M", "");
  ASSERT_TRUE(other.ok());
  // A store named "pool" on the second device, then unloaded.
  {
    auto s = LvolStore::create(*other, "pool", kCluster);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    ASSERT_TRUE((*s)->create_volume("only-here", kCluster).ok());
    ASSERT_OK((*s)->unload());
  }
  make_store("pool");
  auto dup = LvolStore::create(*other, "pool", kCluster);
  EXPECT_EQ(dup.status().code(), Errc::exists) << dup.status().to_string();
  auto dup_load = LvolStore::load(*other);
  EXPECT_EQ(dup_load.status().code(), Errc::exists) << dup_load.status().to_string();
  EXPECT_NE(dup_load.status().message().find("already loaded"), std::string::npos);
  // Neither attempt touched the second store.
  ASSERT_OK(store_->unload());
  store_.reset();
  auto s = LvolStore::load(*other);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_TRUE((*s)->volume("only-here").ok());
  ASSERT_OK((*s)->unload());
  ASSERT_OK(bdev::unregister(*other));
}

TEST_F(LvolTest, ABlobstoreWithoutTheSuperBlobIsNotAnLvolStore) {
  {
    blob::InitOptions o;
    o.cluster_size = kCluster;
    auto bs = blob::Blobstore::init(dev_, o);
    ASSERT_TRUE(bs.ok()) << bs.status().to_string();
    blob::CreateOptions co;
    co.size_clusters = 1;
    ASSERT_TRUE((*bs)->create(co).ok());
    ASSERT_OK((*bs)->sync_md());
    ASSERT_OK((*bs)->unload());
  }
  auto s = LvolStore::load(dev_);
  EXPECT_EQ(s.status().code(), Errc::not_found);
  EXPECT_NE(s.status().message().find("not an lvol store"), std::string::npos) << s.status().message();
  EXPECT_TRUE(LvolStore::list_stores().empty());
  // The blobstore is still there, untouched, and the device is free again.
  auto bs = blob::Blobstore::load(dev_);
  ASSERT_TRUE(bs.ok()) << bs.status().to_string();
  EXPECT_EQ((*bs)->list().size(), 1u);
  ASSERT_OK((*bs)->unload());
}

TEST_F(LvolTest, ABlankDeviceIsNotAStore) {
  auto s = LvolStore::load(dev_);
  EXPECT_EQ(s.status().code(), Errc::not_found) << s.status().to_string();
  EXPECT_NE(s.status().message().find(dev_), std::string::npos) << s.status().message();
}

TEST_F(LvolTest, BadStoreNamesAndArgumentsAreRefusedBeforeFormatting) {
  for (std::string bad : {std::string(), std::string("a/b"), std::string("a b"), std::string(64, 'x'),
                          std::string("caf\xc3\xa9")}) {
    auto s = LvolStore::create(dev_, bad, kCluster);
    EXPECT_EQ(s.status().code(), Errc::invalid_argument) << "'" << bad << "': " << s.status().to_string();
    EXPECT_NE(s.status().message().find("store name"), std::string::npos) << s.status().message();
  }
  auto odd = LvolStore::create(dev_, "pool", 5000);
  EXPECT_EQ(odd.status().code(), Errc::invalid_argument) << odd.status().to_string();
  auto nodev = LvolStore::create("no-such-bdev", "pool", kCluster);
  EXPECT_EQ(nodev.status().code(), Errc::not_found) << nodev.status().to_string();
  // Nothing was written.
  EXPECT_EQ(LvolStore::load(dev_).status().code(), Errc::not_found);
}

TEST_F(LvolTest, AbandonedStoreRecoversOnLoad) {
  make_store("pool");
  must_create("a", 2 * kCluster);
  must_create("b", 8 * kCluster, true);
  reload(/*clean=*/false);
  auto list = store_->list_volumes();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name, "a");
  EXPECT_EQ(list[1].name, "b");
  EXPECT_TRUE(bdev::find("pool/a"));
}

TEST_F(LvolTest, ABlobWithoutANameIsListedAsUnnamed) {
  make_store("pool");
  must_create("a", kCluster);
  ASSERT_OK(store_->unload());
  store_.reset();
  {
    // As a crash between creating a volume's blob and naming it would leave it.
    auto bs = blob::Blobstore::load(dev_);
    ASSERT_TRUE(bs.ok()) << bs.status().to_string();
    blob::CreateOptions co;
    co.size_clusters = 2;
    auto id = (*bs)->create(co);
    ASSERT_TRUE(id.ok());
    ASSERT_OK((*bs)->sync_md());
    ASSERT_OK((*bs)->unload());
    auto s = LvolStore::load(dev_);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    store_ = *s;
    const std::string unnamed = "unnamed-" + std::to_string(*id);
    auto v = store_->volume(unnamed);
    ASSERT_TRUE(v.ok()) << v.status().to_string();
    EXPECT_EQ(v->size_bytes, 2u * kCluster);
    EXPECT_TRUE(bdev::find("pool/" + unnamed));
    ASSERT_OK(store_->rename_volume(unnamed, "found"));
  }
  reload(true);
  EXPECT_TRUE(store_->volume("found").ok());
  EXPECT_TRUE(store_->volume("a").ok());
}

TEST_F(LvolTest, UnloadIsRefusedWhileAVolumeIsOpen) {
  make_store("pool");
  must_create("a", kCluster);
  auto desc = bdev::open("pool/a");
  ASSERT_TRUE(desc.ok());
  Status st = store_->unload();
  EXPECT_EQ(st.code(), Errc::busy);
  EXPECT_NE(st.message().find("volume a is open"), std::string::npos) << st.message();
  // Still fully usable.
  EXPECT_TRUE(bdev::find("pool/a"));
  EXPECT_TRUE(store_->create_volume("b", kCluster).ok());
  desc->reset();
  ASSERT_OK(store_->unload());
  EXPECT_FALSE(bdev::find("pool/a"));
  EXPECT_FALSE(bdev::find("pool/b"));
}

TEST_F(LvolTest, AbandonHotRemovesOpenVolumes) {
  make_store("pool");
  must_create("a", kCluster);
  bool removed = false;
  bdev::OpenOptions o;
  o.on_remove = [&] { removed = true; };
  auto desc = bdev::open("pool/a", o);
  ASSERT_TRUE(desc.ok());
  store_->abandon();
  EXPECT_TRUE(removed);
  EXPECT_FALSE(bdev::find("pool/a"));
  desc->reset();
  store_.reset();
  auto s = LvolStore::load(dev_);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  store_ = *s;
  EXPECT_TRUE(store_->volume("a").ok());
}

}  // namespace
}  // namespace sluice::lvol
