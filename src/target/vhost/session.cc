// The vhost-user session's state machine (session.h).
#include "target/vhost/session.h"

#include <linux/virtio_config.h>
#include "target/vhost/virtio_ring.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "base/log.h"

namespace sluice::vhost {

Session::Session(Device& device, Transport& transport, std::string name)
    : device_(device), transport_(transport), name_(std::move(name)), alive_(std::make_shared<bool>(true)) {
  rings_.resize(std::min(device_.num_queues(), kMaxQueues));
}

Session::~Session() { *alive_ = false; }

Result<Session::Outcome> Session::handle(Message& m) {
  if (waiting_) return Status(Errc::busy, fmt::format("{}: a message arrived while one was still pending", name_));
  SLUICE_RETURN_IF_ERROR(check_message(m));
  log::debug("vhost {}: {}", name_, request_name(m.request));
  return dispatch(m);
}

Status Session::reply_u64(Message& m, uint64_t value) {
  m.set(&value, sizeof value);
  return transport_.send(m, -1);
}

Status Session::ack(uint32_t request, bool need_reply, bool ok) {
  if (!need_reply || (protocol_features_ & (1ull << kProtocolReplyAck)) == 0) return Status::Ok();
  Message reply;
  reply.request = request;
  const uint64_t value = ok ? 0 : 1;
  reply.set(&value, sizeof value);
  return transport_.send(reply, -1);
}

Result<Session::Ring*> Session::ring_of(uint32_t index) {
  if (index >= rings_.size())
    return Status(Errc::out_of_range, fmt::format("ring {} (the device has {})", index, rings_.size()));
  return &rings_[index];
}

bool Session::event_idx() const { return (features_ & (1ull << VIRTIO_RING_F_EVENT_IDX)) != 0; }

std::vector<uint32_t> Session::started_rings() const {
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < rings_.size(); ++i)
    if (rings_[i].started) out.push_back(i);
  return out;
}

Status Session::maybe_start(uint32_t index) {
  Ring& r = rings_[index];
  if (r.started || !r.kick_set || !r.enabled || !r.has_addrs || r.num == 0 || mem_.empty()) return Status::Ok();
  Status st = r.queue.attach(mem_, r.num, r.addrs, r.base, event_idx());
  if (!st.ok()) return Status(st.code(), fmt::format("ring {}: {}", index, st.message()));
  QueueContext ctx{index, &r.queue, &r.call_fd, r.kick.get(), inflight_.queue(index, r.num)};
  st = device_.start_queue(ctx);
  if (!st.ok()) {
    r.queue.detach();
    return st;
  }
  r.started = true;
  return Status::Ok();
}

Result<Session::Outcome> Session::stop_rings(std::vector<uint32_t> which, std::function<Status()> then) {
  struct Pending {
    size_t left;
    bool at_once = true;  // still inside stop_rings: the result goes to its caller
    Status result;
    std::function<Status()> then;
  };
  auto p = std::make_shared<Pending>(Pending{which.size() + 1, true, Status::Ok(), std::move(then)});
  auto alive = alive_;
  auto finish = [this, p, alive] {
    if (--p->left != 0 || !*alive) return;
    waiting_ = false;
    Status st = p->then();
    if (p->at_once)
      p->result = std::move(st);
    else
      transport_.resume(std::move(st));
  };
  waiting_ = true;
  for (uint32_t i : which) {
    rings_[i].started = false;
    ++device_stops_;
    device_.stop_queue(i, [this, i, finish, alive] {
      if (*alive) {
        rings_[i].base = rings_[i].queue.last_avail();
        rings_[i].queue.detach();
        --device_stops_;
      }
      finish();
      if (*alive && device_stops_ == 0) {
        auto waiters = std::move(idle_waiters_);
        idle_waiters_.clear();
        for (auto& w : waiters) w();
      }
    });
  }
  finish();  // our own share: then() never runs before every stop was asked for
  if (p->left == 0) {
    if (!p->result.ok()) return p->result;
    return Outcome::done;
  }
  p->at_once = false;
  return Outcome::wait;
}

void Session::stop_all(std::function<void()> done) {
  // Also waits for stops begun earlier (a GET_VRING_BASE still draining), so that nothing of
  // the device is in flight when done() runs.
  (void)stop_rings(started_rings(), [this, done = std::move(done)] {
    if (device_stops_ == 0)
      done();
    else
      idle_waiters_.push_back(done);
    return Status::Ok();
  });
}

}  // namespace sluice::vhost

namespace sluice::vhost {

Result<Session::Outcome> Session::dispatch(Message& m) {
  const auto req = static_cast<Request>(m.request);
  const bool need_reply = m.need_reply();
  // Requests that answer with their own reply; the rest answer REPLY_ACK when asked.
  switch (req) {
    case Request::get_features:
      SLUICE_RETURN_IF_ERROR(reply_u64(m, device_.features() | (1ull << kFeatureProtocolFeatures)));
      return Outcome::done;
    case Request::get_protocol_features:
      SLUICE_RETURN_IF_ERROR(reply_u64(m, kProtocolFeatures));
      return Outcome::done;
    case Request::get_queue_num:
      SLUICE_RETURN_IF_ERROR(reply_u64(m, rings_.size()));
      return Outcome::done;
    case Request::get_config:
      SLUICE_RETURN_IF_ERROR(get_config(m));
      return Outcome::done;
    case Request::get_inflight_fd:
      SLUICE_RETURN_IF_ERROR(get_inflight_fd(m));
      return Outcome::done;
    case Request::get_vring_base: {
      const auto s = m.as<vhost_vring_state>();
      auto r = ring_of(s.index);
      if (!r.ok()) return r.status();
      const uint32_t index = s.index;
      std::vector<uint32_t> which;
      if ((*r)->started) which.push_back(index);
      // The ring stops for good: the front end sends a new kick to start it again.
      return stop_rings(std::move(which), [this, index] {
        Ring& ring = rings_[index];
        ring.kick.reset();
        ring.kick_set = false;
        vhost_vring_state out{index, ring.base};
        Message reply;
        reply.request = static_cast<uint32_t>(Request::get_vring_base);
        reply.set(&out, sizeof out);
        return transport_.send(reply, -1);
      });
    }
    default: break;
  }

  Status st;
  switch (req) {
    case Request::set_features: {
      const uint64_t f = m.u64();
      const uint64_t offered = device_.features() | (1ull << kFeatureProtocolFeatures);
      if ((f & ~offered) != 0)
        return Status(Errc::invalid_argument, fmt::format("SET_FEATURES {:#x} has bits never offered ({:#x})", f, offered));
      if (!started_rings().empty()) return Status(Errc::invalid_argument, "SET_FEATURES while rings run");
      features_ = f;
      device_.set_features(f & ~(1ull << kFeatureProtocolFeatures));
      break;
    }
    case Request::set_protocol_features: {
      const uint64_t f = m.u64();
      if ((f & ~kProtocolFeatures) != 0)
        return Status(Errc::invalid_argument, fmt::format("SET_PROTOCOL_FEATURES {:#x} has bits never offered", f));
      protocol_features_ = f;
      break;
    }
    case Request::set_owner: break;
    case Request::reset_owner: {
      // Back to a fresh connection's state, once the rings have stopped.
      return stop_rings(started_rings(), [this, need_reply] {
        for (Ring& r : rings_) r = Ring{};
        mem_ = GuestMemory();
        inflight_ = InflightRegion();
        features_ = 0;
        return ack(static_cast<uint32_t>(Request::reset_owner), need_reply, true);
      });
    }
    case Request::set_mem_table: return set_mem_table(m);
    case Request::set_vring_num: {
      const auto s = m.as<vhost_vring_state>();
      auto r = ring_of(s.index);
      if (!r.ok()) return r.status();
      if (s.num == 0 || s.num > kMaxQueueSize || (s.num & (s.num - 1)) != 0)
        return Status(Errc::invalid_argument, fmt::format("ring {} size {} (a power of two up to {})", s.index, s.num, kMaxQueueSize));
      if ((*r)->started) return Status(Errc::invalid_argument, fmt::format("SET_VRING_NUM on running ring {}", s.index));
      (*r)->num = static_cast<uint16_t>(s.num);
      break;
    }
    case Request::set_vring_addr: {
      const auto a = m.as<vhost_vring_addr>();
      auto r = ring_of(a.index);
      if (!r.ok()) return r.status();
      if ((*r)->started) return Status(Errc::invalid_argument, fmt::format("SET_VRING_ADDR on running ring {}", a.index));
      (*r)->addrs = RingAddrs{a.desc_user_addr, a.avail_user_addr, a.used_user_addr};
      (*r)->has_addrs = true;
      break;
    }
    case Request::set_vring_base: {
      const auto s = m.as<vhost_vring_state>();
      auto r = ring_of(s.index);
      if (!r.ok()) return r.status();
      if (s.num > 0xffff) return Status(Errc::invalid_argument, fmt::format("ring {} base {} beyond 16 bits", s.index, s.num));
      if ((*r)->started) return Status(Errc::invalid_argument, fmt::format("SET_VRING_BASE on running ring {}", s.index));
      (*r)->base = static_cast<uint16_t>(s.num);
      break;
    }
    case Request::set_vring_kick:
    case Request::set_vring_call: return set_vring_kick_or_call(m);
    case Request::set_vring_err: st = set_vring_fd(m); break;
    case Request::set_vring_enable: {
      const auto s = m.as<vhost_vring_state>();
      auto r = ring_of(s.index);
      if (!r.ok()) return r.status();
      if (s.num > 1) return Status(Errc::invalid_argument, fmt::format("SET_VRING_ENABLE {} (0 or 1)", s.num));
      const uint32_t index = s.index;
      if (s.num == 0) {
        std::vector<uint32_t> which;
        if ((*r)->started) which.push_back(index);
        return stop_rings(std::move(which), [this, index, need_reply] {
          rings_[index].enabled = false;
          return ack(static_cast<uint32_t>(Request::set_vring_enable), need_reply, true);
        });
      }
      (*r)->enabled = true;
      st = maybe_start(index);
      break;
    }
    case Request::set_config:
      // Nothing in the config space is writable (no VIRTIO_BLK_F_CONFIG_WCE): refused, not fatal.
      log::info("vhost {}: SET_CONFIG refused (no writable field)", name_);
      SLUICE_RETURN_IF_ERROR(ack(m.request, need_reply, false));
      return Outcome::done;
    case Request::set_inflight_fd: st = set_inflight_fd(m); break;
    default: return Status(Errc::not_supported, fmt::format("{} is not handled", request_name(m.request)));
  }
  if (!st.ok()) return st;
  SLUICE_RETURN_IF_ERROR(ack(m.request, need_reply, true));
  return Outcome::done;
}

Result<Session::Ring*> Session::vring_fd_ring(const Message& m) {
  const uint64_t v = m.u64();
  if ((v & ~(kVringIndexMask | kVringNoFd)) != 0)
    return Status(Errc::invalid_argument, fmt::format("{} with unknown bits {:#x}", request_name(m.request), v));
  return ring_of(static_cast<uint32_t>(v & kVringIndexMask));
}

Status Session::set_vring_fd(Message& m) {
  auto r = vring_fd_ring(m);
  if (!r.ok()) return r.status();
  (*r)->err = (m.u64() & kVringNoFd) != 0 ? UniqueFd() : std::move(m.fds[0]);
  return Status::Ok();
}

Result<Session::Outcome> Session::set_vring_kick_or_call(Message& m) {
  auto r = vring_fd_ring(m);
  if (!r.ok()) return r.status();
  const auto index = static_cast<uint32_t>(*r - rings_.data());
  auto fd = std::make_shared<UniqueFd>((m.u64() & kVringNoFd) != 0 ? UniqueFd() : std::move(m.fds[0]));
  const uint32_t request = m.request;
  const bool need_reply = m.need_reply();
  // A running ring's device may be watching the old kick descriptor or signalling the old
  // call descriptor from another reactor (QEMU changes the call one when the guest masks the
  // queue's vector): the ring stops before the old one closes, and starts with the new one.
  std::vector<uint32_t> which;
  if ((*r)->started) which.push_back(index);
  return stop_rings(std::move(which), [this, index, fd, request, need_reply] {
    Ring& ring = rings_[index];
    if (request == static_cast<uint32_t>(Request::set_vring_call)) {
      ring.call = std::move(*fd);
      ring.call_fd = ring.call.get();
    } else {
      // SET_VRING_KICK starts the ring (vhost-user.rst, "Ring states"); without protocol
      // features it also enables it.
      ring.kick = std::move(*fd);
      ring.kick_set = true;
      if ((features_ & (1ull << kFeatureProtocolFeatures)) == 0) ring.enabled = true;
    }
    SLUICE_RETURN_IF_ERROR(maybe_start(index));
    return ack(request, need_reply, true);
  });
}

Result<Session::Outcome> Session::set_mem_table(Message& m) {
  const MemTableWire t = m.as<MemTableWire>();
  RegionSpec specs[kMaxMemRegions];
  for (uint32_t i = 0; i < t.num_regions; ++i)
    specs[i] = RegionSpec{t.regions[i].guest_addr, t.regions[i].size, t.regions[i].user_addr, t.regions[i].mmap_offset};
  auto mapped = GuestMemory::map({specs, t.num_regions}, {m.fds, t.num_regions});
  if (!mapped.ok()) return Status(mapped.status().code(), fmt::format("SET_MEM_TABLE: {}", mapped.status().message()));
  // The running rings point into the old table: stop them, swap, start them again.
  auto table = std::make_shared<GuestMemory>(std::move(mapped.value()));
  const std::vector<uint32_t> running = started_rings();
  const bool need_reply = m.need_reply();
  return stop_rings(running, [this, table, running, need_reply] {
    mem_ = std::move(*table);
    for (uint32_t i : running) SLUICE_RETURN_IF_ERROR(maybe_start(i));
    return ack(static_cast<uint32_t>(Request::set_mem_table), need_reply, true);
  });
}

Status Session::get_config(Message& m) {
  ConfigWire c = m.as<ConfigWire>();
  const std::span<const uint8_t> cfg = device_.config();
  // Bytes past the device's config space read as zero.
  for (uint32_t i = 0; i < c.size; ++i) {
    const uint64_t at = uint64_t{c.offset} + i;
    c.payload[i] = at < cfg.size() ? cfg[at] : 0;
  }
  m.set(&c, kConfigHeaderSize + c.size);
  return transport_.send(m, -1);
}

Status Session::get_inflight_fd(Message& m) {
  InflightWire w = m.as<InflightWire>();
  if (w.num_queues > rings_.size() || w.queue_size > kMaxQueueSize)
    return Status(Errc::invalid_argument,
                  fmt::format("GET_INFLIGHT_FD for {} queues of {} (at most {} of {})", w.num_queues, w.queue_size, rings_.size(), kMaxQueueSize));
  if (!started_rings().empty()) return Status(Errc::invalid_argument, "GET_INFLIGHT_FD while rings run");
  auto region = InflightRegion::create(w.num_queues, w.queue_size);
  if (!region.ok()) return region.status();
  inflight_ = std::move(region.value());
  w.mmap_size = inflight_.size();
  w.mmap_offset = 0;
  m.set(&w, sizeof w);
  return transport_.send(m, inflight_.fd());
}

Status Session::set_inflight_fd(Message& m) {
  const InflightWire w = m.as<InflightWire>();
  if (w.num_queues > rings_.size() || w.queue_size > kMaxQueueSize)
    return Status(Errc::invalid_argument, fmt::format("SET_INFLIGHT_FD for {} queues of {}", w.num_queues, w.queue_size));
  if (!started_rings().empty()) return Status(Errc::invalid_argument, "SET_INFLIGHT_FD while rings run");
  auto region = InflightRegion::map(std::move(m.fds[0]), w.mmap_size, w.mmap_offset, w.num_queues, w.queue_size);
  if (!region.ok()) return Status(region.status().code(), fmt::format("SET_INFLIGHT_FD: {}", region.status().message()));
  inflight_ = std::move(region.value());
  return Status::Ok();
}

}  // namespace sluice::vhost
