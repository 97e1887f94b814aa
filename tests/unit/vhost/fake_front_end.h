// The front end's side of a vhost-user socket for the tests: sends requests (with
// descriptors) the way QEMU does and reads the back end's replies, every wait bounded.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "base/unique_fd.h"
#include "fake_guest.h"
#include "target/vhost/inflight.h"
#include "target/vhost/message.h"

namespace sluice::vhost::testing {

class FakeFrontEnd {
 public:
  explicit FakeFrontEnd(int fd) : fd_(fd) {}
  int fd() const { return fd_.get(); }

  // Sends header + payload in one sendmsg, descriptors attached, as QEMU does.
  void send(Request r, const void* payload, size_t len, const std::vector<int>& fds = {}, uint32_t flags = kVersion) {
    uint8_t buf[kHeaderSize + kMaxPayload + 64];
    const uint32_t req = static_cast<uint32_t>(r), size = static_cast<uint32_t>(len);
    std::memcpy(buf, &req, 4);
    std::memcpy(buf + 4, &flags, 4);
    std::memcpy(buf + 8, &size, 4);
    if (len > 0) std::memcpy(buf + kHeaderSize, payload, len);
    iovec iov{buf, kHeaderSize + len};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 16)]{};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (!fds.empty()) {
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ASSERT_EQ(sendmsg(fd_.get(), &msg, MSG_NOSIGNAL), static_cast<ssize_t>(iov.iov_len));
  }
  void send_u64(Request r, uint64_t v, const std::vector<int>& fds = {}, uint32_t flags = kVersion) {
    send(r, &v, sizeof v, fds, flags);
  }
  void send_state(Request r, uint32_t index, uint32_t num, uint32_t flags = kVersion) {
    vhost_vring_state s{index, num};
    send(r, &s, sizeof s, {}, flags);
  }

  // The next reply, waiting at most 10 s; false on timeout or a closed socket.
  bool recv(Message* m, int* fd_out = nullptr) {
    MessageReader reader;
    for (int i = 0; i < 1000; ++i) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (poll(&p, 1, 10) < 0) return false;
      auto r = reader.read(fd_.get(), m);
      if (!r.ok()) return false;
      if (*r) {
        if (fd_out != nullptr) *fd_out = m->nfds > 0 ? m->fds[0].release() : -1;
        return true;
      }
    }
    return false;
  }
  uint64_t get_u64(Request r) {
    send(r, nullptr, 0);
    Message m;
    EXPECT_TRUE(recv(&m));
    EXPECT_EQ(m.request, static_cast<uint32_t>(r));
    EXPECT_NE(m.flags & kFlagReply, 0u);
    return m.u64();
  }
  // Expects a REPLY_ACK of success.
  void expect_ack() {
    Message m;
    ASSERT_TRUE(recv(&m));
    ASSERT_EQ(m.u64(), 0u) << request_name(m.request);
  }

  // What QEMU does before starting rings, each step acknowledged: every offered feature
  // (or `features`), REPLY_ACK, the memory table. Returns the features offered.
  uint64_t negotiate(FakeGuest& guest, uint64_t features = ~0ull) {
    const uint64_t offered = get_u64(Request::get_features);
    EXPECT_NE(offered & (1ull << kFeatureProtocolFeatures), 0u);
    (void)get_u64(Request::get_protocol_features);
    const uint32_t ack_flag = kVersion | kFlagNeedReply;
    send_u64(Request::set_protocol_features, 1ull << kProtocolReplyAck);
    send_u64(Request::set_features, offered & features, {}, ack_flag);
    expect_ack();
    MemTableWire t{};
    t.num_regions = 1;
    const RegionSpec r = guest.region();
    t.regions[0] = {r.guest_addr, r.size, r.user_addr, r.mmap_offset};
    UniqueFd mem = guest.dup_fd();
    send(Request::set_mem_table, &t, 8 + sizeof(MemRegionWire), {mem.get()}, ack_flag);
    expect_ack();
    return offered;
  }

  // Starts ring `index` of `num` entries at `rings`, with its call and kick eventfds.
  void start_queue(uint32_t index, uint16_t num, const RingAddrs& rings, int kick, int call, int inflight_fd = -1,
                   InflightWire inflight = {}, uint16_t base = 0) {
    const uint32_t ack_flag = kVersion | kFlagNeedReply;
    send_state(Request::set_vring_num, index, num, ack_flag);
    expect_ack();
    if (inflight_fd >= 0) {
      send(Request::set_inflight_fd, &inflight, sizeof inflight, {inflight_fd}, ack_flag);
      expect_ack();
    }
    send_state(Request::set_vring_base, index, base, ack_flag);
    expect_ack();
    vhost_vring_addr addr{index, 0, rings.desc, rings.used, rings.avail, 0};
    send(Request::set_vring_addr, &addr, sizeof addr, {}, ack_flag);
    expect_ack();
    send_u64(Request::set_vring_call, index, {call}, ack_flag);
    expect_ack();
    send_u64(Request::set_vring_kick, index, {kick}, ack_flag);
    expect_ack();
    send_state(Request::set_vring_enable, index, 1, ack_flag);
    expect_ack();
  }

  // What QEMU does to start a device's queue 0 on `guest`'s ring: negotiate(), then the
  // ring. With an inflight region to hand back (SET_INFLIGHT_FD) and a ring base, as after a
  // reconnect. Returns the features offered.
  uint64_t start_queue0(FakeGuest& guest, int kick, int call, int inflight_fd = -1, InflightWire inflight = {},
                        uint16_t base = 0) {
    const uint64_t offered = negotiate(guest);
    start_queue(0, guest.queue_size(), guest.rings(), kick, call, inflight_fd, inflight, base);
    return offered;
  }

  // True when the back end closed its end (reads EOF within the bound).
  bool closed_by_peer() {
    pollfd p{fd_.get(), POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) return false;
    char c;
    return ::recv(fd_.get(), &c, 1, MSG_DONTWAIT) == 0;
  }

 private:
  UniqueFd fd_;
};

}  // namespace sluice::vhost::testing
