// The blobstore under injected I/O errors: the workload's I/O number n fails (once, or
// from then on), for every n. Operations must fail with a status, nothing may crash, and
// the store must load afterwards with a clean fsck.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "bdev/error_inject.h"
#include "blob/blob.h"
#include "blob_workload.h"
#include "crash_report.h"

namespace sluice::blob {
namespace {

constexpr const char* kBase = "errinj_base";
constexpr const char* kErr = "errinj";
constexpr int kOps = 80;
constexpr uint64_t kWorkload = 7;

// Returns how many I/Os the workload issued, or a failure description in `why`.
uint64_t run_with_errors(uint64_t fail_at, bool dead_after, std::string* why) {
  auto fail = [&](std::string w) {
    *why = fmt::format("fail_at {} dead {}: {}", fail_at, dead_after, w);
    return uint64_t{0};
  };
  if (auto b = bdev::create("malloc:8M", kBase); !b.ok()) return fail(b.status().to_string());
  {
    auto bs = Blobstore::init(kBase, small_store());
    if (!bs.ok()) return fail(bs.status().to_string());
    if (Status st = (*bs)->unload(); !st.ok()) return fail(st.to_string());
  }
  auto inj = bdev::ErrorInjector::stack(kBase, kErr);
  if (!inj.ok()) return fail(inj.status().to_string());
  if (fail_at) {
    bdev::ErrorRule rule;  // every I/O type
    rule.skip = fail_at - 1;
    rule.count = dead_after ? bdev::ErrorRule::kUnlimited : 1;
    Status st = inj->set_rule(rule);
    if (!st.ok()) return fail(st.to_string());
  }
  {
    auto bs = Blobstore::load(kErr);
    if (bs.ok()) {
      Run run = run_workload(**bs, kWorkload, kOps, /*stop_on_device_failure=*/false);
      if (!run.unexpected.empty()) return fail("unexpected error: " + run.unexpected);
      Status st = (*bs)->unload();
      if (!st.ok()) (*bs)->abandon();  // the device failed the checkpoint: as after a crash
    } else if (!is_device_failure(bs.status())) {
      return fail("load: " + bs.status().to_string());
    }
  }
  // Requests the error bdev received (malloc never splits, so these are the rule's units).
  uint64_t ios = 0;
  for (auto& op : bdev::find(kErr)->stats().by_type) ios += op.ops.get();
  if (Status st = bdev::unregister(kErr); !st.ok()) return fail(st.to_string());
  {
    auto bs = Blobstore::load(kBase);
    if (!bs.ok()) return fail("load afterwards: " + bs.status().to_string());
    std::string problems;
    for (auto& p : (*bs)->check()) problems += p + "; ";
    if (!problems.empty()) return fail("fsck: " + problems);
    if (Status st = (*bs)->unload(); !st.ok()) return fail("unload afterwards: " + st.to_string());
  }
  (void)bdev::unregister(kBase);
  return ios;
}

TEST(BlobErrors, EveryIoFailsOnceThenEveryIoFailsForGood) {
  std::string why;
  const uint64_t total = run_with_errors(0, false, &why);
  ASSERT_TRUE(why.empty()) << why;
  ASSERT_GT(total, 20u);
  uint64_t tried = 0, failed = 0;
  for (bool dead : {false, true}) {
    for (uint64_t n = 1; n <= total; ++n) {
      why.clear();
      run_with_errors(n, dead, &why);
      ++tried;
      if (!why.empty()) {
        ++failed;
        if (failed <= 5) ADD_FAILURE() << why;
        (void)bdev::unregister(kErr);
        (void)bdev::unregister(kBase);
      }
    }
  }
  testing::report_points("blobstore error-injection suite", "injected I/O errors", tried, failed);
  EXPECT_EQ(failed, 0u);
}

}  // namespace
}  // namespace sluice::blob
