#include "perf/report.h"

#include <gtest/gtest.h>

#include "base/clock.h"

namespace sluice::perf {
namespace {

JobResult job(int core, uint64_t ios, uint64_t lat_ticks) {
  JobResult r;
  r.core = core;
  r.target = "null:1G";
  for (uint64_t i = 0; i < ios; ++i) r.stats.latency_ticks.record(lat_ticks);
  r.stats.ios = ios;
  r.elapsed_ns = 1'000'000'000;
  r.cpu_ns = static_cast<double>(ios) * 50;
  return r;
}

TEST(Report, JsonHasTheSchemaBenchScriptsParse) {
  RunInfo info;
  info.targets = {"null:1G"};
  info.workload = Workload::randread;
  info.io_size = 4096;
  info.queue_depth = 32;
  info.cores = {0, 1};
  std::vector<JobResult> jobs = {job(0, 1000, 1000), job(1, 3000, 1000)};
  auto j = report_json(info, jobs);
  EXPECT_EQ(j["target"], "null:1G");
  EXPECT_EQ(j["workload"], "randread");
  EXPECT_EQ(j["io_size"], 4096);
  EXPECT_EQ(j["queue_depth"], 32);
  EXPECT_DOUBLE_EQ(j["duration_s"].get<double>(), 1.0);
  EXPECT_EQ(j["cores"], nlohmann::json::array({0, 1}));
  ASSERT_EQ(j["jobs"].size(), 2u);
  for (const auto& m : {j["jobs"][0], j["jobs"][1], j["total"]}) {
    for (const char* k : {"ios", "iops", "mib_s", "errors", "lat_us", "cpu_ns_per_io"}) EXPECT_TRUE(m.contains(k)) << k;
    for (const char* k : {"avg", "p50", "p99", "p999"}) EXPECT_GT(m["lat_us"][k].get<double>(), 0) << k;
  }
  EXPECT_EQ(j["jobs"][1]["core"], 1);
  EXPECT_FALSE(j["total"].contains("core"));
  EXPECT_FALSE(j["jobs"][0].contains("target"));  // only with several targets
  EXPECT_EQ(j["total"]["ios"], 4000);
  EXPECT_DOUBLE_EQ(j["total"]["iops"].get<double>(), 4000.0);
  EXPECT_DOUBLE_EQ(j["total"]["cpu_ns_per_io"].get<double>(), 50.0);
  const double lat_us = clock::ticks_to_ns(1000) / 1000;
  EXPECT_NEAR(j["total"]["lat_us"]["avg"].get<double>(), lat_us, 0.001);
}

TEST(Report, TableHasOneRowPerJobAndATotal) {
  RunInfo info;
  info.targets = {"null:1G"};
  info.io_size = 4096;
  info.queue_depth = 1;
  info.cores = {0, 1};
  std::string t = report_table(info, {job(0, 10, 100), job(1, 10, 100)});
  EXPECT_NE(t.find("total"), std::string::npos) << t;
  EXPECT_EQ(std::count(t.begin(), t.end(), '\n'), 5) << t;  // title, header, 2 jobs, total
}

}  // namespace
}  // namespace sluice::perf
