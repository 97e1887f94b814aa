#include "thread/reactor.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>

#include <fmt/format.h>

#include "base/clock.h"
#include "base/log.h"
#include "thread/cpuset.h"
#include "thread/poller.h"

namespace sluice::thread {
namespace {

thread_local Reactor* t_current = nullptr;

// Bounds how long messages can hold off the pollers (and so I/O completions) in one pass.
constexpr uint32_t kMaxMessagesPerIteration = 128;

}  // namespace

Reactor* current_reactor() { return t_current; }
uint32_t reactor_id(const Reactor* reactor) { return reactor->id(); }
int reactor_core(const Reactor* reactor) { return reactor->core(); }

Result<std::unique_ptr<Reactor>> Reactor::create(const ReactorOptions& options) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return errno_status(errno, fmt::format("eventfd for reactor {}", options.id));
  return std::unique_ptr<Reactor>(new Reactor(options, fd));
}

Reactor::Reactor(const ReactorOptions& options, int event_fd)
    : id_(options.id), core_(options.core), event_fd_(event_fd), ring_(options.ring_size) {
  const double tps = clock::ticks_per_second();
  grace_ns_ = options.idle_grace_us * 1000;
  grace_ticks_ = static_cast<uint64_t>(static_cast<double>(options.idle_grace_us) * tps / 1e6);
  io_spin_ticks_ = options.io_spin_us == UINT64_MAX
                       ? UINT64_MAX
                       : static_cast<uint64_t>(static_cast<double>(options.io_spin_us) * tps / 1e6);
  backdate_ticks_ = std::max(grace_ticks_, io_spin_ticks_ == UINT64_MAX ? 0 : io_spin_ticks_);
  ns_per_tick_ = 1e9 / tps;
  sleep_fds_.reserve(8);
}

Reactor::~Reactor() {
  size_t dropped = 0;
  Message m;
  while (ring_.pop(m)) {
    if (m.fn == &detail::run_and_delete_task)
      delete static_cast<detail::TaskBase*>(m.arg);
    else
      ++dropped;
  }
  if (dropped > 0) log::warn("reactor {}: dropped {} message(s) sent after it stopped", id_, dropped);
  close(event_fd_);
}

Status Reactor::start() {
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  // The new thread inherits the mask, so there is no window in which it could take them.
  pthread_sigmask(SIG_BLOCK, &block, &old);
  Status st;
  try {
    thread_ = std::thread([this] { main(); });
  } catch (const std::system_error& e) {
    st = Status(Errc::busy, fmt::format("cannot start reactor {}: {}", id_, e.what()));
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return st;
}

void Reactor::request_stop() {
  stop_.store(true, std::memory_order_relaxed);
  wake();  // orders the store above before the sleeper's check, as for a message
}

bool Reactor::join(uint64_t deadline_ns) {
  if (!thread_.joinable()) return true;
  std::unique_lock lock(exit_mu_);
  while (!exited_) {
    uint64_t now = clock::now_ns();
    if (now >= deadline_ns) {
      lock.unlock();
      thread_.detach();
      return false;
    }
    exit_cv_.wait_for(lock, std::chrono::nanoseconds(deadline_ns - now));
  }
  lock.unlock();
  thread_.join();
  return true;
}

void Reactor::write_eventfd() {
  wakeups_.fetch_add(1, std::memory_order_relaxed);
  uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the reactor will wake anyway.
  ssize_t rc;
  do rc = write(event_fd_, &one, sizeof(one));
  while (rc < 0 && errno == EINTR);
}

ReactorStats Reactor::stats() const {
  ReactorStats s;
  s.iterations = iterations_.load(std::memory_order_relaxed);
  s.busy_iterations = busy_iterations_.load(std::memory_order_relaxed);
  s.messages = messages_.load(std::memory_order_relaxed);
  s.sleeps = sleeps_.load(std::memory_order_relaxed);
  s.io_sleeps = io_sleeps_.load(std::memory_order_relaxed);
  s.wakeups = wakeups_.load(std::memory_order_relaxed);
  return s;
}

void Reactor::main() {
  t_current = this;
  std::string name = fmt::format("reactor_{}", id_);
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  if (core_ >= 0) {
    Status st = pin_current_thread(core_);
    if (!st.ok()) log::warn("reactor {} runs unpinned: {}", id_, st.to_string());
  }
  log::debug("reactor {} started on core {}", id_, core_);

  while (!stop_.load(std::memory_order_relaxed)) {
    if (iterate())
      idle_since_ = 0;
    else
      maybe_sleep();
  }

  closed_.store(true, std::memory_order_release);
  drain_at_exit();
  free_pollers_at_exit();
  leaked_channels_ = thread_channel_count();
  if (leaked_channels_ > 0)
    log::error("reactor {} exits still owning {} io channel(s): a shutdown callback did not release them", id_,
               leaked_channels_);
  t_current = nullptr;
  log::debug("reactor {} stopped", id_);

  std::lock_guard lock(exit_mu_);
  exited_ = true;
  exit_cv_.notify_all();
}

// The hot loop: no allocation, no syscall, no lock. With nothing to do it costs a ring
// probe, the pollers' calls, a walk of the thread's channels and a TSC read when there are
// timed pollers.
bool Reactor::iterate() {
  bool busy = false;

  Message m;
  uint32_t n = 0;
  while (n < kMaxMessagesPerIteration && ring_.pop(m)) {
    m.fn(m.arg);
    ++n;
  }
  if (n > 0) {
    busy = true;
    bump(messages_, n);
  }

  // Indexes, not iterators: a poller may register another one and grow the vector.
  for (size_t i = 0; i < active_.size(); ++i) {
    Poller* p = active_[i];
    if (!p->removed && p->fn(p->arg) == PollStatus::busy) busy = true;
  }

  if (poll_thread_channels() > 0) busy = true;

  if (!timed_.empty()) {
    uint64_t now = clock::ticks();
    if (now >= next_timed_due_ && run_timed_pollers(now)) busy = true;
  }

  if (reap_pending_) reap_pollers();

  bump(iterations_);
  if (busy) bump(busy_iterations_);
  return busy;
}

bool Reactor::run_timed_pollers(uint64_t now) {
  bool busy = false;
  uint64_t next = UINT64_MAX;
  for (size_t i = 0; i < timed_.size(); ++i) {
    Poller* p = timed_[i];
    if (p->removed) continue;
    if (p->next_due <= now) {
      // From now, not from the missed deadline: a reactor that was held up runs a late
      // poller once rather than in a burst.
      p->next_due = now + p->period_ticks;
      if (p->fn(p->arg) == PollStatus::busy) busy = true;
    }
    if (!p->removed) next = std::min(next, p->next_due);
  }
  // Pollers registered by a callback above are already in timed_ and counted.
  next_timed_due_ = next;
  return busy;
}

void Reactor::reap_pollers() {
  reap_pending_ = false;
  for (auto* list : {&active_, &timed_}) {
    auto dead = std::stable_partition(list->begin(), list->end(), [](Poller* p) { return !p->removed; });
    std::vector<Poller*> doomed(dead, list->end());
    list->erase(dead, list->end());
    // Freeing may run a callable's destructor, which may touch the lists; do it last.
    for (Poller* p : doomed) delete p;
  }
}

void Reactor::maybe_sleep() {
  uint64_t now = clock::ticks();
  if (idle_since_ == 0) {
    idle_since_ = now;
    return;
  }
  const uint64_t idle = now - idle_since_;
  const ChannelsIdle channels = thread_channels_idle(grace_ns_);
  switch (channels.wait) {
    case ChannelsWait::idle:
      // Up to the idle grace, as long as the channels whose peers may send next find it worth it.
      if (idle < grace_ticks_ && idle < idle_spin_ticks(channels.spin_ns)) return;
      break;
    case ChannelsWait::can_sleep:
      // I/O in flight: poll for it a short while (a completion that comes soon is reaped
      // sooner than a wakeup could deliver it), then sleep until a channel signals it.
      if (io_spin_ticks_ == UINT64_MAX || idle < io_spin_ticks_) return;
      break;
    case ChannelsWait::must_poll:
      return;  // its completions arrive without a wakeup: keep polling for them
  }
  if (!timed_.empty() && next_timed_due_ <= now) return;
  if (!sleep_until_event(now, channels.wait == ChannelsWait::can_sleep)) return;  // a channel had a completion ready: poll it
  // Backdated so that a wakeup bringing no work (a timer whose poller stayed idle) sleeps
  // again at once instead of spinning a whole grace period.
  idle_since_ = clock::ticks() - backdate_ticks_;
  if (idle_since_ == 0) idle_since_ = 1;
}

uint64_t Reactor::idle_spin_ticks(uint64_t spin_ns) const {
  if (spin_ns >= grace_ns_) return grace_ticks_;
  return static_cast<uint64_t>(static_cast<double>(spin_ns) / ns_per_tick_);
}

bool Reactor::sleep_until_event(uint64_t now, bool io) {
  sleep_fds_.clear();
  sleep_fds_.push_back({event_fd_, POLLIN, 0});
  // Before the handshake: arming may find a completion ready, and then there is no sleep.
  if (!arm_thread_channels(sleep_fds_)) return false;

  sleeping_.exchange(true, std::memory_order_seq_cst);
  // From here a sender either sees us asleep and writes the eventfd, or its message (or
  // stop) is visible to this check. See wake().
  if (!ring_.empty() || stop_.load(std::memory_order_relaxed)) {
    sleeping_.exchange(false, std::memory_order_seq_cst);
    for (pollfd& p : sleep_fds_) p.revents = 0;
    disarm_thread_channels(sleep_fds_);
    return true;
  }

  timespec ts{};
  timespec* timeout = nullptr;
  if (!timed_.empty() && next_timed_due_ != UINT64_MAX) {
    auto ns = static_cast<uint64_t>(std::ceil(static_cast<double>(next_timed_due_ - now) * ns_per_tick_));
    ts.tv_sec = static_cast<time_t>(ns / 1000000000u);
    ts.tv_nsec = static_cast<long>(ns % 1000000000u);
    timeout = &ts;
  }
  bump(sleeps_);
  if (io) bump(io_sleeps_);
  int rc = ppoll(sleep_fds_.data(), sleep_fds_.size(), timeout, nullptr);
  sleeping_.exchange(false, std::memory_order_seq_cst);  // an RMW, not a store: see wake()
  if (rc <= 0)
    for (pollfd& p : sleep_fds_) p.revents = 0;  // timeout or EINTR: nobody was woken
  disarm_thread_channels(sleep_fds_);
  if (sleep_fds_[0].revents & POLLIN) {
    uint64_t count;
    // Resets the counter; a stale count from a racing sender costs one spurious wakeup.
    [[maybe_unused]] ssize_t r = read(event_fd_, &count, sizeof(count));
  }
  return true;
}

void Reactor::drain_at_exit() {
  // closed_ is set, so no new message can be accepted (bar a sender racing the flag, whose
  // message the destructor frees): the ring holds at most one ring's worth.
  Message m;
  uint64_t n = 0;
  while (ring_.pop(m)) {
    m.fn(m.arg);
    ++n;
  }
  bump(messages_, n);
}

void Reactor::free_pollers_at_exit() {
  size_t live = 0;
  std::string names;
  for (auto* list : {&active_, &timed_}) {
    for (Poller* p : *list) {
      if (p->removed) continue;
      ++live;
      if (p->name.empty()) continue;
      if (!names.empty()) names += ", ";
      names += p->name;
    }
  }
  if (live > 0)
    log::warn("reactor {} exits with {} poller(s) still registered{}", id_, live,
              names.empty() ? std::string() : fmt::format(" ({})", names));
  for (auto* list : {&active_, &timed_}) {
    std::vector<Poller*> all;
    all.swap(*list);
    for (Poller* p : all) delete p;
  }
}

Poller* Reactor::add_poller(PollFn fn, void* arg, void (*destroy)(void*), uint64_t period_us, std::string_view name) {
  auto* p = new Poller{fn, arg, destroy, 0, 0, false, std::string(name)};
  if (period_us == 0) {
    active_.push_back(p);
  } else {
    p->period_ticks =
        std::max<uint64_t>(1, static_cast<uint64_t>(static_cast<double>(period_us) * 1000.0 / ns_per_tick_));
    p->next_due = clock::ticks() + p->period_ticks;
    next_timed_due_ = std::min(next_timed_due_, p->next_due);
    timed_.push_back(p);
  }
  return p;
}

void Reactor::remove_poller(Poller* poller) {
  poller->removed = true;
  reap_pending_ = true;
}

bool Reactor::owns(const Poller* poller) const {
  return std::find(active_.begin(), active_.end(), poller) != active_.end() ||
         std::find(timed_.begin(), timed_.end(), poller) != timed_.end();
}

}  // namespace sluice::thread
