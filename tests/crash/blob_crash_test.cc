// The blobstore under power cuts (docs/design.md, "Two crash models").
//
// A seeded workload of metadata operations with syncs between them runs on a crashsim
// device that cuts power at a chosen I/O boundary; each write not yet flushed then survives,
// vanishes or tears. After the cut the store is loaded from the post-crash image and must:
//   - load (recovery never fails on an image the model can produce),
//   - pass fsck (every cluster owned once, free count exact, no dirty cluster left),
//   - equal the state after some operation at or after the last acknowledged sync_md():
//     every synced change survived and no operation is half-visible.
// Small workloads are cut at every boundary with several seeds; large ones at thousands of
// random (boundary, seed) pairs.
#include <map>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "bdev/crashsim.h"
#include "blob/blob.h"
#include "blob_workload.h"
#include "crash_report.h"

namespace sluice::blob {
namespace {

constexpr const char* kBase = "crash_base";
constexpr const char* kCrash = "crash_cs";

struct Trial {
  uint64_t workload_seed;
  int ops;
  uint64_t cut;  // 0: no cut (to count boundaries)
  uint64_t crash_seed;
};

struct Outcome {
  uint64_t boundaries = 0;
  std::string failure;  // empty: the recovered store was consistent
};

Outcome run_trial(const Trial& t) {
  Outcome out;
  auto fail = [&](std::string why) {
    out.failure = fmt::format("workload {} ops {} cut {} seed {}: {}", t.workload_seed, t.ops, t.cut, t.crash_seed, why);
    return out;
  };
  if (auto b = bdev::create("malloc:8M", kBase); !b.ok()) return fail(b.status().to_string());
  {
    auto bs = Blobstore::init(kBase, small_store());
    if (!bs.ok()) return fail(bs.status().to_string());
    if (Status st = (*bs)->unload(); !st.ok()) return fail(st.to_string());
  }
  auto cs = bdev::CrashSim::stack(kBase, kCrash);
  if (!cs.ok()) return fail(cs.status().to_string());
  cs->set_seed(t.crash_seed);
  if (t.cut) (void)cs->cut_power_at(t.cut);

  Run run;
  {
    auto bs = Blobstore::load(kCrash);
    if (!bs.ok()) {
      if (!cs->powered_off()) return fail("load before the cut: " + bs.status().to_string());
      run.states.push_back("");  // cut during load: the image is the freshly initialized one
    } else {
      run = run_workload(**bs, t.workload_seed, t.ops);
      if (!run.unexpected.empty()) return fail("unexpected error: " + run.unexpected);
      cs->cut_power();  // also ends a run that finished before its cut point
      (*bs)->abandon();
    }
  }
  out.boundaries = cs->boundaries();
  if (Status st = bdev::unregister(kCrash); !st.ok()) return fail(st.to_string());

  auto bs = Blobstore::load(kBase);
  if (!bs.ok()) return fail("recovery failed: " + bs.status().to_string());
  std::string problems;
  for (auto& p : (*bs)->check()) problems += p + "; ";
  if (!problems.empty()) return fail("fsck: " + problems);
  std::string got = canonical(**bs);
  bool matched = run.states.size() == 1 && run.states[0].empty();  // cut during the first load
  for (size_t k = run.last_synced; k < run.states.size() && !matched; ++k) matched = run.states[k] == got;
  if (!matched) {
    return fail(fmt::format("recovered state matches no state at or after the last sync (#{} of {}):\n{}\nlast synced:\n{}",
                            run.last_synced, run.states.size(), got, run.states[run.last_synced]));
  }
  (void)(*bs)->unload();
  bs.value().reset();
  (void)bdev::unregister(kBase);
  return out;
}

void cleanup() {
  (void)bdev::unregister(kCrash);
  (void)bdev::unregister(kBase);
}

TEST(BlobCrash, SmallWorkloadCutAtEveryBoundary) {
  constexpr int kOps = 24;
  uint64_t tried = 0, failed = 0;
  for (uint64_t workload : {1, 2, 3}) {
    Outcome full = run_trial({workload, kOps, 0, 0});
    ASSERT_TRUE(full.failure.empty()) << full.failure;
    cleanup();
    ASSERT_GT(full.boundaries, 10u);
    for (uint64_t cut = 1; cut <= full.boundaries + 1; ++cut) {
      for (uint64_t seed : {1, 2}) {
        Outcome o = run_trial({workload, kOps, cut, seed * 1000 + cut});
        ++tried;
        if (!o.failure.empty()) {
          ++failed;
          ADD_FAILURE() << o.failure;
          cleanup();
        }
      }
    }
  }
  testing::report_points("blobstore crash suite (every boundary)", "crash points", tried, failed);
  EXPECT_EQ(failed, 0u);
}

TEST(BlobCrash, LargeWorkloadsRandomCuts) {
  constexpr int kOps = 120;
  constexpr int kWorkloads = 8;
  constexpr int kCutsPerWorkload = testing::random_cut_budget(260);  // 2080 in a release build
  uint64_t tried = 0, failed = 0;
  std::mt19937_64 rng(20261122);
  for (int w = 0; w < kWorkloads; ++w) {
    const uint64_t workload = 100 + w;
    Outcome full = run_trial({workload, kOps, 0, 0});
    ASSERT_TRUE(full.failure.empty()) << full.failure;
    cleanup();
    for (int i = 0; i < kCutsPerWorkload; ++i) {
      uint64_t cut = 1 + rng() % (full.boundaries + 1);
      Outcome o = run_trial({workload, kOps, cut, rng()});
      ++tried;
      if (!o.failure.empty()) {
        ++failed;
        if (failed <= 5) ADD_FAILURE() << o.failure;
        cleanup();
      }
    }
  }
  testing::report_points("blobstore crash suite (random cuts)", "crash points", tried, failed);
  EXPECT_EQ(failed, 0u);
}

}  // namespace
}  // namespace sluice::blob
