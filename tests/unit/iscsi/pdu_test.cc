// The BHS codec: byte layouts of built PDUs against RFC 7143's field offsets, decode(encode)
// round trips for every opcode, the header checks, the AHS, LUNs, digests and padding.
#include "target/iscsi/pdu.h"

#include <gtest/gtest.h>

#include <cstring>

#include "test_util.h"

namespace sluice::iscsi {
namespace {

using namespace testing;

Bytes header_of(const Header& h, uint32_t data_length = 0, const Ahs* ahs = nullptr, bool hdgst = false) {
  uint8_t b[kMaxHeaderSize];
  const size_t n = build_header(b, {hdgst, false}, h, data_length, ahs);
  return Bytes(b, b + n);
}

Pdu decode_ok(const Bytes& b, Role receiver, RxParams rx = {}) {
  Pdu p;
  const PduError e = decode_bhs(b.data(), receiver, rx, p);
  EXPECT_TRUE(e.ok()) << e.message;
  return p;
}

// ---- Digests: RFC 3720 B.4 / RFC 7143 test vectors -----------------------------------------

TEST(IscsiDigest, RfcVectors) {
  EXPECT_EQ(data_digest(Bytes(32, 0x00)), 0x8a9136aau);
  EXPECT_EQ(data_digest(Bytes(32, 0xff)), 0x62a8ab43u);
  Bytes inc(32), dec(32);
  for (int i = 0; i < 32; ++i) inc[i] = uint8_t(i), dec[i] = uint8_t(31 - i);
  EXPECT_EQ(data_digest(inc), 0x46dd794eu);
  EXPECT_EQ(data_digest(dec), 0x113fdb5cu);
  // The SCSI Read(10) Command PDU of the same appendix, as a header digest.
  const Bytes read10 = {0x01, 0xc0, 0, 0,    0, 0, 0, 0,    0,    0, 0, 0, 0, 0, 0, 0, 0x14, 0, 0, 0, 0, 0, 0x04, 0,
                        0,    0,    0, 0x14, 0, 0, 0, 0x18, 0x28, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0,    0};
  EXPECT_EQ(header_digest(read10), 0xd9963a56u);
}

TEST(IscsiDigest, WireOrderIsLittleEndian) {
  uint8_t b[4];
  put_digest(b, 0x8a9136aa);
  EXPECT_EQ(b[0], 0xaa);
  EXPECT_EQ(b[1], 0x36);
  EXPECT_EQ(b[2], 0x91);
  EXPECT_EQ(b[3], 0x8a);
  EXPECT_EQ(get_digest(b), 0x8a9136aau);
}

TEST(IscsiDigest, DataDigestCoversPaddingAndChains) {
  const Bytes d = pattern(5, 3);
  Bytes padded = d;
  padded.resize(8, 0);
  EXPECT_EQ(data_digest(d), data_digest(padded));  // 8 bytes need no padding
  uint32_t crc = extend_data_digest(0, std::span(d).first(2));
  crc = extend_data_digest(crc, std::span(d).subspan(2));
  EXPECT_EQ(finish_data_digest(crc, d.size()), data_digest(d));
}

TEST(IscsiPdu, Padding) {
  EXPECT_EQ(padding_length(0), 0u);
  EXPECT_EQ(padding_length(1), 3u);
  EXPECT_EQ(padding_length(3), 1u);
  EXPECT_EQ(padding_length(4), 0u);
  EXPECT_EQ(padding_length(4097), 3u);
}

// ---- Layouts ----------------------------------------------------------------------------------

TEST(IscsiLayout, ScsiCommand) {
  ScsiCommand c;
  c.immediate = true;
  c.final = true;
  c.read = true;
  c.attr = uint8_t(TaskAttr::ordered);
  c.lun = lun_from_index(3);
  c.itt = 0x11223344;
  c.expected_data_length = 0x10000;
  c.cmd_sn = 0x55;
  c.exp_stat_sn = 0x66;
  c.cdb[0] = 0x28;
  c.cdb[15] = 0xee;
  const Bytes b = header_of(c, 0x123456);
  ASSERT_EQ(b.size(), kBhsSize);
  EXPECT_EQ(b[0], 0x41);  // I | 0x01
  EXPECT_EQ(b[1], 0x80 | 0x40 | 0x02);
  EXPECT_EQ(b[4], 0);
  EXPECT_EQ(b[5], 0x12);
  EXPECT_EQ(b[6], 0x34);
  EXPECT_EQ(b[7], 0x56);
  EXPECT_EQ(be64(&b[8]), 0x0003000000000000ull);
  EXPECT_EQ(be32(&b[16]), 0x11223344u);
  EXPECT_EQ(be32(&b[20]), 0x10000u);
  EXPECT_EQ(be32(&b[24]), 0x55u);
  EXPECT_EQ(be32(&b[28]), 0x66u);
  EXPECT_EQ(b[32], 0x28);
  EXPECT_EQ(b[47], 0xee);
}

TEST(IscsiLayout, LoginRequestAndResponse) {
  LoginRequest r;
  r.transit = true;
  r.csg = 1;
  r.nsg = 3;
  r.version_max = 0;
  r.version_min = 0;
  const uint8_t isid[6] = {0x80, 1, 2, 3, 4, 5};
  std::memcpy(r.isid, isid, 6);
  r.tsih = 0x0102;
  r.itt = 7;
  r.cid = 0x0a0b;
  r.cmd_sn = 9;
  r.exp_stat_sn = 10;
  Bytes b = header_of(r, 100);
  EXPECT_EQ(b[0], 0x43);  // the I bit is always set on a Login Request
  EXPECT_EQ(b[1], 0x80 | 0x04 | 0x03);
  EXPECT_EQ(std::memcmp(&b[8], isid, 6), 0);
  EXPECT_EQ(be16(&b[14]), 0x0102);
  EXPECT_EQ(be16(&b[20]), 0x0a0b);
  EXPECT_EQ(be32(&b[24]), 9u);
  EXPECT_EQ(be32(&b[28]), 10u);

  LoginResponse s;
  s.cont = true;
  s.csg = 0;
  s.nsg = 1;
  s.version_max = 0;
  s.version_active = 0;
  s.tsih = 0x33;
  s.itt = 7;
  s.stat_sn = 1;
  s.exp_cmd_sn = 2;
  s.max_cmd_sn = 3;
  s.status_class = 2;
  s.status_detail = 1;
  b = header_of(s);
  EXPECT_EQ(b[0], 0x23);
  EXPECT_EQ(b[1], 0x40 | 0x01);
  EXPECT_EQ(be16(&b[14]), 0x33);
  EXPECT_EQ(be32(&b[24]), 1u);
  EXPECT_EQ(be32(&b[28]), 2u);
  EXPECT_EQ(be32(&b[32]), 3u);
  EXPECT_EQ(b[36], 2);
  EXPECT_EQ(b[37], 1);
}

TEST(IscsiLayout, DataInWithStatus) {
  DataIn d;
  d.final = true;
  d.ack = true;
  d.underflow = true;
  d.has_status = true;
  d.status = 0x02;
  d.itt = 1;
  d.ttt = 2;
  d.stat_sn = 3;
  d.exp_cmd_sn = 4;
  d.max_cmd_sn = 5;
  d.data_sn = 6;
  d.buffer_offset = 0x8000;
  d.residual = 512;
  const Bytes b = header_of(d, 4096);
  EXPECT_EQ(b[0], 0x25);
  EXPECT_EQ(b[1], 0x80 | 0x40 | 0x02 | 0x01);
  EXPECT_EQ(b[3], 0x02);
  EXPECT_EQ(be32(&b[20]), 2u);
  EXPECT_EQ(be32(&b[36]), 6u);
  EXPECT_EQ(be32(&b[40]), 0x8000u);
  EXPECT_EQ(be32(&b[44]), 512u);
  EXPECT_EQ(b[6], 0x10);  // 4096 = 0x001000
}

TEST(IscsiLayout, ResponsesR2tRejectLogout) {
  ScsiResponse r;
  r.overflow = true;
  r.bidi_underflow = true;
  r.response = 0x01;
  r.status = 0x02;
  r.itt = 9;
  r.exp_data_sn = 4;
  r.bidi_read_residual = 5;
  r.residual = 6;
  Bytes b = header_of(r);
  EXPECT_EQ(b[0], 0x21);
  EXPECT_EQ(b[1], 0x80 | 0x08 | 0x04);
  EXPECT_EQ(b[2], 0x01);
  EXPECT_EQ(b[3], 0x02);
  EXPECT_EQ(be32(&b[36]), 4u);
  EXPECT_EQ(be32(&b[40]), 5u);
  EXPECT_EQ(be32(&b[44]), 6u);

  R2t t;
  t.lun = lun_from_index(1);
  t.itt = 1;
  t.ttt = 0xabcd;
  t.r2t_sn = 2;
  t.buffer_offset = 65536;
  t.desired_length = 131072;
  b = header_of(t);
  EXPECT_EQ(b[0], 0x31);
  EXPECT_EQ(b[1], 0x80);
  EXPECT_EQ(be32(&b[20]), 0xabcdu);
  EXPECT_EQ(be32(&b[36]), 2u);
  EXPECT_EQ(be32(&b[40]), 65536u);
  EXPECT_EQ(be32(&b[44]), 131072u);

  Reject j;
  j.reason = RejectReason::data_digest;
  j.data_sn = 12;
  b = header_of(j, 48);
  EXPECT_EQ(b[0], 0x3f);
  EXPECT_EQ(b[1], 0x80);
  EXPECT_EQ(b[2], 0x02);
  EXPECT_EQ(be32(&b[16]), 0xffffffffu);
  EXPECT_EQ(be32(&b[36]), 12u);
  EXPECT_EQ(b[7], 48);

  LogoutResponse l;
  l.response = 1;
  l.time2wait = 2;
  l.time2retain = 20;
  b = header_of(l);
  EXPECT_EQ(b[0], 0x26);
  EXPECT_EQ(b[2], 1);
  EXPECT_EQ(be16(&b[40]), 2);
  EXPECT_EQ(be16(&b[42]), 20);

  AsyncMessage a;
  a.async_event = 4;
  a.async_vcode = 5;
  a.parameter1 = 0x0102;
  a.parameter2 = 0x0304;
  a.parameter3 = 0x0506;
  b = header_of(a);
  EXPECT_EQ(b[36], 4);
  EXPECT_EQ(b[37], 5);
  EXPECT_EQ(be16(&b[38]), 0x0102);
  EXPECT_EQ(be16(&b[40]), 0x0304);
  EXPECT_EQ(be16(&b[42]), 0x0506);
}

TEST(IscsiLayout, InitiatorRequests) {
  TaskMgmtRequest t;
  t.function = 5;
  t.referenced_task_tag = 0x77;
  t.ref_cmd_sn = 8;
  t.exp_data_sn = 9;
  Bytes b = header_of(t);
  EXPECT_EQ(b[0], 0x42);
  EXPECT_EQ(b[1], 0x85);
  EXPECT_EQ(be32(&b[20]), 0x77u);
  EXPECT_EQ(be32(&b[32]), 8u);
  EXPECT_EQ(be32(&b[36]), 9u);

  DataOut d;
  d.final = true;
  d.ttt = 3;
  d.exp_stat_sn = 4;
  d.data_sn = 5;
  d.buffer_offset = 6;
  b = header_of(d, 8192);
  EXPECT_EQ(b[0], 0x05);
  EXPECT_EQ(b[1], 0x80);
  EXPECT_EQ(be32(&b[20]), 3u);
  EXPECT_EQ(be32(&b[24]), 0u);  // reserved
  EXPECT_EQ(be32(&b[28]), 4u);
  EXPECT_EQ(be32(&b[36]), 5u);
  EXPECT_EQ(be32(&b[40]), 6u);

  SnackRequest s;
  s.type = 1;
  s.beg_run = 10;
  s.run_length = 11;
  b = header_of(s);
  EXPECT_EQ(b[0], 0x10);
  EXPECT_EQ(b[1], 0x81);
  EXPECT_EQ(be32(&b[40]), 10u);
  EXPECT_EQ(be32(&b[44]), 11u);

  LogoutRequest l;
  l.immediate = true;
  l.reason = 1;
  l.cid = 0x0203;
  b = header_of(l);
  EXPECT_EQ(b[0], 0x46);
  EXPECT_EQ(b[1], 0x81);
  EXPECT_EQ(be16(&b[20]), 0x0203);

  TextRequest x;
  x.final = false;
  x.cont = true;
  x.ttt = 0x99;
  b = header_of(x, 10);
  EXPECT_EQ(b[0], 0x04);
  EXPECT_EQ(b[1], 0x40);
  EXPECT_EQ(be32(&b[20]), 0x99u);
}

TEST(IscsiLayout, HeaderDigestFollowsTheHeader) {
  NopOut n;
  n.itt = 5;
  const Bytes b = header_of(n, 0, nullptr, true);
  ASSERT_EQ(b.size(), kBhsSize + kDigestSize);
  EXPECT_EQ(get_digest(&b[kBhsSize]), header_digest(std::span(b).first(kBhsSize)));
}

// ---- Round trips ----------------------------------------------------------------------------

template <typename T>
void expect_round_trip(const T& h, Role receiver) {
  const Bytes b = header_of(h, 0);
  const Pdu p = decode_ok(b, receiver);
  EXPECT_EQ(p.opcode, header_opcode(h));
  ASSERT_TRUE(std::holds_alternative<T>(p.header)) << opcode_name(uint8_t(p.opcode));
  EXPECT_TRUE(std::get<T>(p.header) == h) << opcode_name(uint8_t(p.opcode));
  // And once more through the encoder: the bytes are the same.
  EXPECT_EQ(header_of(p.header, 0), b);
}

TEST(IscsiRoundTrip, EveryOpcode) {
  const Role T = Role::target, I = Role::initiator;
  expect_round_trip(NopOut{true, 0x0001000000000000ull, 1, 2, 3, 4}, T);
  ScsiCommand c{false, true, true, true, 4, lun_from_index(1000), 5, 6, 7, 8, {}};
  for (int i = 0; i < 16; ++i) c.cdb[i] = uint8_t(0xa0 + i);
  expect_round_trip(c, T);
  expect_round_trip(TaskMgmtRequest{true, 0x7f, 1, 2, 3, 4, 5, 6, 7}, T);
  LoginRequest l{false, true, 1, 0, 2, 1, {1, 2, 3, 4, 5, 6}, 7, 8, 9, 10, 11};
  expect_round_trip(l, T);
  expect_round_trip(TextRequest{true, false, true, 1, 2, 3, 4, 5}, T);
  expect_round_trip(DataOut{true, 1, 2, 3, 4, 5, 6}, T);
  expect_round_trip(LogoutRequest{false, 2, 3, 4, 5, 6}, T);
  expect_round_trip(SnackRequest{3, 1, 2, 3, 4, 5, 6}, T);
  expect_round_trip(NopIn{1, 2, 3, 4, 5, 6}, I);
  expect_round_trip(ScsiResponse{true, false, false, true, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, I);
  expect_round_trip(TaskMgmtResponse{5, 1, 2, 3, 4}, I);
  expect_round_trip(LoginResponse{true, false, 1, 3, 0, 0, {6, 5, 4, 3, 2, 1}, 9, 8, 7, 6, 5, 3, 2}, I);
  expect_round_trip(TextResponse{false, true, 1, 2, 3, 4, 5, 6}, I);
  expect_round_trip(DataIn{true, true, true, false, true, 0x30, 1, 2, 3, 4, 5, 6, 7, 8, 9}, I);
  expect_round_trip(LogoutResponse{2, 1, 2, 3, 4, 5, 6}, I);
  expect_round_trip(R2t{1, 2, 3, 4, 5, 6, 7, 8, 9}, I);
  expect_round_trip(AsyncMessage{1, kReservedTag, 2, 3, 4, 5, 6, 7, 8, 9}, I);
  expect_round_trip(Reject{RejectReason::invalid_pdu_field, kReservedTag, 1, 2, 3, 4}, I);
}

TEST(IscsiRoundTrip, AhsExtendedCdbAndBidi) {
  ScsiCommand c;
  c.read = c.write = true;
  Ahs ahs;
  ahs.extended_cdb_length = 17;  // a 33-byte CDB
  for (int i = 0; i < 17; ++i) ahs.extended_cdb[i] = uint8_t(i + 1);
  ahs.bidi_read_length = 0x01020304;
  const Bytes b = header_of(c, 0, &ahs);
  // Extended CDB: 4 + 17 padded to 24; bidi: 8.
  ASSERT_EQ(b.size(), kBhsSize + 32);
  EXPECT_EQ(b[4], 8);  // TotalAHSLength in words
  EXPECT_EQ(be16(&b[48]), 18);
  EXPECT_EQ(b[50], 1);
  EXPECT_EQ(be16(&b[72]), 5);
  EXPECT_EQ(b[74], 2);
  EXPECT_EQ(be32(&b[76]), 0x01020304u);
  Pdu p = decode_ok(b, Role::target);
  EXPECT_EQ(p.ahs_length, 32u);
  ASSERT_TRUE(decode_ahs(&b[kBhsSize], p).ok());
  EXPECT_TRUE(p.ahs == ahs);
}

TEST(IscsiRoundTrip, MalformedAhs) {
  Pdu p;
  p.opcode = Opcode::scsi_command;
  p.ahs_length = 8;
  const uint8_t too_long[8] = {0, 9, 1, 0, 1, 2, 3, 4};
  EXPECT_EQ(decode_ahs(too_long, p).what, Violation::bad_ahs);
  const uint8_t unknown_type[8] = {0, 5, 9, 0, 1, 2, 3, 4};
  EXPECT_EQ(decode_ahs(unknown_type, p).what, Violation::bad_ahs);
  const uint8_t bidi_short[8] = {0, 4, 2, 0, 1, 2, 3, 0};
  EXPECT_EQ(decode_ahs(bidi_short, p).what, Violation::bad_ahs);
  const uint8_t zero_len[8] = {0, 0, 1, 0, 0, 0, 0, 0};
  EXPECT_EQ(decode_ahs(zero_len, p).what, Violation::bad_ahs);
}

// ---- Header checks ----------------------------------------------------------------------------

TEST(IscsiDecode, UnknownAndWrongDirection) {
  Bytes b = header_of(NopOut{});
  b[0] = 0x07;
  Pdu p;
  PduError e = decode_bhs(b.data(), Role::target, {}, p);
  EXPECT_EQ(e.what, Violation::unknown_opcode);
  EXPECT_EQ(e.reason, RejectReason::command_not_supported);
  EXPECT_FALSE(e.fatal());
  EXPECT_NE(e.message.find("0x07"), std::string::npos) << e.message;
  b[0] = 0x1c;  // vendor-specific
  EXPECT_EQ(decode_bhs(b.data(), Role::target, {}, p).what, Violation::unknown_opcode);

  e = decode_bhs(header_of(ScsiResponse{}).data(), Role::target, {}, p);
  EXPECT_EQ(e.what, Violation::wrong_direction);
  EXPECT_NE(e.message.find("SCSI Response"), std::string::npos) << e.message;
  e = decode_bhs(header_of(ScsiCommand{}).data(), Role::initiator, {}, p);
  EXPECT_EQ(e.what, Violation::wrong_direction);
}

TEST(IscsiDecode, Limits) {
  RxParams rx;
  rx.max_recv_data_segment_length = 8192;
  Pdu p;
  PduError e = decode_bhs(header_of(DataOut{}, 8193).data(), Role::target, rx, p);
  EXPECT_EQ(e.what, Violation::data_over_limit);
  EXPECT_TRUE(e.fatal());
  EXPECT_NE(e.message.find("8193"), std::string::npos) << e.message;
  EXPECT_TRUE(decode_bhs(header_of(DataOut{}, 8192).data(), Role::target, rx, p).ok());

  Bytes b = header_of(ScsiCommand{});
  b[4] = 67;  // 268 bytes
  e = decode_bhs(b.data(), Role::target, rx, p);
  EXPECT_EQ(e.what, Violation::ahs_too_long);
  EXPECT_TRUE(e.fatal());
  b[4] = 66;
  EXPECT_TRUE(decode_bhs(b.data(), Role::target, rx, p).ok());
}

TEST(IscsiDecode, FieldChecks) {
  Pdu p;
  EXPECT_EQ(decode_bhs(header_of(TaskMgmtRequest{}, 4).data(), Role::target, {}, p).what, Violation::unexpected_data);
  EXPECT_EQ(decode_bhs(header_of(R2t{}, 4).data(), Role::initiator, {}, p).what, Violation::unexpected_data);
  LoginRequest l;
  l.transit = l.cont = true;
  PduError e = decode_bhs(header_of(l).data(), Role::target, {}, p);
  EXPECT_EQ(e.what, Violation::bad_field);
  EXPECT_FALSE(e.fatal());
  l.cont = false;
  l.nsg = 2;
  EXPECT_EQ(decode_bhs(header_of(l).data(), Role::target, {}, p).what, Violation::bad_field);
  TextRequest t;
  t.final = t.cont = true;
  EXPECT_EQ(decode_bhs(header_of(t).data(), Role::target, {}, p).what, Violation::bad_field);
  Bytes b = header_of(NopOut{});
  b[4] = 1;
  EXPECT_EQ(decode_bhs(b.data(), Role::target, {}, p).what, Violation::bad_ahs);
}

// ---- LUN ------------------------------------------------------------------------------------

TEST(IscsiLun, SingleLevel) {
  EXPECT_EQ(lun_from_index(0), 0u);
  EXPECT_EQ(lun_from_index(5), 0x0005000000000000ull);
  EXPECT_EQ(lun_from_index(300), 0x412c000000000000ull);  // flat space
  for (uint16_t i : {0, 1, 255, 256, 1000, 16383}) EXPECT_EQ(lun_to_index(lun_from_index(i)), i);
  EXPECT_EQ(lun_to_index(0x0105000000000000ull), std::nullopt);  // bus 1
  EXPECT_EQ(lun_to_index(0x0005000000000001ull), std::nullopt);  // a second level
  EXPECT_EQ(lun_to_index(0x8000000000000000ull), std::nullopt);  // logical unit addressing
}

// ---- Whole PDUs -----------------------------------------------------------------------------

TEST(IscsiPdu, AppendPduPadsAndDigests) {
  TextResponse t;
  const Bytes data = text_bytes(std::string("A=B\0C", 5));
  const Bytes b = pdu_bytes({true, true}, t, data);
  ASSERT_EQ(b.size(), kBhsSize + 4 + 5 + 3 + 4);
  EXPECT_EQ(b[7], 5);
  EXPECT_EQ(std::memcmp(&b[52], data.data(), 5), 0);
  EXPECT_EQ(b[57], 0);
  EXPECT_EQ(b[59], 0);
  EXPECT_EQ(get_digest(&b[60]), data_digest(data));
  EXPECT_EQ(pdu_bytes({true, true}, t).size(), kBhsSize + 4);  // no data: no data digest
}

}  // namespace
}  // namespace sluice::iscsi
