// `sluice nvme perf`'s engine: one thread drives one I/O queue pair of the userspace NVMe
// driver directly (no bdev layer), like SPDK's spdk_nvme_perf.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "nvme/nvme.h"

namespace sluice::cli {

struct NvmePerfOptions {
  uint32_t nsid = 1;
  uint32_t queue_depth = 32;
  uint32_t io_bytes = 4096;
  std::string workload = "randread";  // randread, randwrite, read, write, randrw
  uint32_t read_percent = 50;         // randrw
  double seconds = 5;
  uint64_t seed = 1;
};

struct NvmePerfResult {
  uint64_t ios = 0, bytes = 0, errors = 0;
  double seconds = 0;
  double iops = 0, mib_per_s = 0;
  double lat_avg_us = 0, lat_p50_us = 0, lat_p99_us = 0, lat_p999_us = 0, lat_max_us = 0;
  double cpu_ns_per_io = 0;
  uint64_t bounces = 0, doorbells = 0;
  std::string first_error;
};

// Stops early, with what was measured, when a StopSignalGuard saw Ctrl-C (perf/stop_signal.h).
Result<NvmePerfResult> run_nvme_perf(nvme::Controller& ctrl, const NvmePerfOptions& opts);

}  // namespace sluice::cli
