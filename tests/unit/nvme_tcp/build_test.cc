// The builders against the transport spec's byte layouts. The offsets below are written out
// from the spec's PDU figures (ICReq: figure "ICReq PDU"; CapsuleCmd: "CapsuleCmd PDU"), not
// taken from the codec, so that a layout mistake in the codec cannot hide in the test.
#include <gtest/gtest.h>

#include "base/crc32c.h"
#include "pdu_test_util.h"

namespace sluice::nvme::tcp {
namespace {

using testing::Bytes;

uint32_t le32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | uint32_t{p[3]} << 24; }
uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

TEST(NvmeTcpBuild, IcReqKnownAnswer) {
  uint8_t b[kMaxBuiltSize];
  std::fill(std::begin(b), std::end(b), 0xee);  // reserved bytes must come out zero
  ASSERT_EQ(build_ic_req(b, {0, 3, kDigestHeader | kDigestData, 0x01020304}), 128u);
  const uint8_t common[8] = {0x00, 0x00, 0x80, 0x00, 0x80, 0x00, 0x00, 0x00};  // type, flags, hlen, pdo, plen
  EXPECT_EQ(Bytes(b, b + 8), Bytes(common, common + 8));
  EXPECT_EQ(b[8], 0x00);  // PFV (bytes 8-9): 0 = 1.0
  EXPECT_EQ(b[9], 0x00);
  EXPECT_EQ(b[10], 3);     // HPDA
  EXPECT_EQ(b[11], 0x03);  // DGST: HDGST_ENABLE bit 0, DDGST_ENABLE bit 1
  EXPECT_EQ(b[12], 0x04);  // MAXR2T (bytes 12-15), little-endian
  EXPECT_EQ(b[13], 0x03);
  EXPECT_EQ(b[14], 0x02);
  EXPECT_EQ(b[15], 0x01);
  for (size_t i = 16; i < 128; ++i) EXPECT_EQ(b[i], 0) << "reserved byte " << i;
}

TEST(NvmeTcpBuild, IcRespKnownAnswer) {
  uint8_t b[kMaxBuiltSize];
  ASSERT_EQ(build_ic_resp(b, {0, 1, kDigestData, 0x20000}), 128u);
  EXPECT_EQ(b[0], 0x01);
  EXPECT_EQ(b[2], 0x80);
  EXPECT_EQ(le32(b + 4), 128u);
  EXPECT_EQ(b[10], 1);                // CPDA
  EXPECT_EQ(b[11], 0x02);             // DGST
  EXPECT_EQ(le32(b + 12), 0x20000u);  // MAXH2CDATA
}

spec::Sqe sample_sqe() {
  spec::Sqe sqe{};
  sqe.opc = spec::kIoWrite;
  sqe.flags = 0x40;  // PSDT 01b: SGL, as NVMe-oF requires
  sqe.cid = 0xbeef;
  sqe.nsid = 1;
  sqe.cdw10 = 0x11223344;
  sqe.cdw12 = 7;
  return sqe;
}

TEST(NvmeTcpBuild, CapsuleCmdKnownAnswerNoDigests) {
  uint8_t b[kMaxBuiltSize];
  ASSERT_EQ(build_capsule_cmd(b, {}, sample_sqe(), 0), 72u);
  EXPECT_EQ(b[0], 0x04);                 // CapsuleCmd
  EXPECT_EQ(b[1], 0x00);                 // no digests
  EXPECT_EQ(b[2], 72);                   // HLEN: 8 + 64-byte SQE
  EXPECT_EQ(b[3], 0);                    // PDO: no data
  EXPECT_EQ(le32(b + 4), 72u);           // PLEN
  EXPECT_EQ(b[8], 0x01);                 // SQE byte 0: opcode
  EXPECT_EQ(b[9], 0x40);                 // SQE byte 1: flags
  EXPECT_EQ(le16(b + 10), 0xbeef);       // SQE bytes 2-3: CID
  EXPECT_EQ(le32(b + 12), 1u);           // SQE bytes 4-7: NSID
  EXPECT_EQ(le32(b + 48), 0x11223344u);  // SQE bytes 40-43: CDW10
  EXPECT_EQ(le32(b + 56), 7u);           // SQE bytes 48-51: CDW12
}

TEST(NvmeTcpBuild, CapsuleCmdKnownAnswerDigestsAndInCapsuleData) {
  uint8_t b[kMaxBuiltSize];
  const TxParams tx{true, true, 0};
  // Header 72, HDGST 4, data at 76 (CPDA 0: dword alignment), 512 data bytes, DDGST 4.
  ASSERT_EQ(build_capsule_cmd(b, tx, sample_sqe(), 512), 76u);
  EXPECT_EQ(b[1], 0x03);                  // HDGSTF | DDGSTF
  EXPECT_EQ(b[3], 76);                    // PDO
  EXPECT_EQ(le32(b + 4), 76u + 512 + 4);  // PLEN = 592
  EXPECT_EQ(b[4], 0x50);
  EXPECT_EQ(b[5], 0x02);
  EXPECT_EQ(le32(b + 72), crc32c(b, 72));  // HDGST: CRC32C of the 72 header bytes

  // CPDA 31: data aligned to 128 bytes, zero padding between the digest and the data.
  const TxParams aligned{true, false, 31};
  ASSERT_EQ(build_capsule_cmd(b, aligned, sample_sqe(), 512), 128u);
  EXPECT_EQ(b[1], 0x01);
  EXPECT_EQ(b[3], 128);
  EXPECT_EQ(le32(b + 4), 128u + 512);
  for (size_t i = 76; i < 128; ++i) EXPECT_EQ(b[i], 0) << "pad byte " << i;
}

TEST(NvmeTcpBuild, DataR2tRespAndTermLayouts) {
  uint8_t b[kMaxBuiltSize];
  ASSERT_EQ(build_data(b, Role::host, {}, {0x0102, 0x0304, 0x1000, 0x200, true, true}), 24u);
  EXPECT_EQ(b[0], 0x06);
  EXPECT_EQ(b[1], 0x04);  // LAST_PDU; SUCCESS is not an H2CData flag
  EXPECT_EQ(b[3], 24);    // PDO = HLEN
  EXPECT_EQ(le32(b + 4), 24u + 0x200);
  EXPECT_EQ(le16(b + 8), 0x0102);    // CCCID
  EXPECT_EQ(le16(b + 10), 0x0304);   // TTAG
  EXPECT_EQ(le32(b + 12), 0x1000u);  // DATAO
  EXPECT_EQ(le32(b + 16), 0x200u);   // DATAL

  ASSERT_EQ(build_data(b, Role::controller, {false, true, 0}, {7, 9, 0, 0x10, true, true}), 24u);
  EXPECT_EQ(b[0], 0x07);
  EXPECT_EQ(b[1], 0x0e);       // DDGSTF | LAST_PDU | SUCCESS
  EXPECT_EQ(le16(b + 10), 0);  // TTAG reserved in C2HData
  EXPECT_EQ(le32(b + 4), 24u + 0x10 + 4);

  ASSERT_EQ(build_r2t(b, {true, false, 0}, {5, 6, 0x2000, 0x8000}), 28u);
  EXPECT_EQ(b[0], 0x09);
  EXPECT_EQ(b[3], 0);
  EXPECT_EQ(le32(b + 4), 28u);
  EXPECT_EQ(le32(b + 12), 0x2000u);  // R2TO
  EXPECT_EQ(le32(b + 16), 0x8000u);  // R2TL
  EXPECT_EQ(le32(b + 24), crc32c(b, 24));

  spec::Cqe cqe{};
  cqe.cid = 0xbeef;
  cqe.status = spec::make_status(0, spec::kScInvalidField);
  ASSERT_EQ(build_capsule_resp(b, {}, cqe), 24u);
  EXPECT_EQ(b[0], 0x05);
  EXPECT_EQ(le16(b + 8 + 12), 0xbeef);  // CQE bytes 12-13: CID
  EXPECT_EQ(le16(b + 8 + 14), spec::make_status(0, spec::kScInvalidField));

  Bytes offending(200, 0xab);
  ASSERT_EQ(build_term_req(b, Role::controller, Fes::invalid_header_field, 2, offending), 152u);
  EXPECT_EQ(b[0], 0x03);
  EXPECT_EQ(b[2], 24);
  EXPECT_EQ(le32(b + 4), 152u);  // at most 128 bytes of the offending header
  EXPECT_EQ(le16(b + 8), 0x01);  // FES
  EXPECT_EQ(le32(b + 10), 2u);   // FEI
  EXPECT_EQ(b[24], 0xab);
  ASSERT_EQ(build_term_req(b, Role::host, Fes::header_digest, 99, {}), 24u);
  EXPECT_EQ(b[0], 0x02);
  EXPECT_EQ(le32(b + 10), 0u);  // FEI reserved for a header digest error
}

TEST(NvmeTcpBuild, DigestIsStandardCrc32cLittleEndian) {
  const uint8_t check[] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
  EXPECT_EQ(data_digest(check), 0xE3069283u);
  EXPECT_EQ(data_digest(std::span(check).subspan(4), data_digest(std::span(check).first(4))), 0xE3069283u);
  uint8_t d[4];
  put_digest(d, 0xE3069283u);
  EXPECT_EQ(d[0], 0x83);
  EXPECT_EQ(d[3], 0xE3);
  EXPECT_EQ(get_digest(d), 0xE3069283u);
}

TEST(NvmeTcpBuild, HeaderLengths) {
  EXPECT_EQ(header_length(0x00), 128);
  EXPECT_EQ(header_length(0x01), 128);
  EXPECT_EQ(header_length(0x02), 24);
  EXPECT_EQ(header_length(0x03), 24);
  EXPECT_EQ(header_length(0x04), 72);
  EXPECT_EQ(header_length(0x05), 24);
  EXPECT_EQ(header_length(0x06), 24);
  EXPECT_EQ(header_length(0x07), 24);
  EXPECT_EQ(header_length(0x08), 0);  // not defined
  EXPECT_EQ(header_length(0x09), 24);
  EXPECT_EQ(header_length(0x0a), 0);
  EXPECT_EQ(pdu_type_name(0x09), "R2T");
}

}  // namespace
}  // namespace sluice::nvme::tcp
