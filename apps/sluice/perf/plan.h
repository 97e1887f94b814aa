// From validated options to jobs: creates the target devices, checks the I/O size against
// each, opens one handle per job and splits each device into one region per core, so jobs
// never write the same blocks (verify depends on it).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "bdev/bdev.h"
#include "perf/core_run.h"
#include "perf/workload.h"

namespace sluice::perf {

struct PerfOptions {
  std::vector<std::string> targets;  // device specs, e.g. null:1G
  Workload workload = Workload::randread;
  bool verify_only = false;
  uint32_t io_size = 4096;
  uint32_t queue_depth = 32;
  double seconds = 5;
  std::vector<int> cores{0};
  uint32_t rwmixread = 50;
  uint64_t seed = 0;
};

class RunPlan {
 public:
  RunPlan() = default;
  ~RunPlan();  // closes the handles, then removes the devices it created
  RunPlan(const RunPlan&) = delete;
  RunPlan& operator=(const RunPlan&) = delete;

  // invalid_argument for a mismatch between the options and a device (I/O size, size);
  // other codes when a device cannot be created or opened.
  Status build(const PerfOptions& opts);
  std::vector<CoreJobs>& cores() { return cores_; }
  // The names the target devices were registered under, in target order.
  const std::vector<std::string>& devices() const { return devices_; }

 private:
  std::vector<std::string> devices_;
  std::vector<std::unique_ptr<bdev::BdevDesc>> descs_;
  std::vector<CoreJobs> cores_;
};

}  // namespace sluice::perf
