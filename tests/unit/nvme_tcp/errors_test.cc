// Every check the reader makes, each with the FES and FEI the spec wants in the TermReq:
// a well-formed PDU is built, one field broken by hand, and the stream fed in.
#include <random>

#include <gtest/gtest.h>

#include "pdu_test_util.h"

namespace sluice::nvme::tcp {
namespace {

using namespace testing;
using State = PduReader::State;

void set_le32(Bytes& b, size_t off, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[off + i] = static_cast<uint8_t>(v >> (8 * i));
}
void set_le16(Bytes& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v);
  b[off + 1] = static_cast<uint8_t>(v >> 8);
}

spec::Sqe sqe1() {
  spec::Sqe s{};
  s.opc = spec::kIoRead;
  s.cid = 1;
  return s;
}

// The outcome of feeding `stream` (split in 5-byte chunks) to a reader of `role`, after the
// IC PDU the role expects first (unless `connect` is false).
Received last_outcome(Role role, const RxParams& rx, const Bytes& pdu, bool connect = true) {
  PduReader reader(role, rx);
  Bytes stream = connect ? (role == Role::controller ? ic_req_pdu() : ic_resp_pdu()) : Bytes{};
  stream.insert(stream.end(), pdu.begin(), pdu.end());
  auto got = receive(reader, stream, [](size_t) { return 5; });
  if (got.empty()) return {State::reading, {}, {}, {}};
  return got.back();
}

void expect_error(const Received& r, Violation what, Fes fes, uint32_t fei) {
  EXPECT_EQ(r.state, State::failed) << violation_name(what);
  EXPECT_EQ(r.error.what, what) << "got " << violation_name(r.error.what) << ", want " << violation_name(what);
  EXPECT_EQ(r.error.fes, fes) << violation_name(what);
  EXPECT_EQ(r.error.fei, fei) << violation_name(what);
  EXPECT_TRUE(r.error.fatal());
}

constexpr RxParams kPlain{};
RxParams digests(bool h, bool d) {
  RxParams rx;
  rx.header_digest = h;
  rx.data_digest = d;
  return rx;
}

TEST(NvmeTcpErrors, UnknownType) {
  for (uint8_t type : {0x08, 0x0a, 0x7f, 0xff}) {
    Bytes b = cmd_pdu({}, sqe1());
    b[0] = type;
    expect_error(last_outcome(Role::controller, kPlain, b), Violation::unknown_type, Fes::invalid_header_field, 0);
  }
}

TEST(NvmeTcpErrors, WrongDirection) {
  expect_error(last_outcome(Role::controller, kPlain, resp_pdu({}, {})), Violation::wrong_direction,
               Fes::invalid_header_field, 0);
  expect_error(last_outcome(Role::controller, kPlain, r2t_pdu({}, {1, 1, 0, 512})), Violation::wrong_direction,
               Fes::invalid_header_field, 0);
  expect_error(last_outcome(Role::controller, kPlain, ic_resp_pdu(), false), Violation::wrong_direction,
               Fes::invalid_header_field, 0);
  expect_error(last_outcome(Role::host, kPlain, cmd_pdu({}, sqe1())), Violation::wrong_direction,
               Fes::invalid_header_field, 0);
  expect_error(last_outcome(Role::host, kPlain, data_pdu(Role::host, {}, {}, pattern(8))), Violation::wrong_direction,
               Fes::invalid_header_field, 0);
  expect_error(last_outcome(Role::host, kPlain, term_pdu(Role::host, Fes::pdu_sequence, 0, {})),
               Violation::wrong_direction, Fes::invalid_header_field, 0);
}

TEST(NvmeTcpErrors, Sequence) {
  expect_error(last_outcome(Role::controller, kPlain, cmd_pdu({}, sqe1()), false), Violation::before_connection,
               Fes::pdu_sequence, 0);
  expect_error(last_outcome(Role::host, kPlain, resp_pdu({}, {}), false), Violation::before_connection,
               Fes::pdu_sequence, 0);
  expect_error(last_outcome(Role::controller, kPlain, ic_req_pdu()), Violation::repeated_ic, Fes::pdu_sequence, 0);
  expect_error(last_outcome(Role::host, kPlain, ic_resp_pdu()), Violation::repeated_ic, Fes::pdu_sequence, 0);
  const Received r =
      last_outcome(Role::controller, kPlain, concat({term_pdu(Role::host, Fes::pdu_sequence, 0, {}), ic_req_pdu()}));
  EXPECT_EQ(r.error.what, Violation::after_term_req);
  EXPECT_EQ(r.error.fes, Fes::none);  // a TermReq is never answered
}

TEST(NvmeTcpErrors, HeaderLengthMustMatchTheType) {
  Bytes b = cmd_pdu({}, sqe1());
  b[2] = 24;
  expect_error(last_outcome(Role::controller, kPlain, b), Violation::bad_hlen, Fes::invalid_header_field, 2);
  b = ic_req_pdu();
  b[2] = 0xff;
  expect_error(last_outcome(Role::controller, kPlain, b, false), Violation::bad_hlen, Fes::invalid_header_field, 2);
  b = data_pdu(Role::controller, {}, {}, pattern(8));
  b[2] = 0;
  expect_error(last_outcome(Role::host, kPlain, b), Violation::bad_hlen, Fes::invalid_header_field, 2);
}

TEST(NvmeTcpErrors, DigestFlagsMustMatchWhatWasNegotiated) {
  // Digests on a PDU when none were agreed.
  expect_error(last_outcome(Role::controller, kPlain, cmd_pdu({true, false, 0}, sqe1())),
               Violation::digest_not_negotiated, Fes::invalid_header_field, 1);
  expect_error(last_outcome(Role::controller, digests(true, false), cmd_pdu({true, true, 0}, sqe1(), pattern(16))),
               Violation::digest_not_negotiated, Fes::invalid_header_field, 1);
  // ICReq/ICResp/TermReq never carry digests.
  Bytes ic = ic_req_pdu();
  ic[1] = kFlagHdgst;
  expect_error(last_outcome(Role::controller, digests(true, true), ic, false), Violation::digest_not_negotiated,
               Fes::invalid_header_field, 1);
  Bytes term = term_pdu(Role::controller, Fes::pdu_sequence, 0, {});
  term[1] = kFlagDdgst;
  expect_error(last_outcome(Role::host, kPlain, term), Violation::digest_not_negotiated, Fes::invalid_header_field, 1);
  // Agreed digests missing.
  expect_error(last_outcome(Role::controller, digests(true, false), cmd_pdu({}, sqe1())), Violation::digest_missing,
               Fes::invalid_header_field, 1);
  expect_error(last_outcome(Role::controller, digests(false, true), cmd_pdu({}, sqe1(), pattern(16))),
               Violation::digest_missing, Fes::invalid_header_field, 1);
  expect_error(last_outcome(Role::host, digests(false, true), data_pdu(Role::controller, {}, {}, pattern(16))),
               Violation::digest_missing, Fes::invalid_header_field, 1);
}

TEST(NvmeTcpErrors, FlagsTheTypeDoesNotAllow) {
  // SUCCESS without LAST_PDU.
  Bytes b = data_pdu(Role::controller, {}, {1, 0, 0, 0, true, true}, pattern(8));
  b[1] = kFlagSuccess;
  expect_error(last_outcome(Role::host, kPlain, b), Violation::bad_flags, Fes::invalid_header_field, 1);
  // A data digest flag on PDUs without data.
  b = cmd_pdu({}, sqe1());
  b[1] = kFlagDdgst;
  expect_error(last_outcome(Role::controller, digests(false, true), b), Violation::bad_flags, Fes::invalid_header_field,
               1);
  b = r2t_pdu({}, {1, 1, 0, 512});
  b[1] = kFlagDdgst;
  expect_error(last_outcome(Role::host, digests(false, true), b), Violation::bad_flags, Fes::invalid_header_field, 1);
}

TEST(NvmeTcpErrors, DataOffset) {
  // Below the header.
  Bytes b = cmd_pdu({}, sqe1(), pattern(64));
  b[3] = 68;
  expect_error(last_outcome(Role::controller, kPlain, b), Violation::bad_pdo, Fes::invalid_header_field, 3);
  // Not on the receiver's alignment: PDO 76 (header + digest) where CPDA 1 wants 8 bytes.
  RxParams aligned = digests(true, false);
  aligned.pda = 1;
  expect_error(last_outcome(Role::controller, aligned, cmd_pdu({true, false, 0}, sqe1(), pattern(64))),
               Violation::bad_pdo, Fes::invalid_header_field, 3);
  // Past PLEN.
  b = data_pdu(Role::host, {}, {}, pattern(64));
  b[3] = 252;
  expect_error(last_outcome(Role::controller, kPlain, b), Violation::bad_pdo, Fes::invalid_header_field, 3);
}

TEST(NvmeTcpErrors, PduLength) {
  Bytes b = resp_pdu({}, {});
  set_le32(b, 4, 25);
  expect_error(last_outcome(Role::host, kPlain, b), Violation::bad_plen, Fes::invalid_header_field, 4);
  b = ic_req_pdu();
  set_le32(b, 4, 129);
  expect_error(last_outcome(Role::controller, kPlain, b, false), Violation::bad_plen, Fes::invalid_header_field, 4);
  b = term_pdu(Role::host, Fes::pdu_sequence, 0, {});
  set_le32(b, 4, 20);
  expect_error(last_outcome(Role::controller, kPlain, b), Violation::bad_plen, Fes::invalid_header_field, 4);
  b = cmd_pdu({}, sqe1());
  set_le32(b, 4, 50);  // shorter than the header
  expect_error(last_outcome(Role::controller, kPlain, b), Violation::bad_plen, Fes::invalid_header_field, 4);
  // A data PDU without data.
  b = data_pdu(Role::host, {}, {}, pattern(8));
  set_le32(b, 4, 24);
  expect_error(last_outcome(Role::controller, kPlain, b), Violation::bad_plen, Fes::invalid_header_field, 4);
  // DATAL disagrees with PLEN.
  b = data_pdu(Role::host, {}, {}, pattern(8));
  set_le32(b, 16, 9);
  expect_error(last_outcome(Role::controller, kPlain, b), Violation::bad_plen, Fes::invalid_header_field, 4);
  // Only padding between the header and the data digest.
  b = cmd_pdu({false, true, 0}, sqe1(), pattern(8));
  set_le32(b, 4, 72 + 4);
  expect_error(last_outcome(Role::controller, digests(false, true), b), Violation::bad_plen, Fes::invalid_header_field,
               4);
  // A TermReq longer than 152 bytes.
  b = term_pdu(Role::controller, Fes::pdu_sequence, 0, pattern(128));
  set_le32(b, 4, 153);
  b.push_back(0);
  expect_error(last_outcome(Role::host, kPlain, b), Violation::term_data_too_long, Fes::invalid_header_field, 4);
}

TEST(NvmeTcpErrors, Limits) {
  RxParams small;
  small.max_plen = 4096;
  expect_error(last_outcome(Role::controller, small, data_pdu(Role::host, {}, {}, pattern(8192))),
               Violation::plen_over_limit, Fes::invalid_header_field, 4);
  expect_error(last_outcome(Role::host, small, data_pdu(Role::controller, {}, {}, pattern(8192))),
               Violation::plen_over_limit, Fes::invalid_header_field, 4);
  // The bound holds before any data is read: a header claiming 4 GiB is refused at once.
  Bytes huge = data_pdu(Role::host, {}, {}, pattern(8));
  set_le32(huge, 4, 0xffffffff);
  expect_error(last_outcome(Role::controller, kPlain, huge), Violation::plen_over_limit, Fes::invalid_header_field, 4);

  RxParams maxh2c;
  maxh2c.maxh2cdata = 4096;
  expect_error(last_outcome(Role::controller, maxh2c, data_pdu(Role::host, {}, {}, pattern(4100))),
               Violation::data_over_maxh2cdata, Fes::r2t_limit_exceeded, 0);
  EXPECT_EQ(last_outcome(Role::controller, maxh2c, data_pdu(Role::host, {}, {}, pattern(4096))).state,
            State::pdu_ready);
  // MAXH2CDATA limits H2CData only; C2HData answers to max_plen alone.
  EXPECT_EQ(last_outcome(Role::host, maxh2c, data_pdu(Role::controller, {}, {}, pattern(8192))).state,
            State::pdu_ready);

  expect_error(last_outcome(Role::controller, kPlain, cmd_pdu({}, sqe1(), pattern(8193))),
               Violation::capsule_data_over_limit, Fes::invalid_header_field, 4);
  EXPECT_EQ(last_outcome(Role::controller, kPlain, cmd_pdu({}, sqe1(), pattern(8192))).state, State::pdu_ready);
}

TEST(NvmeTcpErrors, EmptyTransfers) {
  Bytes b = data_pdu(Role::host, {}, {}, pattern(8));
  set_le32(b, 16, 0);
  expect_error(last_outcome(Role::controller, kPlain, b), Violation::empty_data, Fes::invalid_header_field, 16);
  expect_error(last_outcome(Role::host, kPlain, r2t_pdu({}, {1, 1, 0, 0})), Violation::empty_data,
               Fes::invalid_header_field, 16);
}

TEST(NvmeTcpErrors, HeaderDigest) {
  for (size_t byte : {8u, 50u, 71u, 72u, 75u}) {  // SQE bytes, and the digest itself
    Bytes b = cmd_pdu({true, false, 0}, sqe1());
    b[byte] ^= 0x10;
    expect_error(last_outcome(Role::controller, digests(true, false), b), Violation::header_digest, Fes::header_digest,
                 0);
  }
  Bytes b = r2t_pdu({true, false, 0}, {1, 1, 0, 512});
  b[12] ^= 1;
  expect_error(last_outcome(Role::host, digests(true, false), b), Violation::header_digest, Fes::header_digest, 0);
}

TEST(NvmeTcpErrors, IcFields) {
  Bytes b = ic_req_pdu();
  set_le16(b, 8, 1);
  expect_error(last_outcome(Role::controller, kPlain, b, false), Violation::bad_pfv, Fes::unsupported_parameter, 8);
  b = ic_resp_pdu();
  set_le16(b, 8, 0x100);
  expect_error(last_outcome(Role::host, kPlain, b, false), Violation::bad_pfv, Fes::unsupported_parameter, 8);
  b = ic_req_pdu({0, 32, 0, 0});
  expect_error(last_outcome(Role::controller, kPlain, b, false), Violation::bad_pda, Fes::invalid_header_field, 10);
  b = ic_resp_pdu({0, 0xff, 0, 4096});
  expect_error(last_outcome(Role::host, kPlain, b, false), Violation::bad_pda, Fes::invalid_header_field, 10);
  for (uint32_t maxh2c : {0u, 1024u, 4095u, 4098u}) {
    expect_error(last_outcome(Role::host, kPlain, ic_resp_pdu({0, 0, 0, maxh2c}), false), Violation::bad_maxh2cdata,
                 Fes::invalid_header_field, 12);
  }
}

TEST(NvmeTcpErrors, CallerChecksGetTheSpecsStatus) {
  EXPECT_EQ(make_error(Violation::data_out_of_range).fes, Fes::data_out_of_range);
  EXPECT_EQ(make_error(Violation::r2t_limit_exceeded).fes, Fes::r2t_limit_exceeded);
  EXPECT_FALSE(make_error(Violation::data_digest).fatal());
  EXPECT_TRUE(make_error(Violation::none).ok());
}

// What a failed reader hands back goes into a TermReq the peer can decode, with the header
// it sent.
TEST(NvmeTcpErrors, FailureBecomesATermReq) {
  Bytes bad = cmd_pdu({}, sqe1());
  bad[2] = 24;
  PduReader controller(Role::controller, kPlain);
  const Bytes stream = concat({ic_req_pdu(), bad});
  receive_whole(controller, stream);
  ASSERT_EQ(controller.state(), State::failed);
  EXPECT_EQ(Bytes(controller.raw_header().begin(), controller.raw_header().end()), Bytes(bad.begin(), bad.begin() + 8));
  const PduError e = controller.error();
  const Bytes term =
      term_pdu(Role::controller, e.fes, e.fei, Bytes(controller.raw_header().begin(), controller.raw_header().end()));

  PduReader host(Role::host, kPlain);
  const auto got = receive_whole(host, concat({ic_resp_pdu(), term}));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].pdu.type, PduType::c2h_term_req);
  EXPECT_EQ(got[1].pdu.term.fes, uint16_t(Fes::invalid_header_field));
  EXPECT_EQ(got[1].pdu.term.fei, 2u);
  EXPECT_EQ(got[1].data, Bytes(bad.begin(), bad.begin() + 8));
}

// Garbage never crashes, never reads past what it is given, and ends in a clean state.
TEST(NvmeTcpErrors, RandomBytes) {
  std::mt19937 rng(7);
  for (int round = 0; round < 2000; ++round) {
    Bytes stream = round % 2 ? ic_req_pdu() : ic_resp_pdu();
    const size_t n = rng() % 400;
    for (size_t i = 0; i < n; ++i) stream.push_back(static_cast<uint8_t>(rng()));
    if (round % 3 == 0 && stream.size() > 140) stream[128] = static_cast<uint8_t>(rng() % 10);  // a valid type
    PduReader rx(round % 2 ? Role::controller : Role::host, digests(round & 4, round & 8));
    const auto got = receive(rx, stream, [&](size_t) { return 1 + rng() % 64; });
    for (const Received& r : got) {
      if (r.state == State::failed) {
        EXPECT_TRUE(r.error.fatal());
      }
    }
  }
}

}  // namespace
}  // namespace sluice::nvme::tcp
