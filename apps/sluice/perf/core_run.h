// One core's share of a run: starts its jobs, turns them until each is done (checking the
// deadline and Ctrl-C once per turn), and reports what they did. Whatever drives the core,
// a plain pinned thread or a reactor poller, calls every method on the core's thread.
#pragma once

#include <cstdint>
#include <vector>

#include "base/clock.h"
#include "perf/job.h"
#include "perf/report.h"
#include "perf/stop_signal.h"

namespace sluice::perf {

struct CoreJobs {
  int core = 0;
  std::vector<std::unique_ptr<Job>> jobs;
};

class CoreRun {
 public:
  explicit CoreRun(CoreJobs& jobs) : cj_(jobs), end_ns_(jobs.jobs.size(), 0) {}

  // Sets up every job (channels belong to the calling thread); the first failure wins.
  Status setup();
  void start(uint64_t deadline_ticks);
  // One pass over the jobs; false once all are done. PollChannels: poll each job's channel
  // here (a plain thread) rather than leave that to a reactor, which polls its channels right
  // after its pollers, so completions still see this turn's time.
  template <bool PollChannels>
  bool turn() {
    const uint64_t now = clock::ticks();  // the one TSC read of the turn (Job::set_turn_time)
    bool progressed = false;
    for (size_t i = 0; i < end_ns_.size(); ++i) {
      if (end_ns_[i] != 0) continue;
      Job& job = *cj_.jobs[i];
      job.set_turn_time(now);
      if constexpr (PollChannels) progressed |= job.poll(); else progressed |= job.service();
      if (job.done()) [[unlikely]] {
        finished(i);
        progressed = true;
      }
    }
    if (!deadline_hit_ && now >= deadline_ticks_) [[unlikely]] {
      deadline();
      progressed = true;
    }
    if (!stopped_ && stop_requested()) [[unlikely]] {
      stop();
      progressed = true;
    }
    turn_ticks_ = now;
    progressed_ = progressed;
    return live_ > 0;
  }
  // Whether the last turn did anything (reaped, resubmitted, finished a job, hit the
  // deadline); with PollChannels false, reaping is the reactor's and not counted here.
  bool progressed() const { return progressed_; }
  uint64_t turn_ticks() const { return turn_ticks_; }
  // After the last turn: the jobs' results, with elapsed time and this thread's CPU time.
  std::vector<JobResult> results() const;
  void teardown();

 private:
  void finished(size_t i);
  void deadline();
  void stop();

  CoreJobs& cj_;
  std::vector<uint64_t> end_ns_;  // when each job finished; 0 while it runs
  size_t live_ = 0;
  uint64_t deadline_ticks_ = 0;
  uint64_t start_ns_ = 0;
  uint64_t start_cpu_ns_ = 0;
  bool deadline_hit_ = false;
  bool stopped_ = false;
  bool progressed_ = false;
  uint64_t turn_ticks_ = 0;
};

}  // namespace sluice::perf
