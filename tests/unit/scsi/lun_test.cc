// The LUN's state seen by several nexuses: unit attentions, REQUEST SENSE, MODE SENSE and
// MODE SELECT, START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL, RESERVE and RELEASE, READ DEFECT
// DATA.
#include "scsi_test_support.h"

namespace sluice::scsi::testing {
namespace {

TEST_F(ScsiTest, TestUnitReadyIsGood) {
  Cmd c({op::kTestUnitReady, 0, 0, 0, 0, 0}, 0);
  EXPECT_EQ(exec(c), kStatusGood);
  EXPECT_EQ(c.task.sense_length, 0);
}

// READ DEFECT DATA: the header of an empty list in the format asked for, PLISTV and GLISTV
// as requested; cut to the allocation length.
TEST_F(ScsiTest, ReadDefectDataIsAnEmptyList) {
  Cmd d10({op::kReadDefectData10, 0, 0x1d, 0, 0, 0, 0, 0, 32, 0}, 32);  // P and G lists, format 5
  ASSERT_EQ(exec(d10), kStatusGood);
  EXPECT_EQ(d10.task.transferred, 4u);
  EXPECT_EQ(d10[1], 0x1d);
  EXPECT_EQ(get16(d10.data() + 2), 0);
  Cmd d12({op::kReadDefectData12, 0x04, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0}, 32);
  ASSERT_EQ(exec(d12), kStatusGood);
  EXPECT_EQ(d12.task.transferred, 6u);
  EXPECT_EQ(d12[1], 0x04);
}

TEST_F(ScsiTest, UnitAttentionAfterResetIsReportedOnceToEachOtherNexus) {
  dev_->reset(a_);  // A asked for it: only B hears
  Cmd a1({op::kTestUnitReady, 0, 0, 0, 0, 0}, 0);
  EXPECT_EQ(exec(a1, a_), kStatusGood);
  // INQUIRY passes a pending unit attention by, and leaves it pending.
  Cmd inq({op::kInquiry, 0, 0, 0, 36, 0}, 36);
  EXPECT_EQ(exec(inq, b_), kStatusGood);
  Cmd b1({op::kTestUnitReady, 0, 0, 0, 0, 0}, 0);
  ASSERT_EQ(exec(b1, b_), kStatusCheckCondition);
  EXPECT_EQ(b1.sense_key(), sense_key::kUnitAttention);
  EXPECT_EQ(b1.asc(), 0x2900);
  Cmd b2({op::kTestUnitReady, 0, 0, 0, 0, 0}, 0);
  EXPECT_EQ(exec(b2, b_), kStatusGood);
}

TEST_F(ScsiTest, RequestSenseReportsAndClearsAUnitAttention) {
  Cmd none({op::kRequestSense, 0, 0, 0, 252, 0}, 252);
  ASSERT_EQ(exec(none), kStatusGood);
  EXPECT_EQ(none[0], 0x70);
  EXPECT_EQ(none[2], sense_key::kNoSense);
  EXPECT_EQ(none.task.transferred, 18u);
  dev_->reset_lun(0);
  Cmd rs({op::kRequestSense, 1, 0, 0, 252, 0}, 252);  // DESC: descriptor format
  ASSERT_EQ(exec(rs), kStatusGood);
  EXPECT_EQ(rs[0], 0x72);
  EXPECT_EQ(rs[1], sense_key::kUnitAttention);
  EXPECT_EQ(rs[2], 0x29);
  Cmd t1({op::kTestUnitReady, 0, 0, 0, 0, 0}, 0);
  EXPECT_EQ(exec(t1), kStatusGood);  // already reported
  Cmd absent({op::kRequestSense, 0, 0, 0, 18, 0}, 18);
  ASSERT_EQ(exec(absent, 0, 9), kStatusGood);
  EXPECT_EQ(absent[2], sense_key::kIllegalRequest);
  EXPECT_EQ(absent[12], 0x25);
}

TEST_F(ScsiTest, ModeSenseAllPages) {
  Cmd c({op::kModeSense6, 0, 0x3f, 0, 255, 0}, 255);
  ASSERT_EQ(exec(c), kStatusGood);
  const size_t len = c[0] + 1u;
  EXPECT_EQ(c.task.transferred, len);
  EXPECT_EQ(c[2], 0x10);  // DPOFUA, not write protected
  ASSERT_EQ(c[3], 8);     // one short block descriptor
  EXPECT_EQ(get32(c.data() + 4), kBlocks);
  EXPECT_EQ(get32(c.data() + 8) & 0xffffff, kBlockSize);
  size_t p = 12;
  ASSERT_EQ(c[p], 0x08);  // caching
  EXPECT_EQ(c[p + 1], 0x12);
  EXPECT_EQ(c[p + 2] & 0x04, 0x04);  // WCE
  p += 20;
  ASSERT_EQ(c[p], 0x0a);  // control
  EXPECT_EQ(c[p + 1], 0x0a);
  EXPECT_EQ(c[p + 2] & 0x04, 0);  // D_SENSE off
  p += 12;
  ASSERT_EQ(c[p], 0x1c);             // informational exceptions
  EXPECT_EQ(c[p + 2] & 0x08, 0x08);  // DEXCPT
  p += 12;
  EXPECT_EQ(p, len);
}

TEST_F(ScsiTest, ModeSense10LongLbaChangeableAndSaved) {
  Cmd c({op::kModeSense10, 0x10, 0x08, 0, 0, 0, 0, 0, 255, 0}, 255);  // LLBAA, caching
  ASSERT_EQ(exec(c), kStatusGood);
  EXPECT_EQ(get16(c.data()) + 2u, 8u + 16u + 20u);
  EXPECT_EQ(c[4] & 0x01, 1);  // LONGLBA
  EXPECT_EQ(get16(c.data() + 6), 16);
  EXPECT_EQ(get64(c.data() + 8), kBlocks);
  EXPECT_EQ(get32(c.data() + 20), kBlockSize);
  EXPECT_EQ(c[24], 0x08);
  Cmd ch({op::kModeSense6, 0x08, 0x40 | 0x0a, 0, 255, 0}, 255);  // DBD, changeable control page
  ASSERT_EQ(exec(ch), kStatusGood);
  EXPECT_EQ(ch[3], 0);
  EXPECT_EQ(ch[4], 0x0a);
  EXPECT_EQ(ch[6], 0x04);  // only D_SENSE may change
  Cmd saved({op::kModeSense6, 0, 0xc0 | 0x08, 0, 255, 0}, 255);
  ASSERT_EQ(exec(saved), kStatusCheckCondition);
  EXPECT_EQ(saved.asc(), 0x3900);
  Cmd unknown({op::kModeSense6, 0, 0x19, 0, 255, 0}, 255);
  ASSERT_EQ(exec(unknown), kStatusCheckCondition);
  EXPECT_EQ(unknown.asc(), 0x2400);
}

// MODE SELECT(6) of the control page with D_SENSE set as `d_sense`.
std::unique_ptr<Cmd> select_control(bool d_sense, uint8_t extra = 0) {
  auto c = std::make_unique<Cmd>(std::initializer_list<uint8_t>{op::kModeSelect6, 0x10, 0, 0, 16, 0}, 16,
                                 DataDirection::write);
  uint8_t* d = c->data();
  d[4] = 0x0a;
  d[5] = 0x0a;
  d[6] = d_sense ? 0x04 : 0;
  d[7] = 0x10 | extra;
  d[12] = 0xff;
  d[13] = 0xff;
  return c;
}

TEST_F(ScsiTest, ModeSelectDSenseSwitchesToDescriptorSenseAndTellsOthers) {
  auto c = select_control(true);
  ASSERT_EQ(exec(*c), kStatusGood);
  Cmd bad({0xc5, 0, 0, 0, 0, 0}, 0);
  ASSERT_EQ(exec(bad), kStatusCheckCondition);
  EXPECT_EQ(bad.task.sense[0], 0x72);
  EXPECT_EQ(bad.task.sense[2], 0x20);
  // B learns that someone else changed the mode parameters.
  Cmd b({op::kTestUnitReady, 0, 0, 0, 0, 0}, 0);
  ASSERT_EQ(exec(b, b_), kStatusCheckCondition);
  EXPECT_EQ(b.task.sense[1] & 0x0f, sense_key::kUnitAttention);
  EXPECT_EQ(get16(b.task.sense.data() + 2), 0x2a01);
  auto back = select_control(false);
  ASSERT_EQ(exec(*back), kStatusGood);
  Cmd fixed({0xc5, 0, 0, 0, 0, 0}, 0);
  ASSERT_EQ(exec(fixed), kStatusCheckCondition);
  EXPECT_EQ(fixed.task.sense[0], 0x70);
}

TEST_F(ScsiTest, ModeSelectRefusesUnchangeableFieldsAndSaving) {
  auto c = select_control(true, 0x01);  // a QERR bit we do not let change
  ASSERT_EQ(exec(*c), kStatusCheckCondition);
  EXPECT_EQ(c->asc(), 0x2600);
  EXPECT_EQ(get16(c->task.sense.data() + 16), 7);  // byte 7 of the parameter list
  EXPECT_EQ(c->task.sense[15] & 0x40, 0);          // in the parameter data, not the CDB
  Cmd probe({0xc5, 0, 0, 0, 0, 0}, 0);
  ASSERT_EQ(exec(probe), kStatusCheckCondition);
  EXPECT_EQ(probe.task.sense[0], 0x70);  // the refused list changed nothing
  auto sp = select_control(true);
  sp->task.cdb[1] |= 0x01;
  ASSERT_EQ(exec(*sp), kStatusCheckCondition);
  EXPECT_EQ(sp->asc(), 0x2400);
}

TEST_F(ScsiTest, ModeSelectBlockDescriptorMayNotChangeTheBlockSize) {
  Cmd same({op::kModeSelect6, 0x10, 0, 0, 12, 0}, 12, DataDirection::write);
  same.data()[3] = 8;
  put32(same.data() + 8, kBlockSize);  // reserved byte, then the 24-bit block length
  ASSERT_EQ(exec(same), kStatusGood);
  Cmd other({op::kModeSelect6, 0x10, 0, 0, 12, 0}, 12, DataDirection::write);
  other.data()[3] = 8;
  put32(other.data() + 8, 4096);
  ASSERT_EQ(exec(other), kStatusCheckCondition);
  EXPECT_EQ(other.asc(), 0x2600);
  EXPECT_EQ(get16(other.task.sense.data() + 16), 9);
}

TEST_F(ScsiTest, WriteCacheOffForcesEveryWriteToTheMedium) {
  Cmd sel({op::kModeSelect6, 0x10, 0, 0, 24, 0}, 24, DataDirection::write);
  sel.data()[4] = 0x08;
  sel.data()[5] = 0x12;  // WCE clear
  ASSERT_EQ(exec(sel), kStatusGood);
  const uint64_t before = flushes();
  write(0, pattern(kBlockSize, 30));
  EXPECT_EQ(flushes(), before + 1);
  Cmd sense({op::kModeSense6, 0x08, 0x08, 0, 255, 0}, 255);
  ASSERT_EQ(exec(sense), kStatusGood);
  EXPECT_EQ(sense[6] & 0x04, 0);
}

TEST_F(ScsiTest, StartStopUnit) {
  const uint64_t before = flushes();
  Cmd stop({op::kStartStopUnit, 0, 0, 0, 0x00, 0}, 0);
  ASSERT_EQ(exec(stop), kStatusGood);
  EXPECT_EQ(flushes(), before + 1);  // what was cached is made durable first
  auto r = make(rw16(op::kRead16, 0, 1), kBlockSize);
  ASSERT_EQ(exec(*r), kStatusCheckCondition);
  EXPECT_EQ(r->sense_key(), sense_key::kNotReady);
  EXPECT_EQ(r->asc(), 0x0402);
  Cmd rs({op::kRequestSense, 0, 0, 0, 18, 0}, 18);
  ASSERT_EQ(exec(rs), kStatusGood);
  EXPECT_EQ(rs[2], sense_key::kNotReady);
  Cmd start({op::kStartStopUnit, 0, 0, 0, 0x01, 0}, 0);
  ASSERT_EQ(exec(start), kStatusGood);
  auto r2 = make(rw16(op::kRead16, 0, 1), kBlockSize);
  EXPECT_EQ(exec(*r2), kStatusGood);
  Cmd power({op::kStartStopUnit, 0, 0, 0, 0x30, 0}, 0);
  ASSERT_EQ(exec(power), kStatusCheckCondition);
  EXPECT_EQ(power.asc(), 0x2400);
}

TEST_F(ScsiTest, PreventMediumRemovalBlocksAnEjectUntilAllowed) {
  Cmd prevent({op::kPreventAllow, 0, 0, 0, 1, 0}, 0);
  ASSERT_EQ(exec(prevent), kStatusGood);
  Cmd eject({op::kStartStopUnit, 0, 0, 0, 0x02, 0}, 0);  // LOEJ, stop
  ASSERT_EQ(exec(eject, b_), kStatusCheckCondition);
  EXPECT_EQ(eject.asc(), 0x5302);
  Cmd allow({op::kPreventAllow, 0, 0, 0, 0, 0}, 0);
  ASSERT_EQ(exec(allow), kStatusGood);
  Cmd eject2({op::kStartStopUnit, 0, 0, 0, 0x02, 0}, 0);
  ASSERT_EQ(exec(eject2, b_), kStatusGood);
  Cmd changer({op::kPreventAllow, 0, 0, 0, 2, 0}, 0);
  ASSERT_EQ(exec(changer), kStatusCheckCondition);
  EXPECT_EQ(changer.asc(), 0x2400);
}

TEST_F(ScsiTest, ReserveConflictsForTheOtherInitiatorUntilReleased) {
  Cmd res({op::kReserve6, 0, 0, 0, 0, 0}, 0);
  ASSERT_EQ(exec(res, a_), kStatusGood);
  auto r = make(rw16(op::kRead16, 0, 1), kBlockSize);
  EXPECT_EQ(exec(*r, b_), kStatusReservationConflict);
  EXPECT_EQ(r->task.sense_length, 0);
  Cmd t({op::kTestUnitReady, 0, 0, 0, 0, 0}, 0);
  EXPECT_EQ(exec(t, b_), kStatusReservationConflict);
  Cmd inq({op::kInquiry, 0, 0, 0, 36, 0}, 36);
  EXPECT_EQ(exec(inq, b_), kStatusGood);  // always allowed
  Cmd res_b({op::kReserve10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0);
  EXPECT_EQ(exec(res_b, b_), kStatusReservationConflict);
  Cmd rel_b({op::kRelease6, 0, 0, 0, 0, 0}, 0);
  EXPECT_EQ(exec(rel_b, b_), kStatusGood);  // not the holder: no effect
  auto still = make(rw16(op::kRead16, 0, 1), kBlockSize);
  EXPECT_EQ(exec(*still, b_), kStatusReservationConflict);
  auto mine = make(rw16(op::kRead16, 0, 1), kBlockSize);
  EXPECT_EQ(exec(*mine, a_), kStatusGood);
  Cmd again({op::kReserve6, 0, 0, 0, 0, 0}, 0);
  EXPECT_EQ(exec(again, a_), kStatusGood);  // the holder may reserve again
  Cmd rel({op::kRelease10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0);
  ASSERT_EQ(exec(rel, a_), kStatusGood);
  auto now = make(rw16(op::kRead16, 0, 1), kBlockSize);
  EXPECT_EQ(exec(*now, b_), kStatusGood);
}

TEST_F(ScsiTest, ReservationEndsWithItsNexusAndOnReset) {
  Cmd res({op::kReserve6, 0, 0, 0, 0, 0}, 0);
  ASSERT_EQ(exec(res, b_), kStatusGood);
  dev_->remove_nexus(b_);
  auto r = make(rw16(op::kRead16, 0, 1), kBlockSize);
  EXPECT_EQ(exec(*r, a_), kStatusGood);
  Cmd res_a({op::kReserve6, 0, 0, 0, 0, 0}, 0);
  ASSERT_EQ(exec(res_a, a_), kStatusGood);
  const uint64_t c = dev_->add_nexus("iqn.2026-12.io.sluice:host-c,i,0x1", 1);
  auto conflict = make(rw16(op::kRead16, 0, 1), kBlockSize);
  EXPECT_EQ(exec(*conflict, c), kStatusReservationConflict);
  dev_->reset();
  Cmd ua({op::kTestUnitReady, 0, 0, 0, 0, 0}, 0);
  ASSERT_EQ(exec(ua, c), kStatusCheckCondition);  // the reset's unit attention first
  EXPECT_EQ(ua.asc(), 0x2900);
  auto free_now = make(rw16(op::kRead16, 0, 1), kBlockSize);
  EXPECT_EQ(exec(*free_now, c), kStatusGood);
  Cmd third({op::kReserve10, 0x10, 0, 0, 0, 0, 0, 0, 0, 0}, 0);  // 3RDPTY
  ASSERT_EQ(exec(third, c), kStatusCheckCondition);
  EXPECT_EQ(third.asc(), 0x2400);
}

TEST_F(ScsiTest, ReadOnlyLunRefusesWrites) {
  const std::string ro = sluice::testing::unique_name("scsimem");
  ASSERT_TRUE(bdev::create("malloc:1M", ro).ok());
  ch_.reset();
  ASSERT_TRUE(dev_->add_lun(1, ro, true).ok());
  ch_ = std::make_unique<Channel>(*dev_);
  auto w = make(rw16(op::kWrite16, 0, 1), kBlockSize, DataDirection::write);
  ASSERT_EQ(exec(*w, 0, 1), kStatusCheckCondition);
  EXPECT_EQ(w->sense_key(), sense_key::kDataProtect);
  EXPECT_EQ(w->asc(), 0x2700);
  Cmd ms({op::kModeSense6, 0x08, 0x3f, 0, 255, 0}, 255);
  ASSERT_EQ(exec(ms, 0, 1), kStatusGood);
  EXPECT_EQ(ms[2] & 0x80, 0x80);  // WP
  ch_.reset();
  dev_.reset();
  EXPECT_TRUE(bdev::unregister(ro).ok());
  SetUp();
}

}  // namespace
}  // namespace sluice::scsi::testing
