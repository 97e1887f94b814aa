// The threading layer: reactors, pollers, messages and the application lifecycle.
//
// A reactor is one OS thread pinned to one core. Each loop iteration it runs the messages
// other threads sent it, its pollers, and polls the IoChannels it owns; with nothing to do
// for a grace period it sleeps on an eventfd, so an idle application costs ~0% CPU. Work
// crosses threads only by message; nothing on the data path takes a lock.
//
// An App owns the reactors: it starts one per core, runs a start function on the first,
// waits for SIGINT/SIGTERM or stop(), then shuts down in order and reports leaked channels.
//
// A thread that is not a reactor (a "foreign" thread, e.g. a RocksDB thread) still does I/O
// without one: it owns its channels and polls them itself (io_channel.h).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "base/status.h"
#include "thread/io_channel.h"
#include "thread/task.h"

namespace sluice::thread {

class Reactor;
struct Poller;

// ---- Reactors -----------------------------------------------------------------------------

// The reactor running the calling thread; nullptr on a foreign thread.
Reactor* current_reactor();
// Reactors are numbered 0..reactor_count()-1 in core-list order.
uint32_t reactor_id(const Reactor* reactor);
int reactor_core(const Reactor* reactor);
// Reactors of the running App (0 when none runs).
uint32_t reactor_count();

struct ReactorStats {
  uint64_t iterations = 0;       // loop iterations
  uint64_t busy_iterations = 0;  // iterations that found work
  uint64_t messages = 0;         // messages run
  uint64_t sleeps = 0;           // times the reactor blocked on its eventfd
  uint64_t io_sleeps = 0;        // of those, with I/O in flight (also waiting on its channels' wake fds)
  uint64_t wakeups = 0;          // eventfd writes by senders: at most one per sleep
};
Result<ReactorStats> reactor_stats(uint32_t reactor_id);

// ---- Messages -----------------------------------------------------------------------------

using MsgFn = void (*)(void* arg);

// Queues fn(arg) to run on reactor `reactor_id`, after the messages queued before it (per
// sender, delivery is FIFO). Any thread. Does not allocate and never blocks: a full ring is
// Errc::busy (retry later), a stopped reactor Errc::aborted, a bad id Errc::not_found.
Status send_message(uint32_t reactor_id, MsgFn fn, void* arg);
// Control-path convenience: a callable, possibly move-only. Allocates.
Status send_message(uint32_t reactor_id, Task task);
// A step that must not be lost (a completion, a queue's start or stop): as send_message, but a
// full ring is retried, from a poller when called on a reactor (the caller does not wait;
// allocates only then), for up to a second on another thread. Errc::busy only if that second
// ran out; Errc::aborted for a stopped reactor, Errc::not_found for a bad id. Messages that had
// to wait may run after later ones from the same sender.
Status send_message_retrying(uint32_t reactor_id, MsgFn fn, void* arg);
// On a reactor: runs destroy(obj) from a message to this reactor, once the callbacks now on
// the stack have returned; how an object that learns inside its own callback that it is done
// (a connection) frees itself. One message however many are queued; never dropped while the
// reactor runs (a full ring is retried).
void destroy_later(void (*destroy)(void* obj), void* obj);
// Control path, from a thread that is not a reactor: runs fn on reactor `reactor_id` and waits
// for its Status, at most `timeout`: Errc::aborted if it did not answer by then (fn may
// still run later, so what it touches must stay valid).
Status call_and_wait(uint32_t reactor_id, std::function<Status()> fn, std::chrono::milliseconds timeout);

// Runs fn(arg) on every reactor, one reactor after the other in id order (so fn may update
// state it is handed without locking), then done(done_arg) on the calling reactor; from a
// foreign thread, done runs on the last reactor (the highest id). Fails only if the first
// hop cannot be queued (ring full: Errc::busy, or no reactor running); later hops that meet a
// full ring retry from a poller and are never dropped while the reactors run.
Status for_each_reactor(MsgFn fn, void* arg, MsgFn done, void* done_arg);
Status for_each_reactor(std::function<void()> fn, Task done);

// ---- Pollers ------------------------------------------------------------------------------

enum class PollStatus : uint8_t { idle, busy };
using PollFn = PollStatus (*)(void* arg);

// Registers a poller on the calling reactor: run every loop iteration (period_us == 0) or
// about every period_us microseconds (a timed poller; the first run is one period from
// now). A poller says whether it found work: while any poller is busy the reactor does not
// sleep. Errc::invalid_argument on a foreign thread.
Result<Poller*> register_poller(PollFn fn, void* arg, uint64_t period_us = 0, std::string_view name = {});

namespace detail {
Result<Poller*> register_owned_poller(PollFn fn, void* arg, void (*destroy)(void*), uint64_t period_us,
                                      std::string_view name);
}  // namespace detail

// A callable form; the callable is allocated once here, never per iteration.
template <typename F>
  requires std::is_invocable_r_v<PollStatus, std::decay_t<F>&>
Result<Poller*> register_poller(F&& f, uint64_t period_us = 0, std::string_view name = {}) {
  using C = std::decay_t<F>;
  auto* c = new C(std::forward<F>(f));
  return detail::register_owned_poller([](void* p) -> PollStatus { return (*static_cast<C*>(p))(); }, c,
                                       [](void* p) { delete static_cast<C*>(p); }, period_us, name);
}

// Stops and frees a poller. Only on the reactor that registered it; a poller may unregister
// itself (or another) from its own callback.
Status unregister_poller(Poller* poller);

// ---- Cores --------------------------------------------------------------------------------

// Parses "0", "0-3", "0,2,5-7", "[0-1]" into core numbers, in the order given. Duplicates,
// reversed ranges and anything else malformed are Errc::invalid_argument.
Result<std::vector<int>> parse_core_list(std::string_view list);

// ---- Application --------------------------------------------------------------------------

struct AppOptions {
  std::string cores = "0";  // core list, see parse_core_list()
  // Bounds each shutdown phase: the shutdown callbacks, then the reactors' exit.
  std::chrono::milliseconds shutdown_timeout{10000};
  // How long an idle reactor spins before it sleeps.
  std::chrono::microseconds idle_grace{1000};
  // With I/O in flight and nothing else to do: how long the reactor keeps polling its
  // channels before it sleeps on their wake descriptors (IoChannel::wake_fd) and its
  // eventfd. Zero (the default) sleeps once an iteration finds nothing: a kernel path
  // (uring, aio) takes tens of microseconds, and on a small machine a spinning reactor takes
  // the CPU the kernel's workers need to complete the I/O. kIoSpinForever never sleeps while
  // I/O is in flight. A channel that cannot wake the reactor keeps it polling either way.
  std::chrono::microseconds io_spin{kDefaultIoSpin};
  static constexpr std::chrono::microseconds kDefaultIoSpin{0};
  static constexpr std::chrono::microseconds kIoSpinForever = std::chrono::microseconds::max();
  size_t message_ring_size = 4096;  // per reactor, rounded up to a power of two
};

// Called at shutdown with `done`, which it must call once, from any thread, when it has
// finished (typically after releasing its channels on every reactor).
using ShutdownCallback = std::function<void(std::function<void()> done)>;

// One App may run in a process at a time.
class App {
 public:
  explicit App(AppOptions options = {});
  ~App();  // shuts down if still running
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Blocks SIGINT and SIGTERM in the calling thread (call it from main() before creating
  // other threads, so that no other thread takes those signals), starts the reactors, runs
  // `start` on the first one, and waits for SIGINT, SIGTERM or stop(). Then shuts down as
  // shutdown() does. Returns the first error of: start-up, a Status given to stop(), shutdown.
  Status run(Task start);

  // The two halves of run() without the signal handling, for hosts with their own main
  // loop (and tests). shutdown() runs the shutdown callbacks on the first reactor, then
  // stops the reactors; it returns the Status given to stop() if any, else an error if a
  // phase timed out or a reactor exited still owning an IoChannel. Neither may be called
  // from a reactor.
  Status start(Task start = {});
  Status shutdown();

  // Makes run() begin the shutdown. Any thread; the form without a Status is also safe in
  // a signal handler. Before run() starts, it makes run() shut down right after starting.
  void stop();
  void stop(Status reason);

  // Shutdown callbacks run one at a time, the last registered first (as destructors do), on
  // the first reactor. Any thread, any time before shutdown starts.
  void on_shutdown(ShutdownCallback callback);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::thread
