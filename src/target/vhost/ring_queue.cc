// A started virtqueue on its reactor: start, poll, interrupts, stop (ring_queue.h).
#include "target/vhost/ring_queue.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include <fmt/format.h>

#include "base/clock.h"
#include "base/log.h"

namespace sluice::vhost {

Status RingQueue::start(const QueueContext& context, uint32_t on_reactor) {
  ctx = context;
  home = thread::reactor_id(thread::current_reactor());
  reactor = on_reactor;
  in_use_ = true;
  if (reactor == home) {
    Status st = run_start();
    if (!st.ok()) in_use_ = false;
    return st;
  }
  // Everything the queue reads was written before this message, which orders it.
  send_step(reactor, [](void* arg) {
    auto* q = static_cast<RingQueue*>(arg);
    if (Status st = q->run_start(); !st.ok())
      log::error("{}: queue {} cannot start on reactor {}: {}", q->log_name_, q->ctx.index, q->reactor, st.to_string());
  }, this);
  return Status::Ok();
}

Status RingQueue::run_start() {
  SLUICE_RETURN_IF_ERROR(acquire());
  recover_inflight();
  // A previous back end may have died polling, with the guest's kicks suppressed.
  (void)ctx.queue->enable_kicks();
  window_ = PollWindow(uint64_t{max_poll_spin_us()} * 1000);
  auto p = thread::register_poller(RingQueue::poll, this, 0, fmt::format("{}-q{}", log_name_, ctx.index));
  if (!p.ok()) {
    release();
    return p.status();
  }
  poller_ = p.value();
  if (ctx.kick_fd >= 0) {
    auto joined = join_kick_channel(this);
    if (joined.ok())
      kicks_ = joined.value();
    else
      log::warn("{}: queue {} polls without kicks: {}", log_name_, ctx.index, joined.status().to_string());
  }
  log::info("{}: queue {} started on reactor {} ({} entries)", log_name_, ctx.index, reactor, ctx.queue->size());
  return Status::Ok();
}

void RingQueue::recover_inflight() {
  if (!ctx.inflight.valid()) return;
  ctx.inflight.settle(ctx.queue->used_idx());
  for (uint32_t h = 0; h < ctx.queue->size(); ++h)
    if (ctx.inflight.is_inflight(static_cast<uint16_t>(h))) resubmit_.push_back(static_cast<uint16_t>(h));
  if (resubmit_.empty()) return;
  std::sort(resubmit_.begin(), resubmit_.end(),
            [this](uint16_t a, uint16_t b) { return ctx.inflight.counter(a) < ctx.inflight.counter(b); });
  ctx.queue->resume_after_inflight(static_cast<uint16_t>(resubmit_.size()));
  log::notice("{}: queue {} resubmits {} request(s) a previous back end left in flight", log_name_, ctx.index,
              resubmit_.size());
}

thread::PollStatus RingQueue::poll(void* arg) {
  auto* q = static_cast<RingQueue*>(arg);
  bool work = q->poll_extra();
  uint16_t head;
  // Bounded by the pool: a request is taken only when there is a slot for it.
  while (q->has_room() && q->resubmitted_ < q->resubmit_.size()) {
    q->take(q->resubmit_[q->resubmitted_++]);
    work = true;
  }
  bool popped = false;
  while (q->has_room() && q->resubmitted_ == q->resubmit_.size() && q->ctx.queue->pop(&head)) {
    q->take(head);
    popped = true;
  }
  if (popped) {
    // Kicks back on only before the reactor sleeps (ready_after_enabling_kicks).
    q->ctx.queue->suppress_kicks();
    q->window_.arrived(clock::now_ns());
  }
  if (popped || q->completed_) work = true;
  q->signal_if_needed();
  // A front end that never kicks (SET_VRING_KICK without a descriptor) relies on polling
  // alone: the reactor must not sleep while such a queue runs.
  if (q->kicks_ == nullptr) return thread::PollStatus::busy;
  return work ? thread::PollStatus::busy : thread::PollStatus::idle;
}

bool RingQueue::ready_after_enabling_kicks() {
  const bool available = ctx.queue->enable_kicks();
  // With the pool full, what waits in the ring is taken when a completion wakes the reactor.
  return has_room() && (available || resubmitted_ < resubmit_.size());
}

void RingQueue::take(uint16_t head) {
  ++in_flight;
  ctx.inflight.taken(head);
  start_request(head);
}

bool RingQueue::walk(uint16_t head, std::span<Segment> segs, Chain* chain, QueueCounters& counters) {
  const ChainError err = ctx.queue->walk(head, segs, chain);
  if (err == ChainError::none) return true;
  QueueCounters::bump(counters.bad_chains);
  if (counters.bad_chains.load(std::memory_order_relaxed) <= 16)
    log::warn("{}: queue {} head {}: {}", log_name_, ctx.index, head, chain_error_name(err));
  return false;
}

void RingQueue::return_used(uint16_t head, uint32_t written) {
  ctx.inflight.returning(head);
  ctx.queue->push_used(head, written);
  ctx.inflight.returned(head, ctx.queue->used_idx());
  completed_ = true;
  ++window_completions_;
  --in_flight;
  maybe_finish_stop();
}

bool RingQueue::interrupt_due() {
  const uint32_t delay_us = coalescing_ != nullptr ? coalescing_->delay_us.load(std::memory_order_relaxed) : 0;
  if (delay_us == 0) return true;
  const uint64_t threshold = coalescing_->threshold.load(std::memory_order_relaxed);
  const uint64_t now = clock::now_ns();
  // An interrupt held back waits out its delay: the rate was judged when it was held. Judged
  // again on every poll meanwhile, a 1 ms window without completions would release it early
  // and a queue whose completions come a few ms apart would never share an interrupt.
  if (held_since_ns_ != 0) return now - held_since_ns_ >= uint64_t{delay_us} * 1000;
  constexpr uint64_t kRateWindowNs = 1000000;  // the rate is measured over 1 ms windows
  if (now - window_start_ns_ >= kRateWindowNs) {
    above_threshold_ = window_completions_ * 1000000000ull / (now - window_start_ns_) > threshold;
    window_start_ns_ = now;
    window_completions_ = 0;
  }
  if (!above_threshold_) return true;
  held_since_ns_ = now;
  return false;
}

void RingQueue::signal_if_needed() {
  if (!completed_) return;
  if (!stopping && !interrupt_due()) return;  // held: the poller stays busy until it goes
  held_since_ns_ = 0;
  completed_ = false;
  const int call = *ctx.call_fd;
  if (ctx.queue->need_signal() && call >= 0) (void)eventfd_write(call, 1);
}

void RingQueue::stop(std::function<void()> done) {
  if (!in_use_ || stop_requested_) {
    done();
    return;
  }
  stop_requested_ = true;
  on_stopped_ = std::move(done);
  if (reactor == home) {
    begin_stop();
    return;
  }
  send_step(reactor, [](void* arg) { static_cast<RingQueue*>(arg)->begin_stop(); }, this);
}

void RingQueue::begin_stop() {
  stopping = true;
  if (poller_ != nullptr) (void)thread::unregister_poller(poller_);
  poller_ = nullptr;
  if (kicks_ != nullptr) leave_kick_channel(kicks_, this);
  kicks_ = nullptr;
  // Whoever serves the ring next (QEMU, or this back end restarted) expects kicks.
  (void)ctx.queue->enable_kicks();
  on_stop();
  if (in_flight == 0 && !finish_scheduled_) {
    finish_scheduled_ = true;
    finish_stop();  // not inside a completion: channels may go back now
    return;
  }
  maybe_finish_stop();
}

void RingQueue::maybe_finish_stop() {
  if (!stopping || in_flight != 0 || finish_scheduled_) return;
  finish_scheduled_ = true;
  // From a message: outside the completion callback this may run in, which must not put a
  // channel back.
  thread::destroy_later([](void* arg) { static_cast<RingQueue*>(arg)->finish_stop(); }, this);
}

void RingQueue::finish_stop() {
  if (finished_) return;
  finished_ = true;
  signal_if_needed();
  release();
  // The last touch of this queue on its reactor: on_stopped runs on the session's.
  auto report = [](void* arg) {
    auto* q = static_cast<RingQueue*>(arg);
    q->in_use_ = false;
    auto done = std::move(q->on_stopped_);
    q->on_stopped_ = nullptr;
    done();
  };
  if (reactor == home)
    report(this);
  else
    send_step(home, report, this);
}

BlkStats sum_counters(const QueueCounters* counters, uint32_t n) {
  BlkStats out;
  for (uint32_t i = 0; i < n; ++i) {
    const QueueCounters& c = counters[i];
    out.requests += c.requests.load(std::memory_order_relaxed);
    out.errors += c.errors.load(std::memory_order_relaxed);
    out.bad_chains += c.bad_chains.load(std::memory_order_relaxed);
    out.unaligned_requests += c.unaligned.load(std::memory_order_relaxed);
  }
  return out;
}

void send_step(uint32_t reactor, thread::MsgFn fn, void* arg) {
  if (Status st = thread::send_message_retrying(reactor, fn, arg); !st.ok())
    log::error("vhost: a step for reactor {} is lost: {}", reactor, st.to_string());
}

}  // namespace sluice::vhost
