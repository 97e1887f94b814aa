// Bad input: a bad request gets an error reply and the connection stays; garbage closes that
// connection only; clients that vanish leak nothing.
#include <vector>

#include "nbd_test_support.h"

namespace sluice::nbd::testing {
namespace {

TEST_F(NbdTest, BadRequestMagicClosesOnlyThatConnection) {
  serve_unix();
  Client good, bad;
  ASSERT_TRUE(good.open_unix(sock_, "disk"));
  ASSERT_TRUE(bad.open_unix(sock_, "disk"));
  std::vector<uint8_t> junk(p::kRequestSize, 0xab);
  ASSERT_TRUE(bad.send_all(junk.data(), junk.size()));
  EXPECT_TRUE(bad.sees_eof());
  std::vector<uint8_t> buf(512);
  EXPECT_EQ(good.io(p::kCmdRead, 0, 512, buf.data()), 0u);
}

TEST_F(NbdTest, BadRequestsGetErrorsAndTheConnectionStays) {
  ServerOptions o;
  o.max_payload = 1 << 20;
  serve_unix(o);
  Client c;
  ASSERT_TRUE(c.open_unix(sock_, "disk"));
  std::vector<uint8_t> buf(2 << 20, 0x5a);
  EXPECT_EQ(c.io(p::kCmdRead, 16u << 20, 512, buf.data()), p::kEinval);             // past the end
  EXPECT_EQ(c.io(p::kCmdRead, ~0ull - 511, 512, buf.data()), p::kEinval);           // offset overflow
  EXPECT_EQ(c.io(p::kCmdWrite, (16u << 20) - 512, 1024, buf.data()), p::kEnospc);   // write past the end
  EXPECT_EQ(c.io(p::kCmdRead, 0, 2 << 20, buf.data()), p::kEoverflow);              // over max_payload
  EXPECT_EQ(c.io(p::kCmdWrite, 0, 2 << 20, buf.data()), p::kEoverflow);             // payload skipped
  EXPECT_EQ(c.io(p::kCmdRead, 100, 512, buf.data()), p::kEinval);                   // unaligned
  EXPECT_EQ(c.io(p::kCmdRead, 0, 0, buf.data()), p::kEinval);                       // empty
  EXPECT_EQ(c.io(99, 0, 512, buf.data()), p::kEinval);                              // unknown command
  EXPECT_EQ(c.io(p::kCmdRead, 0, 512, buf.data(), p::kCmdFlagNoHole), p::kEinval);  // flag not for READ
  // Still in step: a good request after all of them.
  std::vector<uint8_t> data(4096, 0x42), back(4096);
  ASSERT_EQ(c.io(p::kCmdWrite, 0, 4096, data.data()), 0u);
  ASSERT_EQ(c.io(p::kCmdRead, 0, 4096, back.data()), 0u);
  EXPECT_EQ(back, data);
}

TEST_F(NbdTest, ReadOnlyExportRefusesWrites) {
  ASSERT_TRUE(export_add("ro", bdev_, true).ok());
  serve_unix();
  Client c;
  ASSERT_TRUE(c.open_unix(sock_, "ro"));
  EXPECT_TRUE(c.tx_flags & p::kTxReadOnly);
  std::vector<uint8_t> buf(512);
  EXPECT_EQ(c.io(p::kCmdWrite, 0, 512, buf.data()), p::kEperm);
  EXPECT_EQ(c.io(p::kCmdTrim, 0, 512), p::kEperm);
  EXPECT_EQ(c.io(p::kCmdWriteZeroes, 0, 512), p::kEperm);
  EXPECT_EQ(c.io(p::kCmdRead, 0, 512, buf.data()), 0u);
  EXPECT_EQ(c.io(p::kCmdFlush, 0, 0), 0u);  // nothing to flush, not an error
  EXPECT_EQ(c.io(p::kCmdRead, 0, 512, buf.data(), p::kCmdFlagFua), 0u);
}

TEST_F(NbdTest, HandshakeGarbageClosesTheConnection) {
  serve_unix();
  {
    Client c;  // unknown client flags
    ASSERT_TRUE(c.connect_unix(sock_) && c.greet(0xffff0000u));
    EXPECT_TRUE(c.sees_eof());
  }
  {
    Client c;  // bad option magic
    ASSERT_TRUE(c.connect_unix(sock_) && c.greet());
    std::vector<uint8_t> junk(16, 0x11);
    ASSERT_TRUE(c.send_all(junk.data(), junk.size()));
    EXPECT_TRUE(c.sees_eof());
  }
  {
    Client c;  // an option longer than the server accepts
    ASSERT_TRUE(c.connect_unix(sock_) && c.greet());
    uint8_t h[16];
    p::put64(h, p::kOptMagic);
    p::put32(h + 8, p::kOptGo);
    p::put32(h + 12, 1u << 30);
    ASSERT_TRUE(c.send_all(h, 16));
    EXPECT_TRUE(c.sees_eof());
  }
  EXPECT_TRUE(no_sessions());
}

TEST_F(NbdTest, OptionsListInfoUnsupportedAndUnknownExport) {
  ASSERT_TRUE(export_add("second", bdev_, true).ok());
  serve_unix();
  Client c;
  ASSERT_TRUE(c.connect_unix(sock_) && c.greet());
  ASSERT_TRUE(c.send_option(p::kOptList, {}));
  std::vector<std::string> names;
  for (;;) {
    auto r = c.read_option_reply();
    ASSERT_TRUE(r);
    if (r->type == p::kRepAck) break;
    ASSERT_EQ(r->type, p::kRepServer);
    names.emplace_back(r->data.begin() + 4, r->data.begin() + 4 + p::get32(r->data.data()));
  }
  EXPECT_EQ(names, (std::vector<std::string>{"disk", "second"}));
  EXPECT_EQ(c.go("second", p::kOptInfo), p::kRepAck);
  EXPECT_TRUE(c.tx_flags & p::kTxReadOnly);
  EXPECT_EQ(c.go("nope"), p::kRepErrUnknown);
  ASSERT_TRUE(c.send_option(p::kOptStartTls, {}));
  EXPECT_EQ(c.read_option_reply()->type, p::kRepErrUnsup);
  ASSERT_TRUE(c.send_option(p::kOptGo, {0, 0, 0, 9}));  // name longer than the data
  EXPECT_EQ(c.read_option_reply()->type, p::kRepErrInvalid);
  // Block size constraints when asked.
  ASSERT_TRUE(c.send_option(p::kOptInfo, Client::go_data("disk", {p::kInfoBlockSize})));
  bool saw_block_size = false;
  for (;;) {
    auto r = c.read_option_reply();
    ASSERT_TRUE(r);
    if (r->type != p::kRepInfo) break;
    if (p::get16(r->data.data()) == p::kInfoBlockSize) {
      saw_block_size = true;
      EXPECT_EQ(p::get32(r->data.data() + 2), 512u);
    }
  }
  EXPECT_TRUE(saw_block_size);
  ASSERT_TRUE(c.send_option(p::kOptAbort, {}));
  EXPECT_EQ(c.read_option_reply()->type, p::kRepAck);
  EXPECT_TRUE(c.sees_eof());
}

TEST_F(NbdTest, TruncatedHeaderThenClose) {
  serve_unix();
  {
    Client c;
    ASSERT_TRUE(c.open_unix(sock_, "disk"));
    uint8_t part[10] = {0x25, 0x60, 0x95, 0x13};
    ASSERT_TRUE(c.send_all(part, sizeof(part)));
  }
  {
    Client c;  // mid-handshake
    ASSERT_TRUE(c.connect_unix(sock_) && c.greet());
    uint8_t part[7] = {'I', 'H', 'A'};
    ASSERT_TRUE(c.send_all(part, sizeof(part)));
  }
  EXPECT_TRUE(no_sessions());
  Client c;
  ASSERT_TRUE(c.open_unix(sock_, "disk"));
}

TEST_F(NbdTest, ClientClosingWithWritesInFlightLeaksNothing) {
  serve_unix();
  for (int round = 0; round < 5; ++round) {
    Client c;
    ASSERT_TRUE(c.open_unix(sock_, "disk"));
    std::vector<uint8_t> data(256 << 10, static_cast<uint8_t>(round));
    for (int k = 0; k < 32; ++k)
      ASSERT_TRUE(c.send_request(p::kCmdWrite, uint64_t(k) * data.size(), data.size(), k, 0, data.data()));
    // Half a payload, then gone.
    ASSERT_TRUE(c.send_request(p::kCmdWrite, 0, data.size(), 99));
    ASSERT_TRUE(c.send_all(data.data(), data.size() / 2));
  }
  EXPECT_TRUE(no_sessions());
  EXPECT_TRUE(wait_until([] { return exports()[0].connections == 0; }));
}

TEST_F(NbdTest, TwoHundredConnectionsAtOnce) {
  serve_unix();
  constexpr int kConns = 200;
  std::vector<std::unique_ptr<Client>> cs;
  for (int i = 0; i < kConns; ++i) {
    cs.push_back(std::make_unique<Client>());
    ASSERT_TRUE(cs.back()->connect_unix(sock_)) << i;
  }
  for (auto& c : cs) ASSERT_TRUE(c->greet() && c->go("disk") == p::kRepAck);
  std::vector<uint8_t> buf(4096);
  for (int i = 0; i < kConns; ++i) {
    std::vector<uint8_t> data(4096, static_cast<uint8_t>(i));
    ASSERT_EQ(cs[i]->io(p::kCmdWrite, uint64_t(i) * 4096, 4096, data.data()), 0u);
  }
  for (int i = 0; i < kConns; ++i) {
    ASSERT_EQ(cs[(i + 7) % kConns]->io(p::kCmdRead, uint64_t(i) * 4096, 4096, buf.data()), 0u);
    EXPECT_EQ(buf, std::vector<uint8_t>(4096, static_cast<uint8_t>(i)));
  }
  EXPECT_EQ(exports()[0].connections, static_cast<uint32_t>(kConns));
  cs.clear();
  EXPECT_TRUE(no_sessions());
}

TEST_F(NbdTest, ExportRemovedWithClientsConnected) {
  serve_unix();
  Client a, b;
  ASSERT_TRUE(a.open_unix(sock_, "disk"));
  ASSERT_TRUE(b.open_unix(sock_, "disk"));
  std::vector<uint8_t> data(1 << 20, 1);
  ASSERT_TRUE(a.send_request(p::kCmdWrite, 0, data.size(), 1, 0, data.data()));  // maybe in flight
  Status st = export_remove("disk");
  EXPECT_TRUE(st.ok()) << st.to_string();
  EXPECT_TRUE(exports().empty());
  EXPECT_TRUE(b.sees_eof());
  EXPECT_TRUE(no_sessions());
  Client c;
  ASSERT_TRUE(c.connect_unix(sock_) && c.greet());
  EXPECT_EQ(c.go("disk"), p::kRepErrUnknown);
}

TEST_F(NbdTest, BdevHotRemoveDisconnectsClients) {
  serve_unix();
  Client a;
  ASSERT_TRUE(a.open_unix(sock_, "disk"));
  ASSERT_TRUE(bdev::unregister(bdev_).ok());
  EXPECT_TRUE(a.sees_eof());
  EXPECT_TRUE(no_sessions());
  EXPECT_TRUE(exports().empty());
}

TEST_F(NbdTest, StopServerWithClientsConnected) {
  serve_unix();
  Client a;
  ASSERT_TRUE(a.open_unix(sock_, "disk"));
  ASSERT_TRUE(stop_server().ok());
  EXPECT_TRUE(a.sees_eof());
  EXPECT_FALSE(server_address());
  Client b;
  EXPECT_FALSE(b.connect_unix(sock_));
  // Exports outlive the server; a new one serves them.
  EXPECT_EQ(exports().size(), 1u);
  serve_unix();
  ASSERT_TRUE(b.open_unix(sock_, "disk"));
}

TEST_F(NbdTest, ControlCallsRefusedOnAReactor) {
  Status st;
  std::atomic<bool> ran{false};
  ASSERT_TRUE(thread::send_message(0, [&] {
                st = stop_server();
                ran = true;
              }).ok());
  ASSERT_TRUE(wait_until([&] { return ran.load(); }));
  EXPECT_EQ(st.code(), Errc::invalid_argument);
  EXPECT_EQ(export_add("disk", bdev_, false).code(), Errc::exists);
  EXPECT_EQ(export_add("x", "no-such-bdev", false).code(), Errc::not_found);
  EXPECT_EQ(export_add("", bdev_, false).code(), Errc::invalid_argument);
  EXPECT_EQ(export_remove("x").code(), Errc::not_found);
  ServerOptions o;
  o.max_requests = 7;
  serve_unix(o);
  ASSERT_TRUE(server_options());
  EXPECT_EQ(server_options()->max_requests, 7u);
  EXPECT_EQ(server_options()->address.path, sock_);
  EXPECT_EQ(start_server(net::ListenAddress::unix_socket(sock_ + "2")).code(), Errc::exists);
  ServerOptions bad;
  bad.accept_reactor = 9;
  EXPECT_EQ(start_server(bad).code(), Errc::invalid_argument);
}

}  // namespace
}  // namespace sluice::nbd::testing
