// The listening side (nbd.h: start_server, stop_server, server_address).
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

#include <unistd.h>

#include <fmt/format.h>

#include "base/log.h"
#include "target/nbd/exports.h"
#include "target/nbd/nbd.h"
#include "target/nbd/session.h"
#include "thread/thread.h"

namespace sluice::nbd {
namespace {

struct Server {
  std::mutex mu;  // control path: start, stop, address
  std::unique_ptr<net::Listener> listener;
  std::optional<net::ListenAddress> address;
  ServerOptions options;
  uint32_t accept_reactor = 0;
  // Bumped by every start and stop: an accept message from an earlier server finds it
  // changed and closes its descriptor instead of serving it.
  std::atomic<uint64_t> generation{0};
};

Server& server() {
  static Server* s = new Server();  // never destroyed: reactors may run during exit
  return *s;
}

Status not_on_reactor(const char* what) {
  if (thread::current_reactor() == nullptr) return Status::Ok();
  return Status(Errc::invalid_argument,
                fmt::format("nbd::{} waits for the reactors: call it from a control thread", what));
}

Status run_on(uint32_t reactor, std::function<Status()> fn) {
  return thread::call_and_wait(reactor, std::move(fn), stop_timeout());
}

}  // namespace

Status start_server(ServerOptions options) {
  SLUICE_RETURN_IF_ERROR(not_on_reactor("start_server"));
  if (thread::reactor_count() == 0) return Status(Errc::invalid_argument, "nbd::start_server: no App is running");
  if (options.accept_reactor >= thread::reactor_count())
    return Status(Errc::invalid_argument, fmt::format("no reactor {}", options.accept_reactor));
  if (options.max_requests == 0 || options.max_payload == 0)
    return Status(Errc::invalid_argument, "nbd: max_requests and max_payload must be positive");
  if (options.address.kind == net::ListenAddress::Kind::tcp && options.address.host.empty())
    options.address.host = "127.0.0.1";
  Server& s = server();
  std::lock_guard lock(s.mu);
  if (s.listener)
    return Status(Errc::exists, fmt::format("an NBD server already listens on {}", s.address->to_string()));
  set_session_limits({options.max_requests, options.max_payload});
  set_stop_timeout(options.stop_timeout);
  auto listener = net::Listener::bind(options.address);
  if (!listener.ok()) return listener.status();
  net::Listener* l = listener.value().get();
  const uint64_t gen = s.generation.fetch_add(1) + 1;
  Status st = run_on(options.accept_reactor, [l, gen] {
    return l->start([gen](int fd, std::string peer) {
      if (server().generation.load() != gen) {
        ::close(fd);  // the server that accepted it has stopped
        return;
      }
      start_session(fd, peer);
    });
  });
  if (!st.ok()) {
    // It may be watched if the reactor answered late: leak it rather than free it under it.
    if (st.code() == Errc::aborted) (void)listener.value().release();
    return st;
  }
  s.listener = std::move(listener.value());
  s.address = l->bound();
  s.accept_reactor = options.accept_reactor;
  s.options = options;
  s.options.address = *s.address;
  log::notice("nbd: listening on {}", s.address->to_string());
  return Status::Ok();
}

Status start_server(const net::ListenAddress& address) {
  ServerOptions o;
  o.address = address;
  return start_server(std::move(o));
}

Status stop_server() {
  SLUICE_RETURN_IF_ERROR(not_on_reactor("stop_server"));
  Server& s = server();
  std::lock_guard lock(s.mu);
  if (!s.listener) return Status::Ok();
  s.generation.fetch_add(1);
  net::Listener* l = s.listener.get();
  // The listener is watched on its reactor, so it is stopped (and freed) there.
  Status st = run_on(s.accept_reactor, [l] {
    l->stop();
    return Status::Ok();
  });
  if (st.ok())
    s.listener.reset();
  else
    (void)s.listener.release();  // still watched: leak rather than free under the reactor
  s.address.reset();
  SLUICE_RETURN_IF_ERROR(st);
  SLUICE_RETURN_IF_ERROR(disconnect_all(0));
  const auto deadline = std::chrono::steady_clock::now() + stop_timeout();
  while (live_sessions() > 0) {
    if (std::chrono::steady_clock::now() >= deadline)
      return Status(Errc::aborted, fmt::format("nbd: {} connection(s) still closing after {} ms", live_sessions(),
                                               stop_timeout().count()));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  log::notice("nbd: server stopped");
  return Status::Ok();
}

std::optional<ServerOptions> server_options() {
  Server& s = server();
  std::lock_guard lock(s.mu);
  if (!s.listener) return std::nullopt;
  return s.options;
}

std::optional<net::ListenAddress> server_address() {
  Server& s = server();
  std::lock_guard lock(s.mu);
  return s.address;
}

}  // namespace sluice::nbd
