// The "lvol" device spec: aliases of loaded volumes, nested device specs that load a store,
// and bdev::register_scheme itself.
#include <gtest/gtest.h>

#include "bdev/backend.h"
#include "bdev/bdev.h"
#include "bdev/spec.h"
#include "lvol/lvol.h"
#include "lvol_test_util.h"

#include "temp_file.h"

namespace sluice::lvol {
namespace {

using testing::kCluster;
using testing::LvolTest;

TEST(RegisterScheme, BuiltInsAndDuplicatesAreRefused) {
  auto never = [](const bdev::SpecArgs&) -> Result<std::shared_ptr<bdev::Bdev>> {
    return Status(Errc::not_supported, "never");
  };
  EXPECT_EQ(bdev::register_scheme("malloc", never).code(), Errc::exists);
  EXPECT_EQ(bdev::register_scheme("", never).code(), Errc::invalid_argument);
  EXPECT_EQ(bdev::register_scheme("a:b", never).code(), Errc::invalid_argument);
  EXPECT_EQ(bdev::register_scheme("nofactory", nullptr).code(), Errc::invalid_argument);
  ASSERT_OK(bdev::register_scheme("lvoltest-never", never));
  EXPECT_EQ(bdev::register_scheme("lvoltest-never", never).code(), Errc::exists);
  // The registered factory is consulted, gets the raw target, and its error comes back.
  auto made = bdev::create("lvoltest-never:x?y=z");
  EXPECT_EQ(made.status().code(), Errc::not_supported);
  // Unknown schemes list the registered ones too.
  ASSERT_OK(register_spec_scheme());
  ASSERT_OK(register_spec_scheme());  // idempotent
  auto unknown = bdev::create("nosuch:thing");
  EXPECT_EQ(unknown.status().code(), Errc::invalid_argument);
  EXPECT_NE(unknown.status().message().find("lvol"), std::string::npos) << unknown.status().message();
  EXPECT_NE(unknown.status().message().find("malloc"), std::string::npos) << unknown.status().message();
}

TEST_F(LvolTest, SpecMakesAnAliasThatHoldsTheVolumeOpen) {
  make_store();
  must_create("v", 2 * kCluster);
  auto alias = bdev::create("lvol:pool/v", "myvol");
  ASSERT_TRUE(alias.ok()) << alias.status().to_string();
  EXPECT_EQ(*alias, "myvol");
  auto dev = bdev::find("myvol");
  ASSERT_TRUE(dev);
  EXPECT_EQ(dev->spec(), "lvol:pool/v");
  EXPECT_EQ(dev->geometry().num_blocks, bdev::find("pool/v")->geometry().num_blocks);
  EXPECT_EQ(store_->delete_volume("v").code(), Errc::busy);
  EXPECT_EQ(store_->unload().code(), Errc::busy);
  ASSERT_OK(bdev::unregister("myvol"));
  dev.reset();
  ASSERT_OK(store_->resize_volume("v", 3 * kCluster));
  // A default name.
  auto unnamed = bdev::create("lvol:pool/v");
  ASSERT_TRUE(unnamed.ok()) << unnamed.status().to_string();
  EXPECT_EQ(unnamed->rfind("lvol", 0), 0u) << *unnamed;
  // Deleting is refused while it exists; an abandoned store takes it down.
  EXPECT_EQ(store_->delete_volume("v").code(), Errc::busy);
  store_->abandon();
  EXPECT_FALSE(bdev::find(*unnamed));
  store_.reset();
}

TEST_F(LvolTest, BadLvolSpecsAreClearErrors) {
  make_store();
  must_create("v", kCluster);
  struct Case {
    std::string spec;
    Errc code;
    std::string says;
  } cases[] = {
      {"lvol:pool", Errc::invalid_argument, "names no volume"},
      {"lvol:pool/", Errc::invalid_argument, "names no volume"},
      {"lvol:/v", Errc::invalid_argument, "names no volume"},
      {"lvol:nopool/v", Errc::not_found, "'nopool' is neither a loaded lvol store nor a device"},
      {"lvol:pool/nov", Errc::not_found, "no volume 'nov'"},
      {"lvol:nosuch:thing/v", Errc::invalid_argument, "unknown device type 'nosuch'"},
  };
  for (auto& c : cases) {
    auto r = bdev::create(c.spec);
    EXPECT_EQ(r.status().code(), c.code) << c.spec << ": " << r.status().to_string();
    EXPECT_NE(r.status().message().find(c.says), std::string::npos) << c.spec << ": " << r.status().message();
  }
  // A device that holds no lvol store: refused, and the device made for it is gone again.
  auto blank = bdev::create("lvol:malloc:8M/v", "blankvol");
  EXPECT_EQ(blank.status().code(), Errc::not_found) << blank.status().to_string();
  EXPECT_FALSE(bdev::find("blankvol_base"));
  EXPECT_EQ(bdev::list().size(), 2u);  // the fixture's device and pool/v
}

TEST_F(LvolTest, NestedSpecLoadsTheStoreAndUnloadsItWithTheLastAlias) {
  sluice::testing::TempFile file(32 << 20);
  ASSERT_FALSE(file.path().empty());
  const std::string spec = "uring:" + file.path();
  {
    auto dev = bdev::create(spec, "lvol_nested_dev");
    if (!dev.ok()) GTEST_SKIP() << "uring backend unavailable: " << dev.status().to_string();
    auto s = LvolStore::create(*dev, "img", kCluster);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    ASSERT_TRUE((*s)->create_volume("vol1", 2 * kCluster).ok());
    ASSERT_TRUE((*s)->create_volume("vol2", 2 * kCluster, true).ok());
    ASSERT_OK((*s)->unload());
    ASSERT_OK(bdev::unregister(*dev));
  }
  auto a = bdev::create("lvol:" + spec + "/vol1", "a");
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  auto store = LvolStore::find("img");
  ASSERT_TRUE(store);
  EXPECT_EQ(store->info().bdev_name, "a_base");
  EXPECT_TRUE(bdev::find("img/vol2"));
  // A second alias on the same device shares the loaded store instead of loading it twice.
  auto b = bdev::create("lvol:" + spec + "/vol2", "b");
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_EQ(LvolStore::list_stores(), std::vector<std::string>{"img"});
  store.reset();
  ASSERT_OK(bdev::unregister("a"));
  EXPECT_TRUE(LvolStore::find("img"));
  ASSERT_OK(bdev::unregister("b"));
  EXPECT_FALSE(LvolStore::find("img"));
  EXPECT_FALSE(bdev::find("a_base"));
  EXPECT_FALSE(bdev::find("img/vol1"));
}

}  // namespace
}  // namespace sluice::lvol
