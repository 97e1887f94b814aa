// Runs the bdev conformance suite (tests/unit/bdev/conformance_test.cc) on lvol volumes,
// opened through the lvol: scheme the way users name them: a thick and a thin volume in a
// fresh store on a malloc device for each test.
#include <string>

#include <fmt/format.h>

#include "bdev/bdev.h"
#include "lvol/lvol.h"

#include "../bdev/conformance.h"
#include "bdev_handle.h"

namespace sluice::lvol {
namespace {

constexpr uint32_t kCluster = 64 * 1024;

struct PreparedStore {
  std::string device, store;
};
PreparedStore current;  // the suite runs one test at a time

Result<std::string> prepare_volume(bool thin) {
  current.device = sluice::testing::unique_name("lvol_conf_dev");
  current.store = sluice::testing::unique_name("lvol_conf_store");
  auto dev = bdev::create("malloc:64M", current.device);
  if (!dev.ok()) return dev.status();
  auto store = LvolStore::create(current.device, current.store, kCluster);
  if (!store.ok()) return store.status();
  auto volume = (*store)->create_volume("vol", 48ull << 20, thin);
  if (!volume.ok()) return volume.status();
  return fmt::format("lvol:{}/vol", current.store);
}

void cleanup_store() {
  if (auto store = LvolStore::find(current.store)) {
    Status st = store->unload();
    if (!st.ok()) store->abandon();
  }
  (void)bdev::unregister(current.device);
}

[[maybe_unused]] const bool kThick = bdev::add_conformance_backend(
    {"lvol_thick", "", true, [] { return prepare_volume(false); }, cleanup_store});
[[maybe_unused]] const bool kThin = bdev::add_conformance_backend(
    {"lvol_thin", "", true, [] { return prepare_volume(true); }, cleanup_store});

}  // namespace
}  // namespace sluice::lvol
