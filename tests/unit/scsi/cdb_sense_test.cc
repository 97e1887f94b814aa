// Sense data layouts (SPC-4 4.5), CDB field decoding and LUN encoding, without a device.
#include <gtest/gtest.h>

#include "target/scsi/cdb.h"
#include "target/scsi/scsi.h"
#include "target/scsi/sense.h"

namespace sluice::scsi {
namespace {

TEST(ScsiSense, FixedFormatCarriesKeyCodesInformationAndFieldPointer) {
  uint8_t s[64] = {};
  SenseData d = invalid_cdb_field(2, 5);
  d.has_information = true;
  d.information = 0x12345678;
  ASSERT_EQ(build_sense(d, false, s), 18u);
  EXPECT_EQ(s[0], 0xf0);  // VALID, current error
  EXPECT_EQ(s[2], sense_key::kIllegalRequest);
  EXPECT_EQ(get32(s + 3), 0x12345678u);
  EXPECT_EQ(s[7], 10);
  EXPECT_EQ(s[12], 0x24);
  EXPECT_EQ(s[13], 0x00);
  EXPECT_EQ(s[15], 0x80 | 0x40 | 0x08 | 5);  // SKSV, C/D, BPV, bit 5
  EXPECT_EQ(get16(s + 16), 2);
}

TEST(ScsiSense, FixedFormatWithoutInformationIsNotValid) {
  uint8_t s[64] = {};
  build_sense({.key = sense_key::kUnitAttention, .asc = asc::kPowerOnReset}, false, s);
  EXPECT_EQ(s[0], 0x70);
  EXPECT_EQ(s[2], 0x06);
  EXPECT_EQ(s[12], 0x29);
  EXPECT_EQ(s[15], 0);
}

TEST(ScsiSense, DescriptorFormatHasInformationAndSenseKeySpecificDescriptors) {
  uint8_t s[64] = {};
  SenseData d{.key = sense_key::kMiscompare,
              .asc = asc::kMiscompareDuringVerify,
              .has_information = true,
              .information = 0x1122334455ull};
  ASSERT_EQ(build_sense(d, true, s), 20u);
  EXPECT_EQ(s[0], 0x72);
  EXPECT_EQ(s[1], 0x0e);
  EXPECT_EQ(s[2], 0x1d);
  EXPECT_EQ(s[3], 0x00);
  EXPECT_EQ(s[7], 12);
  EXPECT_EQ(s[8], 0x00);  // information descriptor
  EXPECT_EQ(s[9], 0x0a);
  EXPECT_EQ(s[10], 0x80);  // VALID
  EXPECT_EQ(get64(s + 12), 0x1122334455ull);
  ASSERT_EQ(build_sense(invalid_param_field(9), true, s), 16u);
  EXPECT_EQ(s[2], 0x26);
  EXPECT_EQ(s[8], 0x02);   // sense key specific
  EXPECT_EQ(s[12], 0x80);  // SKSV, parameter data, no bit pointer
  EXPECT_EQ(get16(s + 13), 9);
}

TEST(ScsiCdb, GroupLengths) {
  EXPECT_EQ(cdb_length(0x08), 6u);
  EXPECT_EQ(cdb_length(0x28), 10u);
  EXPECT_EQ(cdb_length(0x5a), 10u);
  EXPECT_EQ(cdb_length(0x88), 16u);
  EXPECT_EQ(cdb_length(0xa8), 12u);
  EXPECT_EQ(cdb_length(0x7f), 0u);
}

TEST(ScsiCdb, BlockFieldsOfEverySize) {
  const uint8_t r6[6] = {0x08, 0xff, 0x34, 0x56, 0x00, 0};
  BlockCdb b = decode_block(r6);
  EXPECT_EQ(b.lba, 0x1f3456u);  // 21 bits
  EXPECT_EQ(b.blocks, 256u);    // 0 means 256
  const uint8_t r10[10] = {0x28, 0x08, 0x01, 0x02, 0x03, 0x04, 0, 0x12, 0x34, 0};
  b = decode_block(r10);
  EXPECT_EQ(b.lba, 0x01020304u);
  EXPECT_EQ(b.blocks, 0x1234u);
  EXPECT_TRUE(b.fua());
  EXPECT_FALSE(b.protect());
  const uint8_t r12[12] = {0xa8, 0x20, 0, 0, 0, 9, 0x00, 0x01, 0x00, 0x00, 0, 0};
  b = decode_block(r12);
  EXPECT_EQ(b.lba, 9u);
  EXPECT_EQ(b.blocks, 0x10000u);
  EXPECT_TRUE(b.protect());
  const uint8_t r16[16] = {0x88, 0, 0x01, 0, 0, 0, 0, 0, 0, 0x05, 0, 0, 0, 0x07, 0, 0};
  b = decode_block(r16);
  EXPECT_EQ(b.lba, 0x0100000000000005ull);
  EXPECT_EQ(b.blocks, 7u);
  const uint8_t caw[16] = {0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x02, 0, 0};
  b = decode_block(caw);
  EXPECT_EQ(b.lba, 0x10u);
  EXPECT_EQ(b.blocks, 2u);
}

TEST(ScsiCdb, LunEncoding) {
  auto w = lun_to_wire(5);
  EXPECT_EQ(w, (std::array<uint8_t, 8>{0, 5, 0, 0, 0, 0, 0, 0}));
  w = lun_to_wire(300);
  EXPECT_EQ(w, (std::array<uint8_t, 8>{0x41, 0x2c, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(lun_from_wire(w.data()), 300u);
  EXPECT_EQ(lun_from_wire(lun_to_wire(0).data()), 0u);
  const uint8_t second_level[8] = {0, 1, 0, 1, 0, 0, 0, 0};
  EXPECT_GT(lun_from_wire(second_level), kMaxLun);
}

TEST(ScsiCdb, DataDirection) {
  const uint8_t read10[10] = {0x28};
  const uint8_t write16[16] = {0x8a};
  const uint8_t tur[6] = {0x00};
  const uint8_t ws16_ndob[16] = {0x93, 0x01};
  const uint8_t verify_bytchk[10] = {0x2f, 0x02};
  EXPECT_EQ(data_direction(read10), DataDirection::read);
  EXPECT_EQ(data_direction(write16), DataDirection::write);
  EXPECT_EQ(data_direction(tur), DataDirection::none);
  EXPECT_EQ(data_direction(ws16_ndob), DataDirection::none);
  EXPECT_EQ(data_direction(verify_bytchk), DataDirection::write);
}

}  // namespace
}  // namespace sluice::scsi
