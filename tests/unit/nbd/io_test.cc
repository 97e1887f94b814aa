// NBD transmission: bytes written through the server read back, over a Unix socket and TCP,
// with simple and structured replies; FLUSH, TRIM, WRITE_ZEROES, FUA and BLOCK_STATUS.
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "env/env.h"
#include "nbd_test_support.h"

namespace sluice::nbd::testing {
namespace {

std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

void round_trip(Client& c) {
  ASSERT_EQ(c.size, 16u << 20);
  EXPECT_TRUE(c.tx_flags & p::kTxHasFlags);
  EXPECT_TRUE(c.tx_flags & p::kTxSendFlush);
  EXPECT_TRUE(c.tx_flags & p::kTxSendFua);
  EXPECT_TRUE(c.tx_flags & p::kTxCanMultiConn);
  EXPECT_FALSE(c.tx_flags & p::kTxReadOnly);

  auto data = pattern(1 << 20, 7);
  ASSERT_EQ(c.io(p::kCmdWrite, 4096, 1 << 20, data.data()), 0u);
  std::vector<uint8_t> back(1 << 20);
  ASSERT_EQ(c.io(p::kCmdRead, 4096, 1 << 20, back.data()), 0u);
  EXPECT_EQ(back, data);
  EXPECT_EQ(c.io(p::kCmdFlush, 0, 0), 0u);

  auto small = pattern(512, 9);
  ASSERT_EQ(c.io(p::kCmdWrite, 0, 512, small.data(), p::kCmdFlagFua), 0u);
  std::vector<uint8_t> one(512);
  ASSERT_EQ(c.io(p::kCmdRead, 0, 512, one.data()), 0u);
  EXPECT_EQ(one, small);

  ASSERT_EQ(c.io(p::kCmdTrim, 4096, 8192), 0u);
  ASSERT_EQ(c.io(p::kCmdWriteZeroes, 4096 + 8192, 4096, nullptr, p::kCmdFlagNoHole | p::kCmdFlagFastZero), 0u);
  ASSERT_EQ(c.io(p::kCmdRead, 4096, 1 << 20, back.data()), 0u);
  EXPECT_EQ(std::vector<uint8_t>(back.begin(), back.begin() + 12288), std::vector<uint8_t>(12288, 0));
  EXPECT_TRUE(std::equal(back.begin() + 12288, back.end(), data.begin() + 12288));

  // The last block of the device.
  ASSERT_EQ(c.io(p::kCmdWrite, (16u << 20) - 512, 512, small.data()), 0u);
  ASSERT_EQ(c.io(p::kCmdRead, (16u << 20) - 512, 512, one.data()), 0u);
  EXPECT_EQ(one, small);
}

TEST_F(NbdTest, ReadWriteOverUnixSocket) {
  serve_unix();
  Client c;
  ASSERT_TRUE(c.open_unix(sock_, "disk"));
  round_trip(c);
}

TEST_F(NbdTest, ReadWriteOverTcpWithStructuredReplies) {
  uint16_t port = serve_tcp();
  ASSERT_NE(port, 0);
  EXPECT_EQ(server_address()->host, "127.0.0.1");
  Client c;
  ASSERT_TRUE(c.connect_tcp(port) && c.greet());
  ASSERT_TRUE(c.structured_replies());
  ASSERT_EQ(c.go("disk"), p::kRepAck);
  round_trip(c);
  // A structured error chunk for a read past the end.
  std::vector<uint8_t> buf(4096);
  EXPECT_EQ(c.io(p::kCmdRead, 16u << 20, 4096, buf.data()), p::kEinval);
}

// BLOCK_STATUS over a session: only after base:allocation was selected, extents in bytes
// from the request's offset. A malloc device has no holes: one data extent, whatever the
// range (volumes with holes: tests/unit/lvol and tests/integration/nbd_clients_test.sh).
TEST_F(NbdTest, BlockStatusAfterSelectingBaseAllocation) {
  serve_unix();
  Client c;
  ASSERT_TRUE(c.connect_unix(sock_) && c.greet() && c.structured_replies());
  ASSERT_TRUE(c.set_meta_context("disk", std::string(p::kBaseAllocation)));
  ASSERT_EQ(c.go("disk"), p::kRepAck);
  for (auto [offset, length] : {std::pair<uint64_t, uint32_t>{0, 16u << 20}, {7, 1000}, {(16u << 20) - 1, 1}}) {
    for (uint16_t flags : {uint16_t{0}, p::kCmdFlagReqOne}) {
      auto st = c.block_status(offset, length, flags);
      ASSERT_TRUE(st);
      EXPECT_EQ(st->error, 0u);
      EXPECT_EQ(st->context, p::kBaseAllocationId);
      ASSERT_EQ(st->extents.size(), 1u);
      EXPECT_EQ(st->extents[0].length, length);
      EXPECT_EQ(st->extents[0].flags, 0u);
    }
  }
  auto past = c.block_status(16u << 20, 512);
  ASSERT_TRUE(past);
  EXPECT_EQ(past->error, p::kEinval);
  std::vector<uint8_t> buf(512);
  EXPECT_EQ(c.io(p::kCmdRead, 0, 512, buf.data()), 0u);  // the session goes on

  // Without the context selected, BLOCK_STATUS is refused.
  Client d;
  ASSERT_TRUE(d.connect_unix(sock_) && d.greet() && d.structured_replies());
  ASSERT_EQ(d.go("disk"), p::kRepAck);
  auto refused = d.block_status(0, 512);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->error, p::kEinval);
}

// One reactor: it accepts, hands every connection to itself, and serves them all.
class NbdOneReactorTest : public NbdTest {
 protected:
  NbdOneReactorTest() : NbdTest("0") {}
};

TEST_F(NbdOneReactorTest, ReadWriteOnSeveralConnections) {
  uint16_t port = serve_tcp();
  ASSERT_NE(port, 0);
  std::vector<std::unique_ptr<Client>> cs;
  for (int i = 0; i < 8; ++i) {
    cs.push_back(std::make_unique<Client>());
    ASSERT_TRUE(cs.back()->connect_tcp(port) && cs.back()->greet() && cs.back()->go("disk") == p::kRepAck);
  }
  round_trip(*cs[3]);
  std::vector<uint8_t> back(1 << 20);
  ASSERT_EQ(cs[5]->io(p::kCmdRead, 4096 + 12288, 4096, back.data()), 0u);
  const auto data = pattern(1 << 20, 7);  // what round_trip wrote at 4096, past its zeroed part
  EXPECT_TRUE(std::equal(back.begin(), back.begin() + 4096, data.begin() + 12288));
}

TEST_F(NbdTest, OldStyleExportNameOption) {
  serve_unix();
  Client c;
  ASSERT_TRUE(c.connect_unix(sock_) && c.greet());
  ASSERT_TRUE(c.send_option(p::kOptExportName, {'d', 'i', 's', 'k'}));
  uint8_t r[10];
  ASSERT_TRUE(c.recv_all(r, sizeof(r)));  // NO_ZEROES negotiated: no padding
  EXPECT_EQ(p::get64(r), 16u << 20);
  std::vector<uint8_t> buf(512);
  EXPECT_EQ(c.io(p::kCmdRead, 0, 512, buf.data()), 0u);
}

TEST_F(NbdTest, ManyRequestsInFlightAcrossConnections) {
  serve_unix();
  constexpr int kConns = 4, kDepth = 64;
  std::vector<std::unique_ptr<Client>> cs;
  for (int i = 0; i < kConns; ++i) {
    cs.push_back(std::make_unique<Client>());
    ASSERT_TRUE(cs.back()->open_unix(sock_, "disk"));
  }
  // Each connection writes its own region, all requests sent before any reply is read.
  for (int i = 0; i < kConns; ++i) {
    auto data = pattern(4096, 100 + i);
    for (int k = 0; k < kDepth; ++k)
      ASSERT_TRUE(cs[i]->send_request(p::kCmdWrite, (uint64_t(i) * kDepth + k) * 4096, 4096, k, 0, data.data()));
  }
  for (int i = 0; i < kConns; ++i)
    for (int k = 0; k < kDepth; ++k) {
      auto r = cs[i]->read_reply();
      ASSERT_TRUE(r);
      EXPECT_EQ(r->error, 0u);
    }
  for (int i = 0; i < kConns; ++i) {
    auto data = pattern(4096, 100 + i);
    std::vector<uint8_t> back(4096);
    ASSERT_EQ(cs[(i + 1) % kConns]->io(p::kCmdRead, (uint64_t(i) * kDepth + 5) * 4096, 4096, back.data()), 0u);
    EXPECT_EQ(back, data);
  }
  EXPECT_EQ(exports()[0].connections, static_cast<uint32_t>(kConns));
}

// A client that sends many large reads and does not read the replies: the server stops
// reading its requests (bounded memory), and serves them all once the client reads.
TEST_F(NbdTest, SlowReaderIsBackPressure) {
  serve_unix();
  Client c;
  ASSERT_TRUE(c.open_unix(sock_, "disk"));
  auto data = pattern(1 << 20, 11);
  ASSERT_EQ(c.io(p::kCmdWrite, 0, 1 << 20, data.data()), 0u);
  const auto before = env::dma_stats().outstanding_bytes;
  constexpr int kReads = 256;  // 256 MiB of replies
  for (int i = 0; i < kReads; ++i) ASSERT_TRUE(c.send_request(p::kCmdRead, 0, 1 << 20, 1000 + i));
  std::this_thread::sleep_for(200ms);
  const auto held = env::dma_stats().outstanding_bytes - before;
  EXPECT_LE(held, 96u << 20) << "a reader that does not read pinned " << held << " bytes";
  std::vector<uint8_t> back(1 << 20);
  for (int i = 0; i < kReads; ++i) {
    auto r = c.read_reply();
    ASSERT_TRUE(r);
    ASSERT_EQ(r->error, 0u);
    ASSERT_EQ(r->cookie, 1000u + i);  // this server answers one connection's reads in order
    ASSERT_TRUE(c.recv_all(back.data(), back.size()));
    ASSERT_EQ(back, data);
  }
}

// Idle clients cost nothing: with connected, handshaken clients and no requests, both
// reactors sleep (counted, not timed), and a request still wakes them.
TEST_F(NbdTest, IdleClientsLetReactorsSleep) {
  serve_unix();
  Client a, b;
  ASSERT_TRUE(a.open_unix(sock_, "disk"));
  ASSERT_TRUE(b.open_unix(sock_, "disk"));
  for (uint32_t r = 0; r < 2; ++r) {
    // Sleeping with sockets registered: the epoll descriptor armed, though nothing is in
    // flight (not an "I/O sleep").
    ASSERT_TRUE(wait_until([&] { return thread::reactor_stats(r)->sleeps > 0; })) << "reactor " << r;
    std::this_thread::sleep_for(20ms);  // well past the 1 ms idle grace after the handshakes
    const auto before = *thread::reactor_stats(r);
    std::this_thread::sleep_for(200ms);
    const auto after = *thread::reactor_stats(r);
    // A few loop rounds per sleep (none at all while one sleep lasts); a spinning reactor
    // would go round millions of times.
    EXPECT_LE(after.iterations - before.iterations, 3 * (after.sleeps - before.sleeps) + 8) << "reactor " << r;
  }
  std::vector<uint8_t> buf(512);
  EXPECT_EQ(a.io(p::kCmdRead, 0, 512, buf.data()), 0u);
  EXPECT_EQ(b.io(p::kCmdRead, 0, 512, buf.data()), 0u);
}

TEST_F(NbdTest, DiscClosesAfterInFlightRequests) {
  serve_unix();
  Client c;
  ASSERT_TRUE(c.open_unix(sock_, "disk"));
  auto data = pattern(65536, 3);
  ASSERT_TRUE(c.send_request(p::kCmdWrite, 0, 65536, 1, 0, data.data()));
  ASSERT_TRUE(c.send_request(p::kCmdDisc, 0, 0, 2));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->error, 0u);
  EXPECT_TRUE(c.sees_eof());
  EXPECT_TRUE(no_sessions());
}

}  // namespace
}  // namespace sluice::nbd::testing
