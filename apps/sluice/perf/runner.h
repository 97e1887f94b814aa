// Runs `sluice perf` jobs, one driver per core of the core list. Each core's driver sets up
// its jobs (channels belong to threads), waits until every core is ready, then turns its
// jobs until the deadline and drains them. Two drivers:
//  - reactors (the default): an App with one reactor per core; each core's jobs are one
//    poller, and the reactor polls the channels, as every Sluice service runs;
//  - plain threads: a pinned std::thread per core that loops { poll jobs' channels }, which is
//    exactly what a foreign (non-reactor) thread such as a RocksDB thread does.
#pragma once

#include <vector>

#include "base/status.h"
#include "perf/core_run.h"
#include "perf/idle_wait.h"
#include "perf/report.h"

namespace sluice::perf {

struct RunOutput {
  std::vector<JobResult> results;  // in plan order
  bool interrupted = false;        // stopped early by a signal
};

// How a driver waits while its jobs' requests are in flight (idle_wait.h).
struct PollPolicy {
  PollMode mode = PollMode::adaptive;
  uint32_t spin_us = kDefaultSpinUs;  // adaptive: how long to poll before sleeping
};

// Both fail (after cleaning up) if a core cannot be pinned or a job cannot be set up.
Result<RunOutput> run_on_threads(std::vector<CoreJobs>& plan, double seconds, PollPolicy poll = {});
Result<RunOutput> run_on_reactors(std::vector<CoreJobs>& plan, double seconds, PollPolicy poll = {});

}  // namespace sluice::perf
