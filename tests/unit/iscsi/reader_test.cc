// The streaming reader: well-formed streams in every digest mode, fed whole, one byte at a
// time, split in two at every byte boundary and received through data_window(); digest
// errors, oversized segments, skipped (rejected) PDUs and the buffer rules.
#include "target/iscsi/pdu_reader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "test_util.h"

namespace sluice::iscsi {
namespace {

using namespace testing;
using State = PduReader::State;

struct Got {
  State state;
  Pdu pdu;
  Bytes data;
  Violation what = Violation::none;
};

// Feeds `stream` in pieces of `split` (0: whole; a vector of cut points otherwise) and
// collects what comes out. Data-Out and SCSI Command data go to a caller buffer (through
// data_window() when `window`), the rest to the internal buffer.
std::vector<Got> read_all(const Bytes& stream, const RxParams& rx, const std::vector<size_t>& cuts, bool window = false,
                          Role role = Role::target) {
  PduReader r(role, rx);
  std::vector<Got> out;
  Bytes buffer;
  bool external = false;
  size_t at = 0, cut = 0;
  while (at < stream.size()) {
    const size_t end = cut < cuts.size() ? cuts[cut] : stream.size();
    if (at >= end) {
      ++cut;
      continue;
    }
    const std::span<uint8_t> w = r.data_window();
    if (window && !w.empty()) {
      const size_t n = std::min(w.size(), end - at);
      std::memcpy(w.data(), stream.data() + at, n);
      r.data_received(n);
      at += n;
    } else {
      at += r.feed(std::span(stream).subspan(at, end - at));
    }
    switch (r.state()) {
      case State::reading: break;
      case State::need_buffer: {
        const Opcode op = r.pdu().opcode;
        external = op == Opcode::data_out || op == Opcode::scsi_command || op == Opcode::data_in;
        if (external) {
          buffer.assign(r.pdu().data_length, 0xcc);
          EXPECT_TRUE(r.set_data_buffer(buffer));
        } else {
          EXPECT_TRUE(r.use_internal_buffer());
        }
        EXPECT_EQ(r.state(), State::reading);
        break;
      }
      case State::pdu_ready:
      case State::rejected:
      case State::data_digest_error: {
        Got g{r.state(), r.pdu(), {}, r.error().what};
        if (r.state() == State::pdu_ready && r.pdu().data_length > 0) {
          if (external) {
            g.data = buffer;
          } else {
            g.data.assign(r.data().begin(), r.data().end());
          }
        }
        external = false;
        out.push_back(std::move(g));
        break;
      }
      case State::failed: out.push_back({State::failed, r.pdu(), {}, r.error().what}); return out;
    }
  }
  EXPECT_EQ(r.bytes_wanted() == 0 || r.state() == State::reading, true);
  return out;
}

struct Mode {
  bool hd, dd;
};

Bytes login_text() { return text_bytes(std::string("InitiatorName=iqn.2026-12.test:i\0SessionType=Normal\0", 50)); }

// An initiator's session: login, a write with immediate data, its Data-Out (odd length:
// padding), a NOP-Out, a text request, a read with an extended CDB, a logout.
Bytes initiator_stream(const TxParams& tx) {
  Bytes s;
  LoginRequest l;
  l.transit = true;
  l.csg = 1;
  l.nsg = 3;
  l.itt = 1;
  append_pdu(s, tx, l, login_text());
  ScsiCommand w;
  w.write = true;
  w.itt = 2;
  w.expected_data_length = 9000;
  w.cdb[0] = 0x2a;
  append_pdu(s, tx, w, pattern(1000, 1));
  DataOut d;
  d.final = true;
  d.itt = 2;
  d.buffer_offset = 1000;
  append_pdu(s, tx, d, pattern(8000 - 3, 2));
  append_pdu(s, tx, NopOut{true, 0, 3, kReservedTag, 4, 5});
  TextRequest t;
  t.itt = 4;
  append_pdu(s, tx, t, text_bytes(std::string("SendTargets=All\0", 16)));
  ScsiCommand r;
  r.read = true;
  r.itt = 5;
  Ahs ahs;
  ahs.extended_cdb_length = 16;
  ahs.extended_cdb[15] = 0x42;
  append_pdu(s, tx, r, {}, &ahs);
  append_pdu(s, tx, LogoutRequest{false, 0, 0, 6, 7, 8});
  return s;
}

void check_initiator_stream(const std::vector<Got>& got) {
  ASSERT_EQ(got.size(), 7u);
  for (const Got& g : got) EXPECT_EQ(g.state, State::pdu_ready) << violation_name(g.what);
  EXPECT_EQ(got[0].pdu.opcode, Opcode::login_request);
  EXPECT_EQ(got[0].data, login_text());
  EXPECT_TRUE(std::get<LoginRequest>(got[0].pdu.header).transit);
  EXPECT_EQ(got[1].pdu.opcode, Opcode::scsi_command);
  EXPECT_EQ(got[1].data, pattern(1000, 1));
  EXPECT_EQ(std::get<ScsiCommand>(got[1].pdu.header).expected_data_length, 9000u);
  EXPECT_EQ(got[2].pdu.opcode, Opcode::data_out);
  EXPECT_EQ(got[2].data, pattern(7997, 2));
  EXPECT_EQ(std::get<DataOut>(got[2].pdu.header).buffer_offset, 1000u);
  EXPECT_EQ(got[3].pdu.opcode, Opcode::nop_out);
  EXPECT_EQ(std::get<NopOut>(got[3].pdu.header).cmd_sn, 4u);
  EXPECT_EQ(got[4].pdu.opcode, Opcode::text_request);
  EXPECT_EQ(got[4].data.size(), 16u);
  EXPECT_EQ(got[5].pdu.opcode, Opcode::scsi_command);
  EXPECT_EQ(got[5].pdu.ahs.extended_cdb_length, 16);
  EXPECT_EQ(got[5].pdu.ahs.extended_cdb[15], 0x42);
  EXPECT_EQ(got[6].pdu.opcode, Opcode::logout_request);
}

class ReaderModes : public ::testing::TestWithParam<Mode> {};

TEST_P(ReaderModes, WholeAndBytewiseAndWindow) {
  const Mode m = GetParam();
  const RxParams rx{m.hd, m.dd, 8192, 264};
  const Bytes s = initiator_stream({m.hd, m.dd});
  check_initiator_stream(read_all(s, rx, {}));
  std::vector<size_t> every;
  for (size_t i = 1; i < s.size(); ++i) every.push_back(i);
  check_initiator_stream(read_all(s, rx, every));
  check_initiator_stream(read_all(s, rx, every, true));
  check_initiator_stream(read_all(s, rx, {}, true));
}

TEST_P(ReaderModes, SplitInTwoAtEveryByteBoundary) {
  const Mode m = GetParam();
  const RxParams rx{m.hd, m.dd, 8192, 264};
  const Bytes s = initiator_stream({m.hd, m.dd});
  for (size_t cut = 1; cut < s.size(); ++cut) {
    const auto got = read_all(s, rx, {cut}, cut % 2 == 0);
    ASSERT_NO_FATAL_FAILURE(check_initiator_stream(got)) << "cut at " << cut;
    if (::testing::Test::HasFailure()) FAIL() << "cut at " << cut;
  }
}

INSTANTIATE_TEST_SUITE_P(Digests, ReaderModes,
                         ::testing::Values(Mode{false, false}, Mode{true, false}, Mode{false, true}, Mode{true, true}),
                         [](const auto& param_info) {
                           return std::string(param_info.param.hd ? "Hd" : "NoHd") +
                                  (param_info.param.dd ? "Dd" : "NoDd");
                         });

TEST(IscsiReader, InitiatorRoleReadsTargetPdus) {
  const TxParams tx{true, true};
  Bytes s;
  DataIn d;
  d.final = d.has_status = true;
  d.itt = 9;
  append_pdu(s, tx, d, pattern(4099, 5));
  ScsiResponse r;
  r.status = 2;
  append_pdu(s, tx, r, pattern(18, 6));
  append_pdu(s, tx, R2t{0, 1, 2, 3, 4, 5, 6, 7, 8});
  const auto got = read_all(s, {true, true, 8192, 0}, {}, false, Role::initiator);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].data, pattern(4099, 5));
  EXPECT_EQ(std::get<DataIn>(got[0].pdu.header).itt, 9u);
  EXPECT_EQ(got[1].data, pattern(18, 6));
  EXPECT_EQ(std::get<R2t>(got[2].pdu.header).desired_length, 8u);
}

TEST(IscsiReader, HeaderDigestErrorIsFatal) {
  Bytes s = pdu_bytes({true, false}, NopOut{});
  s[20] ^= 1;
  const auto got = read_all(s, {true, false, 8192, 264}, {});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].state, State::failed);
  EXPECT_EQ(got[0].what, Violation::header_digest);
  // A reader expecting digests that gets none reads data as the digest: also fatal.
  PduReader r(Role::target, {true, false, 8192, 264});
  const Bytes two = initiator_stream({false, false});
  r.feed(two);
  EXPECT_EQ(r.state(), State::failed);
  EXPECT_FALSE(r.error().message.empty());
  EXPECT_EQ(r.feed(two), 0u);  // nothing more once failed
}

TEST(IscsiReader, DataDigestErrorIsNotFatal) {
  const TxParams tx{false, true};
  Bytes s;
  DataOut d;
  d.final = true;
  append_pdu(s, tx, d, pattern(513, 1));
  s[kBhsSize + 100] ^= 0x10;
  append_pdu(s, tx, NopOut{});
  const auto got = read_all(s, {false, true, 8192, 264}, {});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].state, State::data_digest_error);
  EXPECT_EQ(got[0].what, Violation::data_digest);
  EXPECT_EQ(got[1].state, State::pdu_ready);
  EXPECT_EQ(got[1].pdu.opcode, Opcode::nop_out);

  // A corrupt padding byte is caught too: the digest covers it.
  Bytes p = pdu_bytes(tx, d, pattern(5, 1));
  p[kBhsSize + 6] = 1;
  EXPECT_EQ(read_all(p, {false, true, 8192, 264}, {})[0].state, State::data_digest_error);
}

TEST(IscsiReader, OversizedSegmentFails) {
  DataOut d;
  const Bytes s = pdu_bytes({}, d, pattern(9000, 1));
  const auto got = read_all(s, {false, false, 8192, 264}, {});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].state, State::failed);
  EXPECT_EQ(got[0].what, Violation::data_over_limit);
}

TEST(IscsiReader, RejectedPduIsSkippedWhole) {
  const TxParams tx{true, true};
  Bytes s = pdu_bytes(tx, NopOut{}, pattern(10, 1));
  s[0] = 0x1d;  // a vendor-specific opcode, with its digest fixed up
  put_digest(&s[kBhsSize], header_digest(std::span(s).first(kBhsSize)));
  const Bytes skipped_bhs(s.begin(), s.begin() + kBhsSize);
  append_pdu(s, tx, ScsiResponse{});  // wrong direction: also skipped
  append_pdu(s, tx, NopOut{false, 0, 77, kReservedTag, 1, 2}, pattern(3, 3));
  PduReader r(Role::target, {true, true, 8192, 264});
  size_t at = r.feed(s);
  ASSERT_EQ(r.state(), State::rejected);
  EXPECT_EQ(r.error().what, Violation::unknown_opcode);
  EXPECT_EQ(r.error().reason, RejectReason::command_not_supported);
  EXPECT_EQ(Bytes(r.bhs().begin(), r.bhs().end()), skipped_bhs);
  at += r.feed(std::span(s).subspan(at));
  ASSERT_EQ(r.state(), State::rejected);
  EXPECT_EQ(r.error().what, Violation::wrong_direction);
  at += r.feed(std::span(s).subspan(at));
  ASSERT_EQ(r.state(), State::need_buffer);
  ASSERT_TRUE(r.use_internal_buffer());
  at += r.feed(std::span(s).subspan(at));
  ASSERT_EQ(r.state(), State::pdu_ready);
  EXPECT_EQ(at, s.size());
  EXPECT_EQ(std::get<NopOut>(r.pdu().header).itt, 77u);
  EXPECT_EQ(Bytes(r.data().begin(), r.data().end()), pattern(3, 3));
}

TEST(IscsiReader, BufferRules) {
  const Bytes s = pdu_bytes({}, DataOut{}, pattern(100, 1));
  PduReader r(Role::target, {}, 64);
  r.feed(std::span(s).first(kBhsSize));
  ASSERT_EQ(r.state(), State::need_buffer);
  EXPECT_EQ(r.data_window().size(), 0u);
  EXPECT_EQ(r.bytes_wanted(), 0u);
  Bytes wrong(99);
  EXPECT_FALSE(r.set_data_buffer(wrong));
  EXPECT_FALSE(r.use_internal_buffer());  // 100 > capacity 64
  EXPECT_EQ(r.state(), State::need_buffer);
  r.discard_data();
  EXPECT_EQ(r.state(), State::reading);
  EXPECT_EQ(r.bytes_wanted(), 100u);
  EXPECT_EQ(r.data_window().size(), 0u);  // discarding: feed() it
  r.feed(std::span(s).subspan(kBhsSize));
  EXPECT_EQ(r.state(), State::pdu_ready);
  EXPECT_TRUE(r.data().empty());
}

TEST(IscsiReader, DigestsStartAfterLogin) {
  // Login PDUs go without digests; the parameters agreed apply from the next PDU on.
  Bytes s = pdu_bytes({}, LoginRequest{}, login_text());
  const size_t login_end = s.size();
  append_pdu(s, {true, true}, NopOut{false, 0, 5, kReservedTag, 1, 1}, pattern(6, 1));
  PduReader r(Role::target, {});
  size_t at = r.feed(s);
  ASSERT_EQ(r.state(), State::need_buffer);
  ASSERT_TRUE(r.use_internal_buffer());
  at += r.feed(std::span(s).subspan(at));
  ASSERT_EQ(r.state(), State::pdu_ready);
  EXPECT_EQ(at, login_end);
  r.set_params({true, true, 65536, 264});
  at += r.feed(std::span(s).subspan(at));
  ASSERT_EQ(r.state(), State::need_buffer);
  ASSERT_TRUE(r.use_internal_buffer());
  at += r.feed(std::span(s).subspan(at));
  ASSERT_EQ(r.state(), State::pdu_ready);
  EXPECT_EQ(at, s.size());
  EXPECT_EQ(std::get<NopOut>(r.pdu().header).itt, 5u);
}

TEST(IscsiReader, BytesWantedStopsAtEachStage) {
  const TxParams tx{true, true};
  const Bytes s = pdu_bytes(tx, DataOut{}, pattern(5, 1));
  PduReader r(Role::target, {true, true, 8192, 264});
  EXPECT_EQ(r.bytes_wanted(), kBhsSize);
  r.feed(std::span(s).first(kBhsSize));
  EXPECT_EQ(r.bytes_wanted(), kDigestSize);
  r.feed(std::span(s).subspan(kBhsSize, 4));
  ASSERT_EQ(r.state(), State::need_buffer);
  Bytes buf(5);
  ASSERT_TRUE(r.set_data_buffer(buf));
  EXPECT_EQ(r.bytes_wanted(), 5u);
  std::memcpy(r.data_window().data(), &s[52], 5);
  r.data_received(5);
  EXPECT_EQ(r.bytes_wanted(), 3u);  // padding
  r.feed(std::span(s).subspan(57, 3));
  EXPECT_EQ(r.bytes_wanted(), 4u);  // data digest
  r.feed(std::span(s).subspan(60));
  EXPECT_EQ(r.state(), State::pdu_ready);
  EXPECT_EQ(buf, pattern(5, 1));
}

}  // namespace
}  // namespace sluice::iscsi
