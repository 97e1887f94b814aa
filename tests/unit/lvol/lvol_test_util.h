// Shared fixture for the lvol tests: a malloc device (or a uring temp file), stores made and
// reloaded on it, and cleanup of whatever a test left loaded.
#pragma once

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "lvol/lvol.h"

namespace sluice::lvol::testing {

inline constexpr uint32_t kCluster = 64 * 1024;

class LvolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto n = bdev::create("malloc:64M", "");
    ASSERT_TRUE(n.ok()) << n.status().to_string();
    dev_ = *n;
  }
  void TearDown() override {
    store_.reset();
    for (auto& name : LvolStore::list_stores()) {
      auto s = LvolStore::find(name);
      if (!s) continue;
      Status st = s->unload();
      if (!st.ok()) {
        ADD_FAILURE() << "store " << name << " left open: " << st.to_string();
        s->abandon();
      }
    }
    if (!dev_.empty()) (void)bdev::unregister(dev_);
  }

  void make_store(const std::string& name = "pool") {
    auto s = LvolStore::create(dev_, name, kCluster);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    store_ = std::move(s.value());
  }
  // Reloads after a clean unload, or (clean = false) as after a power cut.
  void reload(bool clean) {
    ASSERT_TRUE(store_);
    if (clean) {
      Status st = store_->unload();
      ASSERT_TRUE(st.ok()) << st.to_string();
    } else {
      store_->abandon();
    }
    store_.reset();
    auto s = LvolStore::load(dev_);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    store_ = std::move(s.value());
  }
  VolumeInfo must_create(const std::string& name, uint64_t size, bool thin = false) {
    auto v = store_->create_volume(name, size, thin);
    EXPECT_TRUE(v.ok()) << v.status().to_string();
    return v.ok() ? v.value() : VolumeInfo{};
  }

  std::string dev_;
  std::shared_ptr<LvolStore> store_;
};

#define ASSERT_OK(expr)                                   \
  do {                                                    \
    ::sluice::Status _s = (expr);                         \
    ASSERT_TRUE(_s.ok()) << #expr << ": " << _s.to_string(); \
  } while (0)
#define EXPECT_OK(expr)                                   \
  do {                                                    \
    ::sluice::Status _s = (expr);                         \
    EXPECT_TRUE(_s.ok()) << #expr << ": " << _s.to_string(); \
  } while (0)

}  // namespace sluice::lvol::testing
