// The listening side (nvmf_tcp.h): binds, accepts on one reactor, hands each connection to a
// reactor; on destruction closes every connection and waits for them.
#include <unistd.h>

#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "base/log.h"
#include "target/nvmf_tcp/connection.h"
#include "thread/thread.h"

namespace sluice::nvmf::tcp {

using detail::Shared;

struct Transport::Impl {
  std::shared_ptr<Shared> shared;
  std::unique_ptr<net::Listener> listener;
  net::ListenAddress address;
  thread::Poller* keep_alive = nullptr;  // on the target's home reactor
};

namespace {

constexpr auto kStopTimeout = std::chrono::milliseconds(5000);

Status run_on(uint32_t reactor, std::function<Status()> fn) {
  return thread::call_and_wait(reactor, std::move(fn), kStopTimeout);
}

// On the home reactor, every 100 ms: the controllers whose keep-alive timer ran out (each
// reported once) lose their queues' connections, on whatever reactor and transport they are;
// closing the admin queue ends the association.
thread::PollStatus check_keep_alive(Target* target) {
  const std::vector<ControllerInfo> expired = target->check_keep_alive(target->now_ms());
  for (const ControllerInfo& c : expired) {
    log::notice("nvmf-tcp: controller {} of {} (host {}): keep-alive timeout, closing its connections", c.cntlid,
                c.subnqn, c.hostnqn);
    for (uint32_t r = 0; r < thread::reactor_count(); ++r)
      (void)thread::send_message(r, [target, c] { detail::close_controller(target, c.subnqn, c.cntlid); });
  }
  return expired.empty() ? thread::PollStatus::idle : thread::PollStatus::busy;
}

constexpr uint64_t kKeepAlivePeriodUs = 100'000;

}  // namespace

Result<std::unique_ptr<Transport>> Transport::listen(Target& target, const net::ListenAddress& address,
                                                     TransportOptions options) {
  if (thread::current_reactor() != nullptr)
    return Status(Errc::invalid_argument,
                  "nvmf::tcp::Transport::listen waits for the reactors: call it from a control thread");
  if (thread::reactor_count() == 0) return Status(Errc::invalid_argument, "nvmf-tcp: no App is running");
  if (options.accept_reactor >= thread::reactor_count())
    return Status(Errc::invalid_argument, fmt::format("nvmf-tcp: no reactor {}", options.accept_reactor));
  if (options.max_h2c_data < nvme::tcp::kMinMaxH2cData || options.max_h2c_data % 4 != 0)
    return Status(Errc::invalid_argument,
                  fmt::format("nvmf-tcp: MAXH2CDATA {} is not a multiple of 4 of at least 4096", options.max_h2c_data));
  auto impl = std::make_shared<Impl>();
  impl->shared = std::make_shared<Shared>();
  impl->shared->target = &target;
  impl->shared->options = options;
  auto listener = net::Listener::bind(address);
  if (!listener.ok()) return listener.status();
  net::Listener* l = listener.value().get();
  std::weak_ptr<Shared> weak = impl->shared;
  Status st = run_on(options.accept_reactor, [l, weak] {
    return l->start([weak](int fd, std::string peer) {
      auto shared = weak.lock();
      if (!shared || shared->stopping.load()) {
        ::close(fd);  // the transport that accepted it has stopped
        return;
      }
      detail::start_connection(std::move(shared), fd, peer);
    });
  });
  if (!st.ok()) {
    if (st.code() == Errc::aborted) (void)listener.value().release();  // may still be watched
    return st;
  }
  impl->listener = std::move(listener.value());
  impl->address = l->bound();
  log::notice("nvmf-tcp: listening on {}", impl->address.to_string());
  std::unique_ptr<Transport> transport(new Transport(impl));
  Target* t = &target;
  st = run_on(target.options().home_reactor, [t, impl] {
    auto p = thread::register_poller([t] { return check_keep_alive(t); }, kKeepAlivePeriodUs, "nvmf-tcp keep-alive");
    if (p.ok()) impl->keep_alive = p.value();
    return p.status();
  });
  if (!st.ok()) return st;  // ~Transport stops the listener
  return transport;
}

Transport::~Transport() {
  Impl& t = *impl_;
  t.shared->stopping.store(true);
  net::Listener* l = t.listener.get();
  Status st = run_on(t.shared->options.accept_reactor, [l] {
    l->stop();
    return Status::Ok();
  });
  if (st.ok())
    t.listener.reset();
  else
    (void)t.listener.release();  // still watched: leak rather than free under the reactor
  if (t.keep_alive != nullptr) {
    thread::Poller* p = t.keep_alive;
    Status unregistered =
        run_on(t.shared->target->options().home_reactor, [p] { return thread::unregister_poller(p); });
    if (!unregistered.ok()) log::error("nvmf-tcp: removing the keep-alive poller: {}", unregistered.to_string());
  }
  const Shared* shared = t.shared.get();
  for (uint32_t r = 0; r < thread::reactor_count(); ++r) {
    Status closed = run_on(r, [shared] {
      detail::close_connections(shared);
      return Status::Ok();
    });
    if (!closed.ok()) log::error("nvmf-tcp: closing connections on reactor {}: {}", r, closed.to_string());
  }
  const auto deadline = std::chrono::steady_clock::now() + kStopTimeout;
  while (t.shared->live.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (t.shared->live.load() > 0)
    log::error("nvmf-tcp: {} connection(s) still closing after 5 s", t.shared->live.load());
  log::notice("nvmf-tcp: stopped listening on {}", t.address.to_string());
}

const net::ListenAddress& Transport::address() const { return impl_->address; }
uint64_t Transport::live_connections() const { return impl_->shared->live.load(); }

}  // namespace sluice::nvmf::tcp
