// App: starts the reactors, waits for a signal or stop(), shuts down in order.
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <utility>

#include <fmt/format.h>

#include "base/clock.h"
#include "base/log.h"
#include "thread/post.h"
#include "thread/reactor.h"
#include "thread/registry.h"
#include "thread/thread.h"

namespace sluice::thread {
namespace {

// The shutdown callbacks' progress, shared with every `done` handed out: a callback that
// finishes after the timeout, even after the App is gone, finds it abandoned and does nothing.
struct ShutdownState {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<ShutdownCallback> callbacks;  // in the order they run
  size_t next = 0;
  bool finished = false;
  bool abandoned = false;
  Reactor* first = nullptr;
};

void run_next_shutdown_callback(const std::shared_ptr<ShutdownState>& s) {
  ShutdownCallback callback;
  size_t index;
  {
    std::lock_guard lock(s->mu);
    if (s->abandoned) return;
    if (s->next == s->callbacks.size()) {
      s->finished = true;
      s->cv.notify_all();
      return;
    }
    index = s->next++;
    callback = std::move(s->callbacks[index]);
  }
  auto called = std::make_shared<std::atomic<bool>>(false);
  callback([s, index, called] {
    if (called->exchange(true)) {
      log::warn("shutdown callback {} reported done twice", index + 1);
      return;
    }
    // Under the lock, so that the App cannot abandon the shutdown and free the reactors
    // while this posts to the first one.
    std::lock_guard lock(s->mu);
    if (s->abandoned) {
      log::warn("shutdown callback {} finished after the shutdown timeout", index + 1);
      return;
    }
    // Posted, not called: the next callback runs on the first reactor, whatever thread this
    // is, and a chain of callbacks that finish at once does not grow the stack.
    post(*s->first, [s] { run_next_shutdown_callback(s); });
  });
}

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

const char* signal_name(uint32_t sig) {
  switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    default: return "a signal";
  }
}

uint64_t deadline_after(std::chrono::milliseconds timeout) {
  return clock::now_ns() + static_cast<uint64_t>(std::chrono::nanoseconds(timeout).count());
}

}  // namespace

struct App::Impl {
  AppOptions options;
  int stop_fd = -1;  // an eventfd: writing it is how stop() is safe in a signal handler
  Status stop_fd_error;

  std::mutex mu;  // guards callbacks and stop_reason
  std::vector<ShutdownCallback> callbacks;
  Status stop_reason;

  // Only the controlling thread (the one in start/run/shutdown) touches these.
  std::vector<std::unique_ptr<Reactor>> reactors;
  bool running = false;

  void drain_stop_fd() {
    uint64_t v;
    while (read(stop_fd, &v, sizeof(v)) > 0) {
    }
  }
  void wait_for_stop(int signal_fd);
  Status run_shutdown_callbacks();
  Status stop_reactors();
};

App::App(AppOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl_->stop_fd < 0) impl_->stop_fd_error = errno_status(errno, "eventfd for App::stop()");
}

App::~App() {
  if (impl_->running) {
    Status st = shutdown();
    if (!st.ok()) log::error("App destroyed while running; shutdown: {}", st.to_string());
  }
  if (impl_->stop_fd >= 0) close(impl_->stop_fd);
}

void App::stop() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t rc = write(impl_->stop_fd, &one, sizeof(one));
}

void App::stop(Status reason) {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stop_reason.ok()) impl_->stop_reason = std::move(reason);
  }
  stop();
}

void App::on_shutdown(ShutdownCallback callback) {
  std::lock_guard lock(impl_->mu);
  impl_->callbacks.push_back(std::move(callback));
}

Status App::start(Task start_fn) {
  Impl& m = *impl_;
  if (current_reactor() != nullptr)
    return Status(Errc::invalid_argument, "App::start() called from a reactor; call it from the main thread");
  if (m.running) return Status(Errc::busy, "App::start(): this App is already running");
  if (!m.stop_fd_error.ok()) return m.stop_fd_error;
  auto cores = parse_core_list(m.options.cores);
  if (!cores.ok()) return cores.status();
  if (m.options.message_ring_size == 0) return Status(Errc::invalid_argument, "AppOptions::message_ring_size is 0");

  std::vector<std::unique_ptr<Reactor>> reactors;
  std::vector<Reactor*> table;
  for (size_t i = 0; i < cores->size(); ++i) {
    ReactorOptions ro;
    ro.id = static_cast<uint32_t>(i);
    ro.core = (*cores)[i];
    ro.ring_size = m.options.message_ring_size;
    ro.idle_grace_us = static_cast<uint64_t>(m.options.idle_grace.count());
    ro.io_spin_us = m.options.io_spin == AppOptions::kIoSpinForever || m.options.io_spin.count() < 0
                        ? UINT64_MAX
                        : static_cast<uint64_t>(m.options.io_spin.count());
    auto r = Reactor::create(ro);
    if (!r.ok()) return r.status();
    table.push_back(r.value().get());
    reactors.push_back(std::move(r.value()));
  }
  // Before any thread starts, so that every reactor can name every other one.
  if (!registry::install(table)) return Status(Errc::busy, "another App is already running in this process");

  for (auto& r : reactors) {
    Status st = r->start();
    if (st.ok()) continue;
    for (auto& started : reactors) started->request_stop();
    bool joined = true;
    uint64_t deadline = deadline_after(m.options.shutdown_timeout);
    for (auto& started : reactors)
      if (!started->join(deadline)) {
        joined = false;
        (void)started.release();  // its thread may still run: leak rather than free under it
      }
    registry::uninstall(!joined);
    return st;
  }
  m.reactors = std::move(reactors);
  m.running = true;

  std::string core_text;
  for (int c : *cores) {
    if (!core_text.empty()) core_text += ',';
    core_text += std::to_string(c);
  }
  log::info("started {} reactor(s) on core(s) {}", cores->size(), core_text);

  // The first reactor's ring is empty, so this cannot fail.
  if (start_fn) return send_message(0, std::move(start_fn));
  return Status::Ok();
}

Status App::Impl::run_shutdown_callbacks() {
  auto s = std::make_shared<ShutdownState>();
  {
    std::lock_guard lock(mu);
    s->callbacks.assign(callbacks.rbegin(), callbacks.rend());
  }
  s->first = reactors.front().get();
  post(*s->first, [s] { run_next_shutdown_callback(s); });

  std::unique_lock lock(s->mu);
  bool finished = s->cv.wait_for(lock, options.shutdown_timeout, [&] { return s->finished; });
  s->abandoned = true;
  if (finished) return Status::Ok();
  auto msg = fmt::format("shutdown callback {} of {} did not finish within {} ms; stopping the reactors anyway",
                         s->next, s->callbacks.size(), options.shutdown_timeout.count());
  log::error("{}", msg);
  return Status(Errc::aborted, std::move(msg));
}

Status App::Impl::stop_reactors() {
  for (auto& r : reactors) r->request_stop();
  std::vector<std::string> problems;
  Errc code = Errc::ok;
  bool all_joined = true;
  const uint64_t deadline = deadline_after(options.shutdown_timeout);
  for (auto& r : reactors) {
    if (!r->join(deadline)) {
      all_joined = false;
      problems.push_back(fmt::format("reactor {} did not stop within {} ms", r->id(), options.shutdown_timeout.count()));
      log::error("{}", problems.back());
      code = Errc::aborted;
      (void)r.release();  // its thread may still run: leak rather than free under it
      continue;
    }
    if (r->leaked_channels() > 0) {
      problems.push_back(fmt::format("reactor {} (core {}) exited owning {} io channel(s)", r->id(), r->core(),
                                     r->leaked_channels()));
      if (code == Errc::ok) code = Errc::busy;
    }
  }
  registry::uninstall(!all_joined);
  reactors.clear();
  if (problems.empty()) return Status::Ok();
  std::string msg;
  for (auto& p : problems) {
    if (!msg.empty()) msg += "; ";
    msg += p;
  }
  return Status(code, std::move(msg));
}

Status App::shutdown() {
  Impl& m = *impl_;
  if (current_reactor() != nullptr)
    return Status(Errc::invalid_argument, "App::shutdown() called from a reactor; use App::stop()");
  if (!m.running) return Status::Ok();

  Status callbacks = m.run_shutdown_callbacks();
  Status reactors = m.stop_reactors();
  m.running = false;
  m.drain_stop_fd();
  Status reason;
  {
    std::lock_guard lock(m.mu);
    reason = std::exchange(m.stop_reason, Status::Ok());
  }
  log::info("stopped");
  if (!reason.ok()) return reason;
  if (!callbacks.ok() && !reactors.ok())
    return Status(callbacks.code(), callbacks.message() + "; " + reactors.message());
  return callbacks.ok() ? reactors : callbacks;
}

void App::Impl::wait_for_stop(int signal_fd) {
  pollfd fds[2] = {{signal_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
  for (;;) {
    int rc = poll(fds, 2, -1);
    if (rc < 0) {
      if (errno == EINTR) continue;
      log::error("waiting for a signal failed ({}); shutting down", std::strerror(errno));
      return;
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si;
      if (read(signal_fd, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
        log::notice("{} received, shutting down", signal_name(si.ssi_signo));
        return;
      }
    }
    if (fds[1].revents & POLLIN) {
      log::info("stop requested, shutting down");
      return;
    }
  }
}

Status App::run(Task start_fn) {
  if (current_reactor() != nullptr)
    return Status(Errc::invalid_argument, "App::run() called from a reactor; call it from the main thread");
  const sigset_t signals = stop_signals();
  sigset_t old;
  // Blocked before any reactor exists, so that the signals stay pending for the signalfd
  // instead of killing the process; the reactors block them too (Reactor::start).
  pthread_sigmask(SIG_BLOCK, &signals, &old);
  int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd < 0) {
    Status st = errno_status(errno, "signalfd for SIGINT/SIGTERM");
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return st;
  }

  Status st = start(std::move(start_fn));
  if (st.ok()) {
    impl_->wait_for_stop(signal_fd);
    st = shutdown();
  }

  // A second Ctrl-C during the shutdown was answered by it; unblocking must not let it kill
  // the process after the fact.
  signalfd_siginfo si;
  while (read(signal_fd, &si, sizeof(si)) > 0) log::info("{} during shutdown ignored", signal_name(si.ssi_signo));
  close(signal_fd);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return st;
}

}  // namespace sluice::thread
