// The listening side (iscsi.h: Target::start, stop): the nodes' SCSI devices, the portals'
// listeners on the accepting reactor, and the bounded teardown of every connection.
#include <unistd.h>

#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "base/log.h"
#include "target/iscsi/connection.h"

namespace sluice::iscsi {
namespace {

Status not_on_reactor(const char* what) {
  if (thread::current_reactor() == nullptr) return Status::Ok();
  return Status(Errc::invalid_argument,
                fmt::format("iscsi::{} waits for the reactors: call it from a control thread", what));
}

Status check_config(const TargetConfig& c) {
  if (thread::reactor_count() == 0) return Status(Errc::invalid_argument, "iscsi: no App is running");
  if (c.accept_reactor >= thread::reactor_count())
    return Status(Errc::invalid_argument, fmt::format("iscsi: no reactor {}", c.accept_reactor));
  if (c.portal_group.portals.empty()) return Status(Errc::invalid_argument, "iscsi: the portal group has no portal");
  if (c.queue_depth < 2 || c.max_burst_length < 512 || c.first_burst_length < 512 ||
      c.first_burst_length > c.max_burst_length || c.max_recv_data_segment_length < kMinMaxRecvDataSegmentLength)
    return Status(Errc::invalid_argument, "iscsi: queue depth or burst lengths out of range");
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    if (c.nodes[i].name.empty()) return Status(Errc::invalid_argument, "iscsi: a target node without a name");
    if (c.nodes[i].chap) SLUICE_RETURN_IF_ERROR(check_credentials(*c.nodes[i].chap));
    for (size_t j = 0; j < i; ++j)
      if (c.nodes[j].name == c.nodes[i].name)
        return Status(Errc::exists, fmt::format("iscsi: two target nodes named '{}'", c.nodes[i].name));
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Target>> Target::start(TargetConfig config) {
  SLUICE_RETURN_IF_ERROR(not_on_reactor("Target::start"));
  SLUICE_RETURN_IF_ERROR(check_config(config));
  auto state = std::make_shared<State>();
  state->config = std::move(config);
  const TargetConfig& cfg = state->config;
  for (const TargetNode& n : cfg.nodes) {
    auto dev = std::make_unique<scsi::Device>(scsi::DeviceOptions{.name = n.name});
    for (const auto& [lun, bdev] : n.luns) SLUICE_RETURN_IF_ERROR(dev->add_lun(lun, bdev, n.read_only));
    state->devices.push_back(std::move(dev));
  }
  for (const net::ListenAddress& a : cfg.portal_group.portals) {
    auto l = net::Listener::bind(a);
    if (!l.ok()) return l.status();
    state->bound.push_back(l.value()->bound());
    state->listeners.push_back(std::move(l.value()));
  }
  for (const TargetNode& n : cfg.nodes) {
    TargetRecord rec{n.name, {}};
    for (const net::ListenAddress& a : state->bound) rec.portals.push_back({a.to_string(), cfg.portal_group.tag});
    state->records.push_back(std::move(rec));
  }
  std::weak_ptr<State> weak = state;
  std::vector<net::Listener*> ls;
  for (auto& l : state->listeners) ls.push_back(l.get());
  Status st = thread::call_and_wait(
      cfg.accept_reactor,
      [ls, weak] {
        for (net::Listener* l : ls) {
          SLUICE_RETURN_IF_ERROR(l->start([weak](int fd, std::string peer) {
            auto s = weak.lock();
            if (!s || s->stopped.load()) {
              ::close(fd);  // the target that accepted it has stopped
              return;
            }
            detail::start_connection(std::move(s), fd, peer);
          }));
        }
        return Status::Ok();
      },
      cfg.stop_timeout);
  if (!st.ok()) {
    // They may be watched if the reactor answered late: leak them rather than free them under it.
    for (auto& l : state->listeners) (void)l.release();
    return st;
  }
  for (const auto& a : state->bound) log::notice("iscsi: listening on {}", a.to_string());
  return std::unique_ptr<Target>(new Target(std::move(state)));
}

Target::~Target() {
  Status st = stop();
  if (!st.ok()) log::error("iscsi: {}", st.to_string());
}

Status Target::stop() {
  SLUICE_RETURN_IF_ERROR(not_on_reactor("Target::stop"));
  State* s = state_.get();
  if (s->stopped.exchange(true)) return Status::Ok();
  std::vector<net::Listener*> ls;
  for (auto& l : s->listeners) ls.push_back(l.get());
  // The listeners are watched on their reactor, so they are stopped (and freed) there.
  Status st = thread::call_and_wait(
      s->config.accept_reactor,
      [ls] {
        for (net::Listener* l : ls) l->stop();
        return Status::Ok();
      },
      s->config.stop_timeout);
  if (st.ok())
    s->listeners.clear();
  else
    for (auto& l : s->listeners) (void)l.release();
  for (uint32_t r = 0; r < thread::reactor_count(); ++r) {
    Status m = thread::send_message(r, [s] { detail::close_connections(s); });
    if (!m.ok() && st.ok()) st = m;
  }
  const auto deadline = std::chrono::steady_clock::now() + s->config.stop_timeout;
  while (s->live.load() > 0) {
    if (std::chrono::steady_clock::now() >= deadline)
      return Status(Errc::aborted, fmt::format("iscsi: {} connection(s) still closing after {} ms", s->live.load(),
                                               s->config.stop_timeout.count()));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return st;
}

std::vector<net::ListenAddress> Target::addresses() const { return state_->bound; }
uint64_t Target::live_connections() const { return state_->live.load(); }

}  // namespace sluice::iscsi
