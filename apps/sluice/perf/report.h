// `sluice perf` results: per-job and total metrics, as a table or as JSON.
//
// The JSON shape is an interface (bench/ scripts parse it); extend it, never rename:
//   {"target": str, "workload": str, "io_size": int, "queue_depth": int, "duration_s": float,
//    "cores": [int], "seed": int,
//    "jobs": [{"core": int, "ios": int, "iops": float, "mib_s": float, "errors": int,
//              "lat_us": {"avg": f, "p50": f, "p99": f, "p999": f}, "cpu_ns_per_io": f}],
//    "total": {same fields as a job, without core}}
// With several targets, "target" lists them comma-separated and each job names its own. verify
// adds "verify_passes" per job; a job that failed adds "first_error"; a run cut short by
// Ctrl-C adds "interrupted": true.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "perf/job.h"
#include "perf/workload.h"

namespace sluice::perf {

struct JobResult {
  int core = 0;
  std::string target;
  JobStats stats;
  uint64_t elapsed_ns = 0;  // first submit to last completion
  double cpu_ns = 0;        // the job's share (by I/Os) of its thread's CPU time over the run
};

struct RunInfo {
  std::vector<std::string> targets;
  Workload workload = Workload::randread;
  bool verify_only = false;
  uint64_t io_size = 0;
  uint32_t queue_depth = 0;
  std::vector<int> cores;
  uint64_t seed = 0;
  bool interrupted = false;
};

struct Metrics {
  uint64_t ios = 0;
  uint64_t errors = 0;
  double iops = 0;
  double mib_s = 0;
  double lat_avg_us = 0, lat_p50_us = 0, lat_p99_us = 0, lat_p999_us = 0;
  double cpu_ns_per_io = 0;
};

Metrics job_metrics(const JobResult& job, uint64_t io_size);
// Sums of rates and counts; latency over every I/O of every job.
Metrics total_metrics(const std::vector<JobResult>& jobs, uint64_t io_size);

nlohmann::ordered_json report_json(const RunInfo& info, const std::vector<JobResult>& jobs);
std::string report_table(const RunInfo& info, const std::vector<JobResult>& jobs);

}  // namespace sluice::perf
