// The perf engine driven from the test's own thread, as a foreign (non-reactor) thread
// drives a bdev: jobs on real devices, back-pressure, and injected errors.
#include <gtest/gtest.h>

#include "base/clock.h"
#include "bdev/error_inject.h"
#include "perf/core_run.h"
#include "perf/plan.h"

namespace sluice::perf {
namespace {

PerfOptions options(std::string spec, Workload w) {
  PerfOptions o;
  o.targets = {std::move(spec)};
  o.workload = w;
  o.io_size = 4096;
  o.queue_depth = 8;
  o.seconds = 0.05;
  o.cores = {0};
  o.seed = 1234;
  return o;
}

// Runs the plan's first core on this thread; `before` may reach the devices first.
template <typename Before>
std::vector<JobResult> run_here(const PerfOptions& opts, Before before) {
  RunPlan plan;
  Status st = plan.build(opts);
  EXPECT_TRUE(st.ok()) << st.to_string();
  if (!st.ok()) return {};
  before(plan);
  CoreRun run(plan.cores()[0]);
  st = run.setup();
  EXPECT_TRUE(st.ok()) << st.to_string();
  run.start(clock::ticks() + static_cast<uint64_t>(opts.seconds * clock::ticks_per_second()));
  while (run.turn<true>()) {
  }
  auto results = run.results();
  run.teardown();
  return results;
}
std::vector<JobResult> run_here(const PerfOptions& opts) {
  return run_here(opts, [](RunPlan&) {});
}

TEST(PerfJob, EveryWorkloadRunsCleanOnMalloc) {
  for (Workload w : {Workload::read, Workload::write, Workload::randread, Workload::randwrite, Workload::rw,
                     Workload::verify}) {
    auto r = run_here(options("malloc:4M", w));
    ASSERT_EQ(r.size(), 1u);
    EXPECT_GT(r[0].stats.ios, 0u) << workload_name(w);
    EXPECT_EQ(r[0].stats.errors, 0u) << workload_name(w) << ": " << r[0].stats.first_error;
    EXPECT_GT(r[0].elapsed_ns, 0u);
    EXPECT_EQ(r[0].stats.latency_ticks.count(), r[0].stats.ios);
  }
}

TEST(PerfJob, VerifyCompletesPassesAndChecksWhatWriteLeft) {
  auto opts = options("malloc:1M", Workload::verify);
  auto r = run_here(opts);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_GE(r[0].stats.verify_passes, 1u);
  EXPECT_EQ(r[0].stats.errors, 0u) << r[0].stats.first_error;
  // Every pass writes and reads each of the 256 blocks once; the deadline may cut the last
  // pass's writes short, and then it reads back only what it wrote.
  EXPECT_LE(r[0].stats.ios, r[0].stats.verify_passes * 2 * 256);
  EXPECT_GT(r[0].stats.ios, (r[0].stats.verify_passes - 1) * 2 * 256);
  EXPECT_EQ(r[0].stats.ios % 2, 0u);
}

TEST(PerfJob, VerifyFailsOnADeviceThatStoresNothing) {
  auto r = run_here(options("null:1M", Workload::verify));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_GT(r[0].stats.errors, 0u);
  EXPECT_NE(r[0].stats.first_error.find("verify failed at byte offset 0 "), std::string::npos)
      << r[0].stats.first_error;
}

TEST(PerfJob, QueueDepthBeyondTheChannelWaitsInsteadOfFailing) {
  auto opts = options("malloc:4M?qd=2", Workload::rw);
  opts.queue_depth = 64;
  auto r = run_here(opts);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_GT(r[0].stats.ios, 0u);
  EXPECT_EQ(r[0].stats.errors, 0u) << r[0].stats.first_error;
}

TEST(PerfJob, ErrorsAreCountedAndTheRunGoesOn) {
  auto r = run_here(options("error:malloc:4M", Workload::randread), [](RunPlan& plan) {
    auto inj = bdev::ErrorInjector::find(plan.devices()[0]);
    ASSERT_TRUE(inj.ok()) << inj.status().to_string();
    ASSERT_TRUE(inj->set_rule(bdev::ErrorRule::random(bdev::io_bit(bdev::IoType::read), 0.1, 7)).ok());
  });
  ASSERT_EQ(r.size(), 1u);
  EXPECT_GT(r[0].stats.errors, 0u);
  EXPECT_GT(r[0].stats.ios, 2 * r[0].stats.errors);
  EXPECT_NE(r[0].stats.first_error.find("io_error"), std::string::npos) << r[0].stats.first_error;
}

TEST(PerfJob, VerifyStopsAtTheFirstError) {
  auto r = run_here(options("error:malloc:4M", Workload::verify), [](RunPlan& plan) {
    auto inj = bdev::ErrorInjector::find(plan.devices()[0]);
    ASSERT_TRUE(inj.ok()) << inj.status().to_string();
    ASSERT_TRUE(inj->set_rule(bdev::ErrorRule::nth(bdev::io_bit(bdev::IoType::write), 100)).ok());
  });
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].stats.errors, 1u);
  EXPECT_EQ(r[0].stats.verify_passes, 0u);
  EXPECT_LT(r[0].stats.ios, 100u + 8u);  // stopped issuing at the failure
  EXPECT_NE(r[0].stats.first_error.find("write of blocks"), std::string::npos) << r[0].stats.first_error;
}

TEST(PerfPlan, RejectsAnIoSizeTheDeviceCannotTake) {
  RunPlan plan;
  auto opts = options("malloc:4M?bs=4096", Workload::randread);
  opts.io_size = 512;
  EXPECT_EQ(plan.build(opts).code(), Errc::invalid_argument);
  RunPlan plan2;
  opts = options("malloc:64k", Workload::randread);
  opts.io_size = 1 << 20;
  EXPECT_EQ(plan2.build(opts).code(), Errc::invalid_argument);
}

TEST(PerfPlan, GivesEachCoreItsOwnSliceOfTheDevice) {
  RunPlan plan;
  auto opts = options("malloc:1M", Workload::verify);
  opts.cores = {0, 1};
  ASSERT_TRUE(plan.build(opts).ok());
  const auto& a = plan.cores()[0].jobs[0]->config();
  const auto& b = plan.cores()[1].jobs[0]->config();
  EXPECT_EQ(a.num_ios, 128u);
  EXPECT_EQ(b.first_block, a.first_block + a.num_ios * (4096 / 512));
}

}  // namespace
}  // namespace sluice::perf
