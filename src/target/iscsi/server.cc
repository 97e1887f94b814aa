// The listening side (iscsi.h: Target::start, stop, portal groups): the portals' listeners
// on the accepting reactor, and the bounded teardown of every connection. The other
// configuration calls are in target_config.cc.
#include <unistd.h>

#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "base/log.h"
#include "target/iscsi/connection.h"

namespace sluice::iscsi {
namespace {

Status check_options(const GlobalOptions& o) {
  if (thread::reactor_count() == 0) return Status(Errc::invalid_argument, "iscsi: no App is running");
  if (o.accept_reactor >= thread::reactor_count())
    return Status(Errc::invalid_argument, fmt::format("iscsi: no reactor {}", o.accept_reactor));
  if (o.error_recovery_level != 0)
    return Status(Errc::not_supported,
                  fmt::format("iscsi: ErrorRecoveryLevel {}: only 0 is supported", o.error_recovery_level));
  if (o.max_connections_per_session != 1)
    return Status(Errc::not_supported, "iscsi: max_connections_per_session must be 1 (one connection per session)");
  if (o.max_sessions == 0) return Status(Errc::invalid_argument, "iscsi: max_sessions must be at least 1");
  if (o.default_queue_depth < 2 || o.max_burst_length < 512 || o.first_burst_length < 512 ||
      o.first_burst_length > o.max_burst_length || o.max_recv_data_segment_length < kMinMaxRecvDataSegmentLength ||
      o.max_recv_data_segment_length > kMaxDataSegmentLength)
    return Status(Errc::invalid_argument, "iscsi: queue depth, burst or data segment lengths out of range");
  if (o.default_time2wait > 3600 || o.default_time2retain > 3600)
    return Status(Errc::invalid_argument, "iscsi: DefaultTime2Wait and DefaultTime2Retain are 0..3600");
  return Status::Ok();
}

// On the accepting reactor (bounded): `fn` there.
Status on_acceptor(Target::State* s, std::function<Status()> fn) {
  return thread::call_and_wait(s->options.accept_reactor, std::move(fn), s->options.stop_timeout);
}

}  // namespace

Status detail::control_thread_only(const char* what) {
  if (thread::current_reactor() == nullptr) return Status::Ok();
  return Status(Errc::invalid_argument,
                fmt::format("iscsi::{} waits for the reactors: call it from a control thread", what));
}

Result<std::unique_ptr<Target>> Target::start(GlobalOptions options) {
  SLUICE_RETURN_IF_ERROR(detail::control_thread_only("Target::start"));
  SLUICE_RETURN_IF_ERROR(check_options(options));
  auto state = std::make_shared<State>();
  state->options = std::move(options);
  return std::unique_ptr<Target>(new Target(std::move(state)));
}

Target::~Target() {
  Status st = stop();
  if (!st.ok()) log::error("iscsi: {}", st.to_string());
}

Status Target::add_portal_group(uint16_t tag, std::vector<net::ListenAddress> portals) {
  SLUICE_RETURN_IF_ERROR(detail::control_thread_only("Target::add_portal_group"));
  State* s = state_.get();
  std::lock_guard lock(s->control);
  if (s->stopped.load()) return Status(Errc::aborted, "iscsi: the target is stopped");
  if (tag == 0) return Status(Errc::invalid_argument, "iscsi: portal group tag 0: tags are 1..65535");
  auto snap = s->snapshot();
  if (snap->portal_groups.contains(tag)) return Status(Errc::exists, fmt::format("iscsi: portal group {} exists", tag));
  if (portals.empty()) return Status(Errc::invalid_argument, fmt::format("iscsi: portal group {} has no portal", tag));
  // Bound here, so that an address in use fails the call; not yet watched, so dropping them
  // on an error leaves nothing behind.
  std::vector<std::unique_ptr<net::Listener>> ls;
  PortalGroupInfo info{tag, {}};
  for (const net::ListenAddress& a : portals) {
    if (a.kind != net::ListenAddress::Kind::tcp)
      return Status(Errc::invalid_argument, fmt::format("iscsi: portal {}: TCP only", a.to_string()));
    auto l = net::Listener::bind(a);
    if (!l.ok())
      return Status(l.status().code(), fmt::format("iscsi: portal group {}: {}", tag, l.status().to_string()));
    info.portals.push_back(l.value()->bound());
    ls.push_back(std::move(l.value()));
  }
  std::weak_ptr<State> weak = state_;
  std::vector<std::pair<net::Listener*, std::string>> raw;
  for (auto& l : ls) raw.emplace_back(l.get(), l->bound().to_string());
  Status st = on_acceptor(s, [raw, weak, tag] {
    for (auto& [l, portal] : raw) {
      SLUICE_RETURN_IF_ERROR(l->start([weak, tag, portal](int fd, std::string peer) {
        auto locked = weak.lock();
        if (!locked || locked->stopped.load()) {
          ::close(fd);  // the target that accepted it has stopped
          return;
        }
        detail::start_connection(std::move(locked), fd, peer, tag, portal);
      }));
    }
    return Status::Ok();
  });
  if (!st.ok()) {
    // Some may be watched, or be if the reactor answers late: stop them there before freeing.
    Status undo = on_acceptor(s, [raw] {
      for (auto& [l, portal] : raw) l->stop();
      return Status::Ok();
    });
    if (!undo.ok())
      for (auto& l : ls) (void)l.release();  // leaked rather than freed under the reactor
    return st;
  }
  auto next = std::make_shared<detail::Snapshot>(*snap);
  next->portal_groups[tag] = info;
  s->listeners[tag] = std::move(ls);
  s->publish(std::move(next));
  for (const auto& a : info.portals) log::notice("iscsi: portal group {} listening on {}", tag, a.to_string());
  return Status::Ok();
}

Status Target::delete_portal_group(uint16_t tag) {
  SLUICE_RETURN_IF_ERROR(detail::control_thread_only("Target::delete_portal_group"));
  State* s = state_.get();
  std::lock_guard lock(s->control);
  auto snap = s->snapshot();
  if (!snap->portal_groups.contains(tag)) return Status(Errc::not_found, fmt::format("iscsi: no portal group {}", tag));
  for (const auto& [name, node] : snap->nodes)
    for (const PgIgMap& m : node.config.pg_ig_maps)
      if (m.pg_tag == tag)
        return Status(Errc::busy, fmt::format("iscsi: portal group {} is mapped by target node '{}'", tag, name));
  auto next = std::make_shared<detail::Snapshot>(*snap);
  next->portal_groups.erase(tag);
  s->publish(std::move(next));
  std::vector<net::Listener*> raw;
  for (auto& l : s->listeners[tag]) raw.push_back(l.get());
  Status st = on_acceptor(s, [raw] {
    for (net::Listener* l : raw) l->stop();
    return Status::Ok();
  });
  if (!st.ok())
    for (auto& l : s->listeners[tag]) (void)l.release();  // still watched: leaked, not freed under it
  s->listeners.erase(tag);
  return st;
}

Status Target::stop() {
  SLUICE_RETURN_IF_ERROR(detail::control_thread_only("Target::stop"));
  State* s = state_.get();
  std::lock_guard lock(s->control);
  if (s->stopped.exchange(true)) return Status::Ok();
  std::vector<net::Listener*> ls;
  for (auto& [tag, group] : s->listeners)
    for (auto& l : group) ls.push_back(l.get());
  // The listeners are watched on their reactor, so they are stopped (and freed) there.
  Status st = on_acceptor(s, [ls] {
    for (net::Listener* l : ls) l->stop();
    return Status::Ok();
  });
  if (!st.ok())
    for (auto& [tag, group] : s->listeners)
      for (auto& l : group) (void)l.release();
  s->listeners.clear();
  for (uint32_t r = 0; r < thread::reactor_count(); ++r) {
    Status m = thread::send_message(r, [s] { detail::close_connections(s); });
    if (!m.ok() && st.ok()) st = m;
  }
  const auto deadline = std::chrono::steady_clock::now() + s->options.stop_timeout;
  while (s->live.load() > 0) {
    if (std::chrono::steady_clock::now() >= deadline)
      return Status(Errc::aborted, fmt::format("iscsi: {} connection(s) still closing after {} ms", s->live.load(),
                                               s->options.stop_timeout.count()));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return st;
}

uint64_t Target::live_connections() const { return state_->live.load(); }
const GlobalOptions& Target::options() const { return state_->options; }

}  // namespace sluice::iscsi
