#include "perf/core_run.h"

namespace sluice::perf {

Status CoreRun::setup() {
  for (auto& j : cj_.jobs) SLUICE_RETURN_IF_ERROR(j->setup());
  return Status::Ok();
}

void CoreRun::start(uint64_t deadline_ticks) {
  deadline_ticks_ = deadline_ticks;
  start_ns_ = clock::now_ns();
  start_cpu_ns_ = clock::thread_cpu_ns();
  live_ = cj_.jobs.size();
  for (size_t i = 0; i < cj_.jobs.size(); ++i) {
    cj_.jobs[i]->start();
    if (cj_.jobs[i]->done()) finished(i);
  }
}

void CoreRun::finished(size_t i) {
  end_ns_[i] = clock::now_ns();
  --live_;
}

void CoreRun::deadline() {
  deadline_hit_ = true;
  for (auto& j : cj_.jobs) j->deadline_reached();
}

void CoreRun::stop() {
  stopped_ = true;
  for (auto& j : cj_.jobs) j->stop();
}

std::vector<JobResult> CoreRun::results() const {
  const double cpu = static_cast<double>(clock::thread_cpu_ns() - start_cpu_ns_);
  std::vector<JobResult> out(cj_.jobs.size());
  uint64_t thread_ios = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].stats = cj_.jobs[i]->stats();
    thread_ios += out[i].stats.ios;
  }
  for (size_t i = 0; i < out.size(); ++i) {
    JobResult& r = out[i];
    r.core = cj_.core;
    r.target = cj_.jobs[i]->config().target;
    r.elapsed_ns = end_ns_[i] - start_ns_;
    // A thread's CPU time is split among its jobs by their share of its I/Os.
    r.cpu_ns = thread_ios ? cpu * static_cast<double>(r.stats.ios) / static_cast<double>(thread_ios) : 0.0;
  }
  return out;
}

void CoreRun::teardown() {
  for (auto& j : cj_.jobs) j->teardown();
}

}  // namespace sluice::perf
