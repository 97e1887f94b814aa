// The vhost-user session's state machine, driven over a socketpair by a fake front end, with
// a device that records what the session asks of it.
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <functional>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "fake_front_end.h"
#include "fake_guest.h"
#include "target/vhost/session.h"
#include "target/vhost/virtio_ring.h"

namespace sluice::vhost {
namespace {

using testing::FakeFrontEnd;
using testing::FakeGuest;

class RecordingDevice final : public Device {
 public:
  uint64_t features() const override { return (1ull << 32) | (1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << 1); }
  void set_features(uint64_t f) override { features_set = f; }
  uint32_t num_queues() const override { return 2; }
  std::span<const uint8_t> config() const override { return cfg; }
  Status start_queue(const QueueContext& ctx) override {
    started.push_back(ctx);
    return Status::Ok();
  }
  void stop_queue(uint32_t index, std::function<void()> done) override {
    stopped.push_back(index);
    if (hold_stops)
      held.push_back(std::move(done));
    else
      done();
  }

  uint64_t features_set = 0;
  std::vector<uint8_t> cfg = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<QueueContext> started;
  std::vector<uint32_t> stopped;
  bool hold_stops = false;
  std::vector<std::function<void()>> held;
};

class SocketTransport final : public Session::Transport {
 public:
  explicit SocketTransport(int fd) : fd_(fd) {}
  Status send(Message& reply, int fd) override { return write_message(fd_, reply, fd); }
  void resume(Status st) override { resumed.push_back(std::move(st)); }
  std::vector<Status> resumed;

 private:
  int fd_;
};

class SessionTest : public ::testing::Test {
 public:
  SessionTest() {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    back_ = UniqueFd(sv[0]);
    front_ = std::make_unique<FakeFrontEnd>(sv[1]);
    transport_ = std::make_unique<SocketTransport>(back_.get());
    session_ = std::make_unique<Session>(device_, *transport_, "test");
  }

  // Reads the next message the front end sent and hands it to the session.
  Result<Session::Outcome> pump() {
    for (int i = 0; i < 100; ++i) {
      auto r = reader_.read(back_.get(), &msg_);
      if (!r.ok()) return r.status();
      if (*r) return session_->handle(msg_);
    }
    return Status(Errc::aborted, "no message arrived");
  }
  Result<Session::Outcome> pump_public() { return pump(); }
  void pump_ok() {
    auto r = pump();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }
  // Sets up ring `index` over the fake guest, up to (not including) the kick.
  void setup_ring(uint32_t index) {
    front_->send_state(Request::set_vring_num, index, guest_.queue_size());
    pump_ok();
    front_->send_state(Request::set_vring_base, index, 0);
    pump_ok();
    const RingAddrs a = guest_.rings();
    vhost_vring_addr addr{index, 0, a.desc, a.used, a.avail, 0};
    front_->send(Request::set_vring_addr, &addr, sizeof addr);
    pump_ok();
  }
  void send_mem_table() {
    MemTableWire t{};
    t.num_regions = 1;
    const RegionSpec r = guest_.region();
    t.regions[0] = {r.guest_addr, r.size, r.user_addr, r.mmap_offset};
    UniqueFd fd = guest_.dup_fd();
    front_->send(Request::set_mem_table, &t, 8 + sizeof(MemRegionWire), {fd.get()});
    pump_ok();
  }

  FakeGuest guest_{1 << 20, 16};
  RecordingDevice device_;
  UniqueFd back_;
  std::unique_ptr<FakeFrontEnd> front_;
  std::unique_ptr<SocketTransport> transport_;
  std::unique_ptr<Session> session_;
  MessageReader reader_;
  Message msg_;
};

// Sends a request that gets a reply, lets the session answer it, and reads the answer.
Message ask(SessionTest* t, FakeFrontEnd& front, Request r, const void* payload = nullptr, size_t len = 0) {
  front.send(r, payload, len);
  auto out = t->pump_public();
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  Message m;
  EXPECT_TRUE(front.recv(&m));
  EXPECT_EQ(m.request, static_cast<uint32_t>(r));
  EXPECT_EQ(m.flags, kVersion | kFlagReply);
  return m;
}

TEST_F(SessionTest, NegotiatesFeatures) {
  const uint64_t offered = ask(this, *front_, Request::get_features).u64();
  EXPECT_EQ(offered, device_.features() | (1ull << kFeatureProtocolFeatures));
  EXPECT_EQ(ask(this, *front_, Request::get_protocol_features).u64(), Session::kProtocolFeatures);
  EXPECT_EQ(ask(this, *front_, Request::get_queue_num).u64(), 2u);
  front_->send_u64(Request::set_features, offered | (1ull << 40));  // never offered
  EXPECT_EQ(pump().status().code(), Errc::invalid_argument);
  front_->send_u64(Request::set_features, offered);
  pump_ok();
  EXPECT_EQ(device_.features_set, device_.features());  // the protocol bit is the session's
  front_->send_u64(Request::set_protocol_features, 1ull << 20);
  EXPECT_EQ(pump().status().code(), Errc::invalid_argument);
}

TEST_F(SessionTest, WithoutProtocolFeaturesAKickStartsTheRing) {
  front_->send_u64(Request::set_features, 1ull << 32);
  pump_ok();
  send_mem_table();
  setup_ring(0);
  EXPECT_TRUE(device_.started.empty());
  front_->send_u64(Request::set_vring_kick, 0 | kVringNoFd);
  pump_ok();
  ASSERT_EQ(device_.started.size(), 1u);
  EXPECT_EQ(device_.started[0].index, 0u);
  EXPECT_TRUE(device_.started[0].queue->attached());
  EXPECT_EQ(device_.started[0].kick_fd, -1);  // polling: no kick descriptor
  EXPECT_TRUE(session_->ring_started(0));
}

TEST_F(SessionTest, WithProtocolFeaturesTheRingWaitsForEnable) {
  front_->send_u64(Request::set_features, (1ull << 32) | (1ull << kFeatureProtocolFeatures));
  pump_ok();
  send_mem_table();
  setup_ring(1);
  UniqueFd kick(eventfd(0, EFD_CLOEXEC)), call(eventfd(0, EFD_CLOEXEC));
  front_->send_u64(Request::set_vring_call, 1, {call.get()});
  pump_ok();
  front_->send_u64(Request::set_vring_kick, 1, {kick.get()});
  pump_ok();
  EXPECT_TRUE(device_.started.empty());
  front_->send_state(Request::set_vring_enable, 1, 1);
  pump_ok();
  ASSERT_EQ(device_.started.size(), 1u);
  EXPECT_GE(device_.started[0].kick_fd, 0);
  EXPECT_GE(*device_.started[0].call_fd, 0);
  // A new call or kick descriptor for a running ring: the device lets go of the old one
  // first (it may be signalling it from another reactor), then starts with the new one.
  front_->send_u64(Request::set_vring_call, 1 | kVringNoFd);
  pump_ok();
  EXPECT_EQ(device_.stopped, std::vector<uint32_t>{1});
  ASSERT_EQ(device_.started.size(), 2u);
  EXPECT_EQ(*device_.started[1].call_fd, -1);
  UniqueFd kick2(eventfd(0, EFD_CLOEXEC));
  front_->send_u64(Request::set_vring_kick, 1, {kick2.get()});
  pump_ok();
  EXPECT_EQ(device_.stopped, (std::vector<uint32_t>{1, 1}));
  ASSERT_EQ(device_.started.size(), 3u);
  EXPECT_GE(device_.started[2].kick_fd, 0);
  device_.stopped.clear();
  // Disabling stops it.
  front_->send_state(Request::set_vring_enable, 1, 0);
  pump_ok();
  EXPECT_EQ(device_.stopped, std::vector<uint32_t>{1});
  EXPECT_FALSE(session_->ring_started(1));
}

TEST_F(SessionTest, GetVringBaseStopsTheRingAndReportsWhereItStopped) {
  send_mem_table();
  setup_ring(0);
  front_->send_u64(Request::set_vring_kick, 0 | kVringNoFd);
  pump_ok();
  ASSERT_EQ(device_.started.size(), 1u);
  // The device takes two requests.
  const uint64_t buf = guest_.alloc(64);
  guest_.add_chain(0, {{buf, 64, true}});
  guest_.add_chain(1, {{buf, 64, true}});
  uint16_t h;
  ASSERT_TRUE(device_.started[0].queue->pop(&h));
  ASSERT_TRUE(device_.started[0].queue->pop(&h));
  vhost_vring_state s{0, 0};
  Message m = ask(this, *front_, Request::get_vring_base, &s, sizeof s);
  const auto out = m.as<vhost_vring_state>();
  EXPECT_EQ(out.index, 0u);
  EXPECT_EQ(out.num, 2u);
  EXPECT_EQ(device_.stopped, std::vector<uint32_t>{0});
  EXPECT_FALSE(session_->ring_started(0));
  // It starts again only with a new kick, from where it stopped.
  front_->send_state(Request::set_vring_base, 0, out.num);
  pump_ok();
  front_->send_u64(Request::set_vring_kick, 0 | kVringNoFd);
  pump_ok();
  ASSERT_EQ(device_.started.size(), 2u);
  EXPECT_EQ(device_.started[1].queue->last_avail(), 2);
}

TEST_F(SessionTest, GetVringBaseWaitsForRequestsInFlight) {
  send_mem_table();
  setup_ring(0);
  front_->send_u64(Request::set_vring_kick, 0 | kVringNoFd);
  pump_ok();
  device_.hold_stops = true;
  vhost_vring_state s{0, 0};
  front_->send(Request::get_vring_base, &s, sizeof s);
  auto r = pump();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Session::Outcome::wait);
  // Nothing more is handled meanwhile.
  front_->send(Request::get_queue_num, nullptr, 0);
  EXPECT_EQ(pump().status().code(), Errc::busy);
  EXPECT_TRUE(transport_->resumed.empty());
  ASSERT_EQ(device_.held.size(), 1u);
  device_.held[0]();  // the last request in flight came back
  ASSERT_EQ(transport_->resumed.size(), 1u);
  EXPECT_TRUE(transport_->resumed[0].ok());
  Message m;
  ASSERT_TRUE(front_->recv(&m));
  EXPECT_EQ(m.request, static_cast<uint32_t>(Request::get_vring_base));
}

TEST_F(SessionTest, ANewMemoryTableRestartsRunningRings) {
  send_mem_table();
  setup_ring(0);
  front_->send_u64(Request::set_vring_kick, 0 | kVringNoFd);
  pump_ok();
  const uint64_t buf = guest_.alloc(64);
  guest_.add_chain(0, {{buf, 64, true}});
  uint16_t h;
  ASSERT_TRUE(device_.started[0].queue->pop(&h));
  send_mem_table();
  EXPECT_EQ(device_.stopped, std::vector<uint32_t>{0});
  ASSERT_EQ(device_.started.size(), 2u);
  EXPECT_EQ(device_.started[1].queue->last_avail(), 1);  // resumed where it was
}

TEST_F(SessionTest, ReplyAckAnswersWhenAsked) {
  front_->send_u64(Request::set_protocol_features, 1ull << kProtocolReplyAck);
  pump_ok();
  front_->send_state(Request::set_vring_num, 0, 16, kVersion | kFlagNeedReply);
  pump_ok();
  Message m;
  ASSERT_TRUE(front_->recv(&m));
  EXPECT_EQ(m.request, static_cast<uint32_t>(Request::set_vring_num));
  EXPECT_EQ(m.u64(), 0u);
  // A refused SET_CONFIG says so without closing the connection.
  ConfigWire c{};
  c.size = 4;
  front_->send(Request::set_config, &c, kConfigHeaderSize + 4, {}, kVersion | kFlagNeedReply);
  pump_ok();
  ASSERT_TRUE(front_->recv(&m));
  EXPECT_EQ(m.u64(), 1u);
}

TEST_F(SessionTest, GetConfigReadsTheDevicesConfigSpace) {
  ConfigWire c{};
  c.offset = 2;
  c.size = 8;  // runs 2 bytes past the device's 8
  Message m = ask(this, *front_, Request::get_config, &c, kConfigHeaderSize + c.size);
  ASSERT_EQ(m.size, kConfigHeaderSize + 8);
  const auto got = m.as<ConfigWire>();
  const uint8_t want[8] = {3, 4, 5, 6, 7, 8, 0, 0};
  EXPECT_EQ(std::memcmp(got.payload, want, 8), 0);
}

TEST_F(SessionTest, InflightRegionIsMadeAndHandedBack) {
  InflightWire w{0, 0, 2, 16};
  front_->send(Request::get_inflight_fd, &w, sizeof w);
  pump_ok();
  Message m;
  int fd = -1;
  ASSERT_TRUE(front_->recv(&m, &fd));
  UniqueFd region(fd);
  ASSERT_TRUE(region.valid());
  const auto got = m.as<InflightWire>();
  EXPECT_EQ(got.mmap_size, 2 * InflightRegion::queue_stride(16));
  // A reconnecting front end hands it back; a short one is refused.
  InflightWire short_one = got;
  short_one.mmap_size = 64;
  front_->send(Request::set_inflight_fd, &short_one, sizeof short_one, {region.get()});
  EXPECT_EQ(pump().status().code(), Errc::invalid_argument);
  InflightWire misaligned = got;
  misaligned.mmap_offset = 8;  // the entries would be misaligned for their atomic accesses
  front_->send(Request::set_inflight_fd, &misaligned, sizeof misaligned, {region.get()});
  EXPECT_EQ(pump().status().code(), Errc::invalid_argument);
  front_->send(Request::set_inflight_fd, &got, sizeof got, {region.get()});
  pump_ok();
  send_mem_table();
  setup_ring(1);
  front_->send_u64(Request::set_vring_kick, 1 | kVringNoFd);
  pump_ok();
  ASSERT_EQ(device_.started.size(), 1u);
  EXPECT_TRUE(device_.started[0].inflight.valid());
}

TEST_F(SessionTest, RefusesMalformedMessages) {
  UniqueFd efd(eventfd(0, EFD_CLOEXEC));
  struct Case {
    const char* what;
    Request req;
    std::vector<uint8_t> payload;
    std::vector<int> fds;
    uint32_t flags;
  };
  auto u64 = [](uint64_t v) { return std::vector<uint8_t>(reinterpret_cast<uint8_t*>(&v), reinterpret_cast<uint8_t*>(&v) + 8); };
  auto state = [](uint32_t i, uint32_t n) {
    vhost_vring_state s{i, n};
    return std::vector<uint8_t>(reinterpret_cast<uint8_t*>(&s), reinterpret_cast<uint8_t*>(&s) + sizeof s);
  };
  const std::vector<Case> cases = {
      {"unknown request", static_cast<Request>(99), {}, {}, kVersion},
      {"log base (not offered)", Request::set_log_base, u64(0), {}, kVersion},
      {"version 2", Request::get_features, {}, {}, 2},
      {"short SET_FEATURES", Request::set_features, {1, 2, 3, 4}, {}, kVersion},
      {"ring beyond the device", Request::set_vring_num, state(2, 16), {}, kVersion},
      {"ring size not a power of two", Request::set_vring_num, state(0, 3), {}, kVersion},
      {"ring size too large", Request::set_vring_num, state(0, 65536), {}, kVersion},
      {"ring base beyond 16 bits", Request::set_vring_base, state(0, 70000), {}, kVersion},
      {"enable 2", Request::set_vring_enable, state(0, 2), {}, kVersion},
      {"kick without its descriptor", Request::set_vring_kick, u64(0), {}, kVersion},
      {"kick with unknown bits", Request::set_vring_kick, u64(1ull << 20 | kVringNoFd), {}, kVersion},
      {"no-fd kick with a descriptor", Request::set_vring_call, u64(kVringNoFd), {efd.get()}, kVersion},
      {"memory table of 0 regions", Request::set_mem_table, std::vector<uint8_t>(8 + 32, 0), {}, kVersion},
      {"memory table missing its descriptor", Request::set_mem_table, [] {
         std::vector<uint8_t> p(8 + 32, 0);
         p[0] = 1;
         return p;
       }(), {}, kVersion},
      {"config of 300 bytes", Request::get_config, [] {
         std::vector<uint8_t> p(12, 0);
         p[4] = 0x2c, p[5] = 1;
         return p;
       }(), {}, kVersion},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    front_->send(c.req, c.payload.data(), c.payload.size(), c.fds, c.flags);
    auto r = pump();
    EXPECT_FALSE(r.ok());
    if (!r.ok()) {
      EXPECT_FALSE(r.status().message().empty());
    }
  }
  // A payload beyond the bound fails the read itself.
  uint8_t big[kMaxPayload + 8] = {};
  front_->send(Request::set_features, big, sizeof big);
  EXPECT_EQ(pump().status().code(), Errc::invalid_argument);
}

TEST_F(SessionTest, ReadsAMessageThatArrivesInPieces) {
  // Header bytes one at a time, then the payload.
  const uint32_t hdr[3] = {static_cast<uint32_t>(Request::set_vring_num), kVersion, 8};
  const uint8_t* p = reinterpret_cast<const uint8_t*>(hdr);
  Message m;
  for (int i = 0; i < 12; ++i) {
    ASSERT_EQ(::send(front_->fd(), p + i, 1, 0), 1);
    auto r = reader_.read(back_.get(), &m);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(*r);
  }
  vhost_vring_state s{1, 32};
  ASSERT_EQ(::send(front_->fd(), &s, sizeof s, 0), 8);
  auto r = reader_.read(back_.get(), &m);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(*r);
  EXPECT_EQ(m.request, static_cast<uint32_t>(Request::set_vring_num));
  EXPECT_EQ(m.as<vhost_vring_state>().num, 32u);
  // The peer going away is Errc::aborted.
  front_ = nullptr;
  EXPECT_EQ(reader_.read(back_.get(), &m).status().code(), Errc::aborted);
}

}  // namespace
}  // namespace sluice::vhost
