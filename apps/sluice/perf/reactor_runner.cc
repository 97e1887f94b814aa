// The reactor driver: an App with one reactor per core of the plan; each core's jobs run as
// one active poller, and the reactor polls the channels along with everything else it owns.
#include <latch>
#include <memory>

#include <fmt/format.h>

#include "perf/runner.h"
#include "thread/thread.h"

namespace sluice::perf {

namespace {

struct CoreCtx {
  explicit CoreCtx(CoreJobs& jobs) : run(jobs) {}
  CoreRun run;
  Status status;
  std::vector<JobResult> results;
  thread::Poller* poller = nullptr;
  std::latch* done = nullptr;
};

// The core's jobs, one turn per reactor iteration; when all are done, reports and leaves.
// Idle when the turn did nothing itself: the reactor counts the completions it reaps from the
// channels, and sleeps (AppOptions::io_spin) when those bring nothing either.
thread::PollStatus poll_core(void* arg) {
  auto* c = static_cast<CoreCtx*>(arg);
  if (c->run.turn<false>()) [[likely]]
    return c->run.progressed() ? thread::PollStatus::busy : thread::PollStatus::idle;
  c->results = c->run.results();
  c->run.teardown();
  (void)thread::unregister_poller(c->poller);
  c->done->count_down();
  return thread::PollStatus::busy;
}

// Runs fn(i) on reactor i for every core and waits for each to count `latch` down. A
// message that cannot be sent counts down for itself and leaves its error in the context.
template <typename Fn>
void on_every_reactor(std::vector<std::unique_ptr<CoreCtx>>& ctx, std::latch& latch, Fn fn) {
  for (size_t i = 0; i < ctx.size(); ++i) {
    Status st = thread::send_message(static_cast<uint32_t>(i), thread::Task([&ctx, &fn, i] { fn(*ctx[i]); }));
    if (!st.ok()) {
      ctx[i]->status = st;
      latch.count_down();
    }
  }
  latch.wait();
}

Status first_error(const std::vector<std::unique_ptr<CoreCtx>>& ctx) {
  for (const auto& c : ctx)
    if (!c->status.ok()) return c->status;
  return Status::Ok();
}

}  // namespace

Result<RunOutput> run_on_reactors(std::vector<CoreJobs>& plan, double seconds, PollPolicy poll) {
  thread::AppOptions app_options;
  switch (poll.mode) {
    case PollMode::spin: app_options.io_spin = thread::AppOptions::kIoSpinForever; break;
    case PollMode::adaptive: app_options.io_spin = std::chrono::microseconds(poll.spin_us); break;
    case PollMode::sleep: app_options.io_spin = std::chrono::microseconds(0); break;
  }
  app_options.cores.clear();
  for (const auto& cj : plan) app_options.cores += fmt::format("{}{}", app_options.cores.empty() ? "" : ",", cj.core);
  thread::App app(app_options);
  SLUICE_RETURN_IF_ERROR(app.start());
  (void)clock::ticks_per_second();  // calibrate before the clock starts

  std::vector<std::unique_ptr<CoreCtx>> ctx;
  for (auto& cj : plan) ctx.push_back(std::make_unique<CoreCtx>(cj));
  std::latch ready(static_cast<std::ptrdiff_t>(ctx.size()));
  std::latch done(static_cast<std::ptrdiff_t>(ctx.size()));
  for (auto& c : ctx) c->done = &done;

  on_every_reactor(ctx, ready, [&ready](CoreCtx& c) {
    c.status = c.run.setup();
    ready.count_down();
  });
  Status failed = first_error(ctx);
  if (!failed.ok()) {
    on_every_reactor(ctx, done, [&done](CoreCtx& c) {
      c.run.teardown();
      done.count_down();
    });
    (void)app.shutdown();
    return failed;
  }

  const uint64_t deadline = clock::ticks() + static_cast<uint64_t>(seconds * clock::ticks_per_second());
  on_every_reactor(ctx, done, [deadline, &done](CoreCtx& c) {
    c.run.start(deadline);
    auto poller = thread::register_poller(poll_core, &c, 0, "perf");
    if (poller.ok()) {
      c.poller = *poller;
      return;  // poll_core counts down when the jobs are done
    }
    c.status = poller.status();
    c.run.teardown();
    done.count_down();
  });
  Status shutdown = app.shutdown();
  if (failed = first_error(ctx); !failed.ok()) return failed;
  if (!shutdown.ok()) return shutdown;

  RunOutput out;
  for (auto& c : ctx)
    for (auto& r : c->results) out.results.push_back(std::move(r));
  out.interrupted = stop_requested();
  return out;
}

}  // namespace sluice::perf
