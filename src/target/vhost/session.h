// One vhost-user connection's state machine (QEMU's docs/interop/vhost-user.rst): feature
// and protocol-feature negotiation, the memory table, ring setup and the rings' life
// (stopped, started, enabled), config space and the inflight region, REPLY_ACK.
//
// The session is pure: it gets whole, read messages from its transport (the socket side,
// server.cc; a fuzzer or test directly) and answers through it. A malformed or unsupported
// message is an error Status that names it: the transport closes the connection and logs
// the reason. Nothing a front end sends makes it read or write outside the memory the
// front end shared.
//
// Stopping a ring (GET_VRING_BASE, SET_VRING_ENABLE 0, a new memory table) may have to wait
// for the device's requests in flight: handle() then returns Outcome::wait, the transport
// reads nothing more, and the session calls Transport::resume() once the message is done.
// One thread: the reactor that owns the connection.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/unique_fd.h"
#include "target/vhost/device.h"
#include "target/vhost/guest_memory.h"
#include "target/vhost/inflight.h"
#include "target/vhost/message.h"
#include "target/vhost/virtqueue.h"

namespace sluice::vhost {

class Session {
 public:
  class Transport {
   public:
    virtual ~Transport() = default;
    virtual Status send(Message& reply, int fd) = 0;
    // A message that returned Outcome::wait is done: read the next one if `st` is ok, else
    // close the connection (st says why).
    virtual void resume(Status st) = 0;
  };
  enum class Outcome : uint8_t { done, wait };

  // The protocol features offered.
  static constexpr uint64_t kProtocolFeatures = (1ull << kProtocolMq) | (1ull << kProtocolReplyAck) |
                                                (1ull << kProtocolConfig) | (1ull << kProtocolInflightShmfd);
  // More queues than this are never offered, whatever the device says.
  static constexpr uint32_t kMaxQueues = 64;

  Session(Device& device, Transport& transport, std::string name);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // One whole message. An error means: close the connection.
  Result<Outcome> handle(Message& m);
  // Stops every started ring (the connection is going); done() runs once all are drained,
  // those stopped earlier included.
  void stop_all(std::function<void()> done);

  const std::string& name() const { return name_; }
  uint64_t acked_features() const { return features_; }
  bool ring_started(uint32_t index) const { return index < rings_.size() && rings_[index].started; }

 private:
  struct Ring {
    uint16_t num = 0;
    RingAddrs addrs;
    bool has_addrs = false;
    uint16_t base = 0;
    UniqueFd kick, call, err;
    int call_fd = -1;  // what the device reads; mirrors `call`
    bool kick_set = false;
    bool enabled = false;
    bool started = false;
    SplitQueue queue;
  };

  Result<Outcome> dispatch(Message& m);
  Status reply_u64(Message& m, uint64_t value);
  Result<Ring*> ring_of(uint32_t index);
  Result<Outcome> set_mem_table(Message& m);
  Result<Ring*> vring_fd_ring(const Message& m);
  Status set_vring_fd(Message& m);  // ERR
  Result<Outcome> set_vring_kick_or_call(Message& m);
  Status get_config(Message& m);
  Status get_inflight_fd(Message& m);
  Status set_inflight_fd(Message& m);

  // Starts ring `index` if everything it needs is there.
  Status maybe_start(uint32_t index);
  // Stops the rings in `which` (started ones only), then runs then(): at once (Outcome::done,
  // or then()'s error) or later (Outcome::wait; then()'s Status goes to resume()).
  Result<Outcome> stop_rings(std::vector<uint32_t> which, std::function<Status()> then);
  std::vector<uint32_t> started_rings() const;
  bool event_idx() const;
  // The REPLY_ACK answer for a message that gets no other reply.
  Status ack(uint32_t request, bool need_reply, bool ok);

  Device& device_;
  Transport& transport_;
  std::string name_;
  uint64_t features_ = 0;
  uint64_t protocol_features_ = 0;
  GuestMemory mem_;
  InflightRegion inflight_;
  std::vector<Ring> rings_;
  bool waiting_ = false;
  uint32_t device_stops_ = 0;  // stop_queue() calls whose done() has not run yet
  std::vector<std::function<void()>> idle_waiters_;  // stop_all()s waiting for them
  // Shared with the continuations of a pending stop: they check it before touching *this.
  std::shared_ptr<bool> alive_;
};

}  // namespace sluice::vhost
