// The streaming reader on well-formed streams: every PDU type round trips through builder and
// reader, with digests off and on and with padding, whole, one byte at a time, in random
// splits, and with data received straight into data_window().
#include <random>

#include <gtest/gtest.h>

#include "pdu_test_util.h"

namespace sluice::nvme::tcp {
namespace {

using namespace testing;
using State = PduReader::State;

spec::Sqe sqe_with(uint16_t cid) {
  spec::Sqe s{};
  s.opc = spec::kIoWrite;
  s.cid = cid;
  s.nsid = 1;
  s.cdw10 = 0xabcdef01;
  return s;
}

struct Mode {
  bool header_digest;
  bool data_digest;
  uint8_t pda;  // the receiver's alignment, which the sender honours
};

RxParams rx_for(const Mode& m) {
  RxParams rx;
  rx.header_digest = m.header_digest;
  rx.data_digest = m.data_digest;
  rx.pda = m.pda;
  return rx;
}
TxParams tx_for(const Mode& m) { return {m.header_digest, m.data_digest, m.pda}; }

// What a host sends a controller: ICReq, a command without data, one with in-capsule data,
// H2CData in two PDUs, and a TermReq.
Bytes host_stream(const Mode& m) {
  const TxParams tx = tx_for(m);
  return concat({ic_req_pdu({0, m.pda, 3, 7}), cmd_pdu(tx, sqe_with(1)), cmd_pdu(tx, sqe_with(2), pattern(1000, 5)),
                 data_pdu(Role::host, tx, {2, 0x77, 0, 0, false, false}, pattern(4096, 9)),
                 data_pdu(Role::host, tx, {2, 0x77, 4096, 0, true, false}, pattern(17, 11)),
                 term_pdu(Role::host, Fes::pdu_sequence, 0, pattern(72, 1))});
}

void check_host_stream(const std::vector<Received>& got, const Mode& m) {
  ASSERT_EQ(got.size(), 6u);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].state, State::pdu_ready) << "PDU " << i;
  EXPECT_EQ(got[0].pdu.type, PduType::ic_req);
  EXPECT_EQ(got[0].pdu.ic_req.hpda, m.pda);
  EXPECT_EQ(got[0].pdu.ic_req.digest, 3);
  EXPECT_EQ(got[0].pdu.ic_req.maxr2t, 7u);
  EXPECT_EQ(got[1].pdu.type, PduType::capsule_cmd);
  EXPECT_EQ(got[1].pdu.sqe.cid, 1);
  EXPECT_EQ(got[1].pdu.sqe.cdw10, 0xabcdef01u);
  EXPECT_EQ(got[1].pdu.data_length, 0u);
  EXPECT_EQ(got[2].pdu.sqe.cid, 2);
  EXPECT_EQ(got[2].data, pattern(1000, 5));
  EXPECT_EQ(got[3].pdu.type, PduType::h2c_data);
  EXPECT_EQ(got[3].pdu.data.cccid, 2);
  EXPECT_EQ(got[3].pdu.data.ttag, 0x77);
  EXPECT_EQ(got[3].pdu.data.datal, 4096u);
  EXPECT_FALSE(got[3].pdu.data.last);
  EXPECT_EQ(got[3].data, pattern(4096, 9));
  EXPECT_EQ(got[4].pdu.data.datao, 4096u);
  EXPECT_TRUE(got[4].pdu.data.last);
  EXPECT_EQ(got[4].data, pattern(17, 11));
  EXPECT_EQ(got[5].pdu.type, PduType::h2c_term_req);
  EXPECT_EQ(got[5].pdu.term.fes, uint16_t(Fes::pdu_sequence));
  EXPECT_EQ(got[5].data, pattern(72, 1));
}

// What a controller sends a host: ICResp, an R2T, C2HData (one with SUCCESS), a response, a TermReq.
Bytes controller_stream(const Mode& m) {
  const TxParams tx = tx_for(m);
  spec::Cqe cqe{};
  cqe.cid = 3;
  cqe.sqhd = 9;
  cqe.status = spec::make_status(0, spec::kScLbaOutOfRange, true);
  return concat({ic_resp_pdu({0, 0, 3, 65536}), r2t_pdu(tx, {3, 0x10, 512, 8192}),
                 data_pdu(Role::controller, tx, {4, 0, 0, 0, false, false}, pattern(512, 3)),
                 data_pdu(Role::controller, tx, {4, 0, 512, 0, true, true}, pattern(3, 4)), resp_pdu(tx, cqe),
                 term_pdu(Role::controller, Fes::invalid_header_field, 4, pattern(24, 2))});
}

void check_controller_stream(const std::vector<Received>& got) {
  ASSERT_EQ(got.size(), 6u);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].state, State::pdu_ready) << "PDU " << i;
  EXPECT_EQ(got[0].pdu.type, PduType::ic_resp);
  EXPECT_EQ(got[0].pdu.ic_resp.maxh2cdata, 65536u);
  EXPECT_EQ(got[1].pdu.type, PduType::r2t);
  EXPECT_EQ(got[1].pdu.r2t.cccid, 3);
  EXPECT_EQ(got[1].pdu.r2t.ttag, 0x10);
  EXPECT_EQ(got[1].pdu.r2t.r2to, 512u);
  EXPECT_EQ(got[1].pdu.r2t.r2tl, 8192u);
  EXPECT_EQ(got[2].pdu.type, PduType::c2h_data);
  EXPECT_EQ(got[2].data, pattern(512, 3));
  EXPECT_FALSE(got[2].pdu.data.success);
  EXPECT_TRUE(got[3].pdu.data.last);
  EXPECT_TRUE(got[3].pdu.data.success);
  EXPECT_EQ(got[3].data, pattern(3, 4));
  EXPECT_EQ(got[4].pdu.type, PduType::capsule_resp);
  EXPECT_EQ(got[4].pdu.cqe.cid, 3);
  EXPECT_EQ(got[4].pdu.cqe.sqhd, 9);
  EXPECT_EQ(got[4].pdu.cqe.status, spec::make_status(0, spec::kScLbaOutOfRange, true));
  EXPECT_EQ(got[5].pdu.type, PduType::c2h_term_req);
  EXPECT_EQ(got[5].pdu.term.fei, 4u);
  EXPECT_EQ(got[5].data, pattern(24, 2));
}

const Mode kModes[] = {{false, false, 0}, {true, false, 0},  {false, true, 0}, {true, true, 0},
                       {true, true, 31},  {false, false, 3}, {true, false, 1}};

TEST(NvmeTcpReader, EveryTypeRoundTripsWhole) {
  for (const Mode& m : kModes) {
    SCOPED_TRACE(::testing::Message() << "hdgst " << m.header_digest << " ddgst " << m.data_digest << " pda "
                                      << int(m.pda));
    PduReader controller(Role::controller, rx_for(m));
    check_host_stream(receive_whole(controller, host_stream(m)), m);
    PduReader host(Role::host, rx_for(m));
    check_controller_stream(receive_whole(host, controller_stream(m)));
  }
}

TEST(NvmeTcpReader, OneByteAtATime) {
  for (const Mode& m : kModes) {
    SCOPED_TRACE(::testing::Message() << "hdgst " << m.header_digest << " ddgst " << m.data_digest << " pda "
                                      << int(m.pda));
    PduReader controller(Role::controller, rx_for(m));
    check_host_stream(receive(controller, host_stream(m), [](size_t) { return 1; }), m);
    PduReader host(Role::host, rx_for(m));
    check_controller_stream(receive(host, controller_stream(m), [](size_t) { return 1; }));
  }
}

TEST(NvmeTcpReader, RandomSplits) {
  std::mt19937 rng(42);
  for (int round = 0; round < 200; ++round) {
    const Mode& m = kModes[round % std::size(kModes)];
    const size_t max_chunk = 1 + rng() % 300;
    auto split = [&](size_t) { return 1 + rng() % max_chunk; };
    PduReader controller(Role::controller, rx_for(m));
    check_host_stream(receive(controller, host_stream(m), split, round % 2 == 0), m);
    PduReader host(Role::host, rx_for(m));
    check_controller_stream(receive(host, controller_stream(m), split, round % 2 == 1));
  }
}

// Data straight into the caller's buffer: the window is the unfilled part of it, and a recv()
// bounded by bytes_wanted() never reads into the next PDU.
TEST(NvmeTcpReader, DataGoesStraightIntoTheCallersBuffer) {
  const Mode m{true, true, 0};
  PduReader rx(Role::controller, rx_for(m));
  const Bytes ic = ic_req_pdu();
  ASSERT_EQ(rx.feed(ic), ic.size());
  ASSERT_EQ(rx.state(), State::pdu_ready);
  rx.set_params(rx_for(m));

  const Bytes payload = pattern(8192, 7);
  const Bytes stream = data_pdu(Role::host, tx_for(m), {1, 2, 0, 0, true, false}, payload);
  size_t at = 0;
  // The header: bytes_wanted() asks for the common header, then the rest plus the digest.
  EXPECT_EQ(rx.feed({}), 0u);
  EXPECT_EQ(rx.bytes_wanted(), 8u);
  at += rx.feed(std::span(stream).first(8));
  EXPECT_EQ(rx.bytes_wanted(), 24u + 4 - 8);
  at += rx.feed(std::span(stream).subspan(at, 64));  // stops at the end of the header
  EXPECT_EQ(at, 28u);
  ASSERT_EQ(rx.state(), State::need_buffer);
  EXPECT_TRUE(rx.data_window().empty());

  Bytes bdev(16384, 0);  // the data belongs at offset 4096 of this buffer
  EXPECT_FALSE(rx.set_data_buffer(std::span(bdev).subspan(4096, 100)));  // wrong size
  ASSERT_TRUE(rx.set_data_buffer(std::span(bdev).subspan(4096, payload.size())));
  EXPECT_EQ(rx.state(), State::reading);
  EXPECT_EQ(rx.bytes_wanted(), payload.size());
  while (!rx.data_window().empty()) {
    const std::span<uint8_t> w = rx.data_window();
    EXPECT_EQ(w.data(), bdev.data() + 4096 + (at - 28));
    const size_t n = std::min<size_t>(w.size(), 3000);  // what one recv() returned
    std::copy_n(stream.begin() + static_cast<std::ptrdiff_t>(at), n, w.begin());
    rx.data_received(n);
    at += n;
  }
  EXPECT_EQ(rx.bytes_wanted(), 4u);  // the data digest
  at += rx.feed(std::span(stream).subspan(at));
  EXPECT_EQ(at, stream.size());
  ASSERT_EQ(rx.state(), State::pdu_ready);
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), bdev.begin() + 4096));
  EXPECT_EQ(bdev[4095], 0);
  EXPECT_EQ(bdev[4096 + 8192], 0);
}

TEST(NvmeTcpReader, DiscardedDataStillHasItsDigestChecked) {
  const Mode m{false, true, 0};
  PduReader rx(Role::controller, rx_for(m));
  Bytes bad = cmd_pdu(tx_for(m), sqe_with(1), pattern(64));
  bad[80] ^= 1;  // a data byte
  const Bytes stream = concat({ic_req_pdu(), bad, cmd_pdu(tx_for(m), sqe_with(2), pattern(64))});
  size_t at = rx.feed(stream);
  ASSERT_EQ(rx.state(), State::pdu_ready);
  at += rx.feed(std::span(stream).subspan(at));
  ASSERT_EQ(rx.state(), State::need_buffer);
  rx.discard_data();
  at += rx.feed(std::span(stream).subspan(at));
  // A data digest error fails the command, not the connection: the next PDU reads fine.
  ASSERT_EQ(rx.state(), State::data_digest_error);
  EXPECT_EQ(rx.error().what, Violation::data_digest);
  EXPECT_FALSE(rx.error().fatal());
  EXPECT_EQ(rx.pdu().sqe.cid, 1);
  at += rx.feed(std::span(stream).subspan(at));
  ASSERT_EQ(rx.state(), State::need_buffer);
  EXPECT_EQ(rx.pdu().sqe.cid, 2);
  rx.discard_data();
  at += rx.feed(std::span(stream).subspan(at));
  EXPECT_EQ(rx.state(), State::pdu_ready);
  EXPECT_EQ(at, stream.size());
}

TEST(NvmeTcpReader, DataDigestErrorInTheMiddleOfAStream) {
  const Mode m{true, true, 0};
  const TxParams tx = tx_for(m);
  Bytes bad = data_pdu(Role::controller, tx, {1, 0, 0, 0, true, false}, pattern(100));
  bad.back() ^= 0x80;  // the digest itself
  PduReader rx(Role::host, rx_for(m));
  const auto got = receive(rx, concat({ic_resp_pdu(), bad, r2t_pdu(tx, {1, 1, 0, 512})}), [](size_t) { return 7; });
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1].state, State::data_digest_error);
  EXPECT_EQ(got[1].data, pattern(100));  // the data arrived; only the caller knows to distrust it
  EXPECT_EQ(got[2].state, State::pdu_ready);
  EXPECT_EQ(got[2].pdu.type, PduType::r2t);
}

// The order a controller meets: defaults until the ICReq, then what it agreed to.
TEST(NvmeTcpReader, ParametersChangeAfterTheIcExchange) {
  PduReader rx(Role::controller, {});
  const Bytes ic = ic_req_pdu({0, 0, kDigestHeader | kDigestData, 0});
  const Mode agreed{true, true, 0};
  const Bytes cmd = cmd_pdu(tx_for(agreed), sqe_with(9), pattern(32));
  const Bytes stream = concat({ic, cmd});
  size_t at = rx.feed(stream);
  ASSERT_EQ(at, ic.size());  // it stops at the IC PDU, before the digest-bearing command
  ASSERT_EQ(rx.state(), State::pdu_ready);
  EXPECT_EQ(rx.pdu().ic_req.digest, kDigestHeader | kDigestData);
  rx.set_params(rx_for(agreed));
  at += rx.feed(std::span(stream).subspan(at));
  ASSERT_EQ(rx.state(), State::need_buffer);
  EXPECT_EQ(rx.pdu().sqe.cid, 9);
  Bytes data(32);
  ASSERT_TRUE(rx.set_data_buffer(data));
  at += rx.feed(std::span(stream).subspan(at));
  EXPECT_EQ(rx.state(), State::pdu_ready);
  EXPECT_EQ(at, stream.size());
  EXPECT_EQ(data, pattern(32));
}

// Reserved fields are ignored, as the spec asks of receivers: C2HData's TTAG, PDO on a PDU
// without data, flag bits a type does not define.
TEST(NvmeTcpReader, ReservedFieldsAreIgnored) {
  Bytes c2h = data_pdu(Role::controller, {}, {1, 0, 0, 0, false, false}, pattern(8));
  c2h[10] = 0x55;  // TTAG
  Bytes resp = resp_pdu({}, {});
  resp[3] = 24;            // PDO
  resp[1] = kFlagLastPdu;  // not a CapsuleResp flag
  Bytes ic = ic_resp_pdu();
  ic[100] = 0xff;  // reserved
  PduReader rx(Role::host, {});
  const auto got = receive_whole(rx, concat({ic, c2h, resp}));
  ASSERT_EQ(got.size(), 3u);
  for (const Received& r : got) EXPECT_EQ(r.state, State::pdu_ready);
  EXPECT_EQ(got[1].pdu.data.ttag, 0x55);  // reported as received; the codec gives it no meaning
}

TEST(NvmeTcpReader, NothingAfterATermReq) {
  PduReader rx(Role::controller, {});
  const auto got = receive_whole(
      rx, concat({ic_req_pdu(), term_pdu(Role::host, Fes::header_digest, 0, {}), cmd_pdu({}, sqe_with(1))}));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1].pdu.type, PduType::h2c_term_req);
  EXPECT_EQ(got[2].state, State::failed);
  EXPECT_EQ(got[2].error.what, Violation::after_term_req);
  EXPECT_EQ(got[2].error.fes, Fes::none);  // a TermReq is never answered with one
}

TEST(NvmeTcpReader, TermReqBeforeTheIcExchange) {
  // A peer may refuse the ICReq itself with a TermReq.
  PduReader rx(Role::host, {});
  const auto got = receive_whole(rx, term_pdu(Role::controller, Fes::unsupported_parameter, 8, ic_req_pdu()));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].state, State::pdu_ready);
  EXPECT_EQ(got[0].pdu.term.fei, 8u);
  EXPECT_EQ(got[0].data, ic_req_pdu());
}

}  // namespace
}  // namespace sluice::nvme::tcp
