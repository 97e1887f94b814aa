// The plain-thread driver: one pinned std::thread per core.
#include "perf/runner.h"

#include <pthread.h>

#include <atomic>
#include <latch>
#include <thread>

#include <fmt/format.h>

#include "base/clock.h"
#include "perf/stop_signal.h"
#include "thread/cpuset.h"

namespace sluice::perf {

namespace {

enum Go : int { kWait = 0, kRun = 1, kAbort = 2 };

struct Shared {
  explicit Shared(size_t threads) : ready(static_cast<std::ptrdiff_t>(threads)) {}
  std::latch ready;
  std::atomic<int> go{kWait};
  uint64_t deadline_ticks = 0;  // written before go turns kRun
};

Status pin_to(int core) {
  SLUICE_RETURN_IF_ERROR(thread::pin_current_thread(core));
  pthread_setname_np(pthread_self(), fmt::format("perf-core{}", core).substr(0, 15).c_str());
  return Status::Ok();
}

void core_thread(CoreJobs& cj, Shared& shared, PollPolicy poll, Status& setup, std::vector<JobResult>& out) {
  CoreRun run(cj);
  IdleWait idle(poll.mode, poll.spin_us);
  setup = pin_to(cj.core);
  if (setup.ok()) setup = run.setup();
  shared.ready.count_down();
  shared.go.wait(kWait, std::memory_order_acquire);
  if (shared.go.load(std::memory_order_acquire) == kRun) {
    run.start(shared.deadline_ticks);
    while (run.turn<true>()) idle.after_turn(run.progressed(), run.turn_ticks());
    out = run.results();
  }
  run.teardown();
}

}  // namespace

Result<RunOutput> run_on_threads(std::vector<CoreJobs>& plan, double seconds, PollPolicy poll) {
  Shared shared(plan.size());
  std::vector<Status> setup(plan.size());
  std::vector<std::vector<JobResult>> results(plan.size());
  (void)clock::ticks_per_second();  // calibrate before the clock starts

  std::vector<std::thread> threads;
  threads.reserve(plan.size());
  for (size_t i = 0; i < plan.size(); ++i)
    threads.emplace_back(core_thread, std::ref(plan[i]), std::ref(shared), poll, std::ref(setup[i]),
                         std::ref(results[i]));
  shared.ready.wait();

  Status failed;
  for (const auto& st : setup)
    if (!st.ok() && failed.ok()) failed = st;
  shared.deadline_ticks = clock::ticks() + static_cast<uint64_t>(seconds * clock::ticks_per_second());
  shared.go.store(failed.ok() ? kRun : kAbort, std::memory_order_release);
  shared.go.notify_all();
  for (auto& t : threads) t.join();
  if (!failed.ok()) return failed;

  RunOutput out;
  for (auto& per_core : results)
    for (auto& r : per_core) out.results.push_back(std::move(r));
  out.interrupted = stop_requested();
  return out;
}

}  // namespace sluice::perf
