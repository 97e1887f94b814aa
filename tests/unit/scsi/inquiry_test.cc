// INQUIRY standard data and VPD pages, READ CAPACITY, REPORT LUNS, REPORT SUPPORTED
// OPERATION CODES: the bytes SPC-4 and SBC-3 specify.
#include <string>

#include "scsi_test_support.h"

namespace sluice::scsi::testing {
namespace {

std::string ascii(const uint8_t* p, size_t n) { return std::string(reinterpret_cast<const char*>(p), n); }

TEST_F(ScsiTest, StandardInquiry) {
  Cmd c({op::kInquiry, 0, 0, 0, 255, 0}, 255);
  ASSERT_EQ(exec(c), kStatusGood);
  EXPECT_EQ(c[0], 0x00);  // connected, direct access block device
  EXPECT_EQ(c[2], 0x06);  // SPC-4
  EXPECT_EQ(c[3] & 0x0f, 2);
  EXPECT_EQ(c[3] & 0x10, 0x10);  // HISUP
  const size_t len = c[4] + 5u;
  EXPECT_GE(len, 36u);
  EXPECT_EQ(c.task.transferred, len);
  EXPECT_EQ(c.task.residual_kind, Residual::underflow);
  EXPECT_EQ(c.task.residual, 255 - len);
  EXPECT_EQ(c[7] & 0x02, 0x02);  // CMDQUE
  EXPECT_EQ(ascii(c.data() + 8, 8), "SLUICE  ");
  EXPECT_EQ(ascii(c.data() + 16, 16), "Sluice disk     ");
  EXPECT_EQ(ascii(c.data() + 32, 4), "0001");
  EXPECT_EQ(get16(c.data() + 60), 0x0460);  // SPC-4 version descriptor
  EXPECT_EQ(get16(c.data() + 62), 0x04c0);  // SBC-3
}

TEST_F(ScsiTest, InquiryIsCutToTheAllocationLength) {
  Cmd c({op::kInquiry, 0, 0, 0, 36, 0}, 96);
  ASSERT_EQ(exec(c), kStatusGood);
  EXPECT_EQ(c.task.transferred, 36u);
  EXPECT_EQ(c.task.residual, 60u);
  EXPECT_EQ(c[36], 0);  // nothing beyond
}

TEST_F(ScsiTest, InquiryOfAnAbsentLunAndCommandsToIt) {
  Cmd c({op::kInquiry, 0, 0, 0, 96, 0}, 96);
  ASSERT_EQ(exec(c, 0, 7), kStatusGood);
  EXPECT_EQ(c[0], 0x7f);  // peripheral qualifier 3, type 1Fh
  Cmd tur({op::kTestUnitReady, 0, 0, 0, 0, 0}, 0);
  ASSERT_EQ(exec(tur, 0, 7), kStatusCheckCondition);
  EXPECT_EQ(tur.sense_key(), sense_key::kIllegalRequest);
  EXPECT_EQ(tur.asc(), 0x2500);
}

TEST_F(ScsiTest, InquiryRefusesAPageCodeWithoutEvpd) {
  Cmd c({op::kInquiry, 0, 0x80, 0, 96, 0}, 96);
  ASSERT_EQ(exec(c), kStatusCheckCondition);
  EXPECT_EQ(c.asc(), 0x2400);
  EXPECT_EQ(get16(c.task.sense.data() + 16), 2);  // the field pointer names byte 2
}

TEST_F(ScsiTest, VpdSupportedPagesAndSerial) {
  Cmd c({op::kInquiry, 1, 0x00, 0, 255, 0}, 255);
  ASSERT_EQ(exec(c), kStatusGood);
  EXPECT_EQ(c[1], 0x00);
  ASSERT_EQ(get16(c.data() + 2), 6);
  EXPECT_EQ(std::vector<uint8_t>(c.data() + 4, c.data() + 10), (std::vector<uint8_t>{0, 0x80, 0x83, 0xb0, 0xb1, 0xb2}));
  Cmd s({op::kInquiry, 1, 0x80, 0, 255, 0}, 255);
  ASSERT_EQ(exec(s), kStatusGood);
  EXPECT_EQ(s[1], 0x80);
  EXPECT_EQ(ascii(s.data() + 4, get16(s.data() + 2)), "SL0001");
  Cmd bad({op::kInquiry, 1, 0x99, 0, 255, 0}, 255);
  ASSERT_EQ(exec(bad), kStatusCheckCondition);
  EXPECT_EQ(bad.asc(), 0x2400);
}

TEST_F(ScsiTest, VpdDeviceIdentification) {
  Cmd c({op::kInquiry, 1, 0x83, 0, 255, 0}, 255);
  ASSERT_EQ(exec(c), kStatusGood);
  const size_t end = 4 + get16(c.data() + 2);
  bool naa = false, t10 = false, port = false, name = false;
  for (size_t p = 4; p < end; p += 4 + c[p + 3]) {
    const uint8_t type = c[p + 1] & 0x0f;
    const uint8_t assoc = (c[p + 1] >> 4) & 0x3;
    if (type == 3) {
      naa = true;
      EXPECT_EQ(assoc, 0);
      EXPECT_EQ(c[p + 3], 8);
      EXPECT_EQ(c[p + 4] >> 4, 3);  // NAA locally assigned
    } else if (type == 1) {
      t10 = true;
      EXPECT_EQ(c[p] & 0x0f, 2);  // ASCII
      EXPECT_EQ(ascii(c.data() + p + 4, 8), "SLUICE  ");
    } else if (type == 4) {
      port = true;
      EXPECT_EQ(assoc, 1);
      EXPECT_EQ(get16(c.data() + p + 6), 1);  // nexus A came through port 1
    } else if (type == 8) {
      name = true;
      EXPECT_EQ(assoc, 2);
      EXPECT_EQ(c[p + 3] % 4, 0);
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(c.data() + p + 4)), "iqn.2026-12.io.sluice:disk0");
    }
  }
  EXPECT_TRUE(naa && t10 && port && name);
  // The same identity the next time: initiators key multipath on it.
  Cmd again({op::kInquiry, 1, 0x83, 0, 255, 0}, 255);
  ASSERT_EQ(exec(again), kStatusGood);
  EXPECT_EQ(std::memcmp(c.data(), again.data(), 16), 0);
}

TEST_F(ScsiTest, VpdBlockLimitsCharacteristicsAndProvisioning) {
  Cmd b0({op::kInquiry, 1, 0xb0, 0, 255, 0}, 255);
  ASSERT_EQ(exec(b0), kStatusGood);
  EXPECT_EQ(get16(b0.data() + 2), 0x3c);
  EXPECT_EQ(b0[4] & 0x01, 1);                // WSNZ
  EXPECT_EQ(b0[5], 64);                      // MAXIMUM COMPARE AND WRITE LENGTH
  EXPECT_EQ(get32(b0.data() + 20), 65535u);  // MAXIMUM UNMAP LBA COUNT
  EXPECT_EQ(get32(b0.data() + 24), 256u);    // MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT
  EXPECT_EQ(get64(b0.data() + 36), 65535u);  // MAXIMUM WRITE SAME LENGTH
  Cmd b1({op::kInquiry, 1, 0xb1, 0, 255, 0}, 255);
  ASSERT_EQ(exec(b1), kStatusGood);
  EXPECT_EQ(get16(b1.data() + 4), 1);  // non-rotating
  Cmd b2({op::kInquiry, 1, 0xb2, 0, 255, 0}, 255);
  ASSERT_EQ(exec(b2), kStatusGood);
  EXPECT_EQ(get16(b2.data() + 2), 4);
  EXPECT_EQ(b2[5] & 0xe4, 0xe4);  // LBPU, LBPWS, LBPWS10, LBPRZ (malloc unmaps to zeroes)
  EXPECT_EQ(b2[6] & 0x07, 2);     // thin provisioned
}

TEST_F(ScsiTest, ReadCapacity) {
  Cmd c10({op::kReadCapacity10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 8);
  ASSERT_EQ(exec(c10), kStatusGood);
  EXPECT_EQ(get32(c10.data()), kBlocks - 1);
  EXPECT_EQ(get32(c10.data() + 4), kBlockSize);
  Cmd c16({op::kServiceActionIn16, op::kSaReadCapacity16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, 32);
  ASSERT_EQ(exec(c16), kStatusGood);
  EXPECT_EQ(get64(c16.data()), kBlocks - 1);
  EXPECT_EQ(get32(c16.data() + 8), kBlockSize);
  EXPECT_EQ(c16[12], 0);                                         // no protection
  EXPECT_EQ(c16[14], 0xc0);                                      // LBPME, LBPRZ
  Cmd bad({op::kReadCapacity10, 0, 0, 0, 0, 1, 0, 0, 0, 0}, 8);  // LBA without PMI
  ASSERT_EQ(exec(bad), kStatusCheckCondition);
  EXPECT_EQ(bad.asc(), 0x2400);
}

TEST_F(ScsiTest, ReportLuns) {
  const std::string second = sluice::testing::unique_name("scsimem");
  ASSERT_TRUE(bdev::create("malloc:1M", second).ok());
  {
    ch_.reset();  // LUNs are fixed while a channel exists
    Status st = dev_->add_lun(300, second);
    ASSERT_TRUE(st.ok()) << st.to_string();
    ch_ = std::make_unique<Channel>(*dev_);
    Cmd c({op::kReportLuns, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0}, 64);
    ASSERT_EQ(exec(c), kStatusGood);
    EXPECT_EQ(get32(c.data()), 16u);
    EXPECT_EQ(std::vector<uint8_t>(c.data() + 8, c.data() + 24),
              (std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 0, 0, 0x41, 0x2c, 0, 0, 0, 0, 0, 0}));
    Cmd well_known({op::kReportLuns, 0, 1, 0, 0, 0, 0, 0, 0, 64, 0, 0}, 64);
    ASSERT_EQ(exec(well_known), kStatusGood);
    EXPECT_EQ(get32(well_known.data()), 0u);
    Cmd small({op::kReportLuns, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0}, 8);
    ASSERT_EQ(exec(small), kStatusCheckCondition);
    EXPECT_EQ(small.asc(), 0x2400);
    // The LUN over the second bdev answers on its own.
    Cmd cap({op::kReadCapacity10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 8);
    ASSERT_EQ(exec(cap, 0, 300), kStatusGood);
    EXPECT_EQ(get32(cap.data()), (1u << 20) / kBlockSize - 1);
    ch_.reset();
    dev_.reset();
  }
  EXPECT_TRUE(bdev::unregister(second).ok());
  SetUp();  // TearDown expects the fixture's device
}

TEST_F(ScsiTest, ReportSupportedOperationCodes) {
  Cmd all({op::kMaintenanceIn, op::kSaReportSupportedOpcodes, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0}, 4096);
  ASSERT_EQ(exec(all), kStatusGood);
  const uint32_t len = get32(all.data());
  ASSERT_EQ(len % 8, 0u);
  bool read16 = false, rc16 = false;
  for (uint32_t p = 4; p < 4 + len; p += 8) {
    if (all[p] == op::kRead16) read16 = get16(all.data() + p + 6) == 16 && (all[p + 5] & 1) == 0;
    if (all[p] == op::kServiceActionIn16 && get16(all.data() + p + 2) == op::kSaReadCapacity16)
      rc16 = (all[p + 5] & 1) == 1;
  }
  EXPECT_TRUE(read16);
  EXPECT_TRUE(rc16);
  Cmd one({op::kMaintenanceIn, op::kSaReportSupportedOpcodes, 1, op::kRead10, 0, 0, 0, 0, 0, 64, 0, 0}, 64);
  ASSERT_EQ(exec(one), kStatusGood);
  EXPECT_EQ(one[1] & 0x07, 3);  // supported
  EXPECT_EQ(get16(one.data() + 2), 10);
  EXPECT_EQ(one[4], op::kRead10);
  EXPECT_EQ(one[5], 0x18);  // DPO, FUA
  Cmd missing({op::kMaintenanceIn, op::kSaReportSupportedOpcodes, 1, 0x04, 0, 0, 0, 0, 0, 64, 0, 0}, 64);
  ASSERT_EQ(exec(missing), kStatusGood);
  EXPECT_EQ(missing[1] & 0x07, 1);  // not supported
  Cmd sa_needed({op::kMaintenanceIn, op::kSaReportSupportedOpcodes, 1, op::kServiceActionIn16, 0, 0, 0, 0, 0, 64, 0, 0},
                64);
  ASSERT_EQ(exec(sa_needed), kStatusCheckCondition);
  Cmd by_sa({op::kMaintenanceIn, op::kSaReportSupportedOpcodes, 2, op::kServiceActionIn16, 0, op::kSaGetLbaStatus, 0, 0,
             0, 64, 0, 0},
            64);
  ASSERT_EQ(exec(by_sa), kStatusGood);
  EXPECT_EQ(by_sa[1] & 0x07, 3);
  EXPECT_EQ(by_sa[5], op::kSaGetLbaStatus);
}

TEST_F(ScsiTest, UnknownOpcode) {
  Cmd c({0xc5, 0, 0, 0, 0, 0}, 0);
  ASSERT_EQ(exec(c), kStatusCheckCondition);
  EXPECT_EQ(c.sense_key(), sense_key::kIllegalRequest);
  EXPECT_EQ(c.asc(), 0x2000);
  EXPECT_EQ(c.task.sense_length, 18);
}

}  // namespace
}  // namespace sluice::scsi::testing

namespace sluice::scsi::testing {
namespace {

TEST_F(ScsiTest, SupportedOpcodesAreExactlyTheOnesThatRun) {
  Cmd all({op::kMaintenanceIn, op::kSaReportSupportedOpcodes, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0}, 4096);
  ASSERT_EQ(exec(all), kStatusGood);
  std::vector<bool> listed(256, false);
  const uint32_t len = get32(all.data());
  for (uint32_t p = 4; p < 4 + len; p += 8) listed[all[p]] = true;
  for (int opcode = 0; opcode < 256; ++opcode) {
    Cmd c({static_cast<uint8_t>(opcode)}, 4096);
    c.task.cdb_length = 16;
    exec(c);
    const bool unknown = c.task.status == kStatusCheckCondition && c.asc() == 0x2000;
    EXPECT_EQ(unknown, !listed[opcode]) << "opcode " << opcode;
  }
}

}  // namespace
}  // namespace sluice::scsi::testing
