// PERSISTENT RESERVE IN and OUT between initiators: registration, each reservation type's
// access rules, release, preempt, clear, and what the other initiators are told.
#include "scsi_test_support.h"

namespace sluice::scsi::testing {
namespace {

class ScsiPrTest : public ScsiTest {
 protected:
  void SetUp() override {
    ScsiTest::SetUp();
    c_ = dev_->add_nexus("iqn.2026-12.io.sluice:host-c,i,0x23d000000003", 1);
  }
  uint8_t out(uint64_t nexus, uint8_t sa, uint8_t type, uint64_t key, uint64_t sa_key, uint8_t flags = 0,
              uint16_t* asc_out = nullptr) {
    Cmd c({op::kPersistentReserveOut, sa, type, 0, 0, 0, 0, 0, 24, 0}, 24, DataDirection::write);
    put64(c.data(), key);
    put64(c.data() + 8, sa_key);
    c.data()[20] = flags;
    const uint8_t st = exec(c, nexus);
    if (asc_out != nullptr) *asc_out = c.asc();
    return st;
  }
  std::vector<uint8_t> in(uint64_t nexus, uint8_t sa) {
    Cmd c({op::kPersistentReserveIn, sa, 0, 0, 0, 0, 0, 0x02, 0x00, 0}, 512);
    EXPECT_EQ(exec(c, nexus), kStatusGood);
    return std::vector<uint8_t>(c.data(), c.data() + c.task.transferred);
  }
  uint8_t read_as(uint64_t nexus) {
    auto c = make(rw16(op::kRead16, 0, 1), kBlockSize);
    return exec(*c, nexus);
  }
  uint8_t write_as(uint64_t nexus) {
    auto c = make(rw16(op::kWrite16, 0, 1), kBlockSize, DataDirection::write);
    return exec(*c, nexus);
  }
  uint16_t attention(uint64_t nexus) {
    Cmd c({op::kTestUnitReady, 0, 0, 0, 0, 0}, 0);
    if (exec(c, nexus) != kStatusCheckCondition || c.sense_key() != sense_key::kUnitAttention) return 0;
    return c.asc();
  }
  uint64_t c_ = 0;
};

TEST_F(ScsiPrTest, RegisterAndReadKeys) {
  ASSERT_EQ(out(a_, 0, 0, 0, 0xaaaa), kStatusGood);
  ASSERT_EQ(out(b_, 0, 0, 0, 0xbbbb), kStatusGood);
  auto keys = in(a_, 0);
  ASSERT_EQ(keys.size(), 24u);
  EXPECT_EQ(get32(keys.data()), 2u);  // PRGENERATION
  EXPECT_EQ(get32(keys.data() + 4), 16u);
  EXPECT_EQ(get64(keys.data() + 8), 0xaaaau);
  EXPECT_EQ(get64(keys.data() + 16), 0xbbbbu);
  // REGISTER with the wrong current key, or a key from an unregistered nexus: conflict.
  EXPECT_EQ(out(a_, 0, 0, 0x1234, 0xcccc), kStatusReservationConflict);
  EXPECT_EQ(out(c_, 0, 0, 0x1234, 0xcccc), kStatusReservationConflict);
  // REGISTER AND IGNORE EXISTING KEY replaces it whatever the key given.
  ASSERT_EQ(out(a_, 6, 0, 0, 0xa2), kStatusGood);
  keys = in(b_, 0);
  EXPECT_EQ(get32(keys.data()), 3u);
  EXPECT_EQ(get64(keys.data() + 8), 0xa2u);
  // Unregistering (a new key of zero).
  ASSERT_EQ(out(a_, 0, 0, 0xa2, 0), kStatusGood);
  keys = in(b_, 0);
  EXPECT_EQ(get32(keys.data() + 4), 8u);
  EXPECT_EQ(get64(keys.data() + 8), 0xbbbbu);
}

TEST_F(ScsiPrTest, WriteExclusiveLetsOthersReadOnly) {
  ASSERT_EQ(out(a_, 0, 0, 0, 0xa), kStatusGood);
  ASSERT_EQ(out(b_, 0, 0, 0, 0xb), kStatusGood);
  EXPECT_EQ(out(b_, 1, 1, 0xa, 0), kStatusReservationConflict);  // not B's key
  ASSERT_EQ(out(a_, 1, 1, 0xa, 0), kStatusGood);                 // WRITE EXCLUSIVE
  auto res = in(b_, 1);
  ASSERT_EQ(res.size(), 24u);
  EXPECT_EQ(get32(res.data() + 4), 16u);
  EXPECT_EQ(get64(res.data() + 8), 0xau);
  EXPECT_EQ(res[21], 1);
  EXPECT_EQ(read_as(b_), kStatusGood);
  EXPECT_EQ(write_as(b_), kStatusReservationConflict);
  EXPECT_EQ(read_as(c_), kStatusGood);
  EXPECT_EQ(write_as(c_), kStatusReservationConflict);
  EXPECT_EQ(write_as(a_), kStatusGood);
  Cmd inq({op::kInquiry, 0, 0, 0, 36, 0}, 36);
  EXPECT_EQ(exec(inq, c_), kStatusGood);
  // Another RESERVE of the same type by the holder is fine; by someone else, a conflict.
  EXPECT_EQ(out(a_, 1, 1, 0xa, 0), kStatusGood);
  EXPECT_EQ(out(b_, 1, 1, 0xb, 0), kStatusReservationConflict);
  // SPC-2 RESERVE conflicts while registrations exist.
  Cmd res6({op::kReserve6, 0, 0, 0, 0, 0}, 0);
  EXPECT_EQ(exec(res6, a_), kStatusReservationConflict);
}

TEST_F(ScsiPrTest, ExclusiveAccessKeepsOthersFromReading) {
  ASSERT_EQ(out(a_, 0, 0, 0, 0xa), kStatusGood);
  ASSERT_EQ(out(b_, 0, 0, 0, 0xb), kStatusGood);
  ASSERT_EQ(out(a_, 1, 3, 0xa, 0), kStatusGood);
  EXPECT_EQ(read_as(b_), kStatusReservationConflict);
  EXPECT_EQ(read_as(c_), kStatusReservationConflict);
  EXPECT_EQ(read_as(a_), kStatusGood);
}

TEST_F(ScsiPrTest, RegistrantsOnlyAdmitsEveryRegistrantAndReleaseTellsThem) {
  ASSERT_EQ(out(a_, 0, 0, 0, 0xa), kStatusGood);
  ASSERT_EQ(out(b_, 0, 0, 0, 0xb), kStatusGood);
  ASSERT_EQ(out(a_, 1, 5, 0xa, 0), kStatusGood);  // WRITE EXCLUSIVE - REGISTRANTS ONLY
  EXPECT_EQ(write_as(b_), kStatusGood);
  EXPECT_EQ(write_as(c_), kStatusReservationConflict);
  EXPECT_EQ(read_as(c_), kStatusGood);
  uint16_t code = 0;
  EXPECT_EQ(out(a_, 2, 1, 0xa, 0, 0, &code), kStatusCheckCondition);  // the wrong type
  EXPECT_EQ(code, 0x2604);
  EXPECT_EQ(out(b_, 2, 5, 0xb, 0), kStatusGood);  // B does not hold it: no effect
  EXPECT_EQ(in(a_, 1).size(), 24u);
  ASSERT_EQ(out(a_, 2, 5, 0xa, 0), kStatusGood);
  EXPECT_EQ(in(a_, 1).size(), 8u);   // no reservation
  EXPECT_EQ(attention(b_), 0x2a04);  // RESERVATIONS RELEASED
  EXPECT_EQ(attention(a_), 0);
  EXPECT_EQ(write_as(c_), kStatusGood);
}

TEST_F(ScsiPrTest, AllRegistrantsHasNoSingleHolder) {
  ASSERT_EQ(out(a_, 0, 0, 0, 0xa), kStatusGood);
  ASSERT_EQ(out(b_, 0, 0, 0, 0xb), kStatusGood);
  ASSERT_EQ(out(a_, 1, 8, 0xa, 0), kStatusGood);  // EXCLUSIVE ACCESS - ALL REGISTRANTS
  auto res = in(c_, 1);
  ASSERT_EQ(res.size(), 24u);
  EXPECT_EQ(get64(res.data() + 8), 0u);
  EXPECT_EQ(res[21], 8);
  EXPECT_EQ(read_as(b_), kStatusGood);
  EXPECT_EQ(read_as(c_), kStatusReservationConflict);
  // The reservation lasts while any registrant does.
  ASSERT_EQ(out(a_, 0, 0, 0xa, 0), kStatusGood);
  EXPECT_EQ(read_as(c_), kStatusReservationConflict);
  ASSERT_EQ(out(b_, 0, 0, 0xb, 0), kStatusGood);
  EXPECT_EQ(read_as(c_), kStatusGood);
}

TEST_F(ScsiPrTest, PreemptTakesTheReservationAndRemovesTheHolder) {
  ASSERT_EQ(out(a_, 0, 0, 0, 0xa), kStatusGood);
  ASSERT_EQ(out(b_, 0, 0, 0, 0xb), kStatusGood);
  ASSERT_EQ(out(a_, 1, 1, 0xa, 0), kStatusGood);
  ASSERT_EQ(out(b_, 4, 3, 0xb, 0xa), kStatusGood);  // B preempts A, EXCLUSIVE ACCESS
  auto res = in(b_, 1);
  ASSERT_EQ(res.size(), 24u);
  EXPECT_EQ(get64(res.data() + 8), 0xbu);
  EXPECT_EQ(res[21], 3);
  auto keys = in(b_, 0);
  EXPECT_EQ(get32(keys.data() + 4), 8u);  // only B's key is left
  EXPECT_EQ(attention(a_), 0x2a05);       // REGISTRATIONS PREEMPTED
  EXPECT_EQ(read_as(a_), kStatusReservationConflict);
  // Preempting a key nobody has is a conflict; a zero key without a reservation to take, an error.
  EXPECT_EQ(out(b_, 4, 3, 0xb, 0x77), kStatusReservationConflict);
  uint16_t code = 0;
  ASSERT_EQ(out(b_, 2, 3, 0xb, 0), kStatusGood);
  EXPECT_EQ(out(b_, 4, 3, 0xb, 0, 0, &code), kStatusCheckCondition);
  EXPECT_EQ(code, 0x2600);
  // PREEMPT AND ABORT is not implemented: refused, not faked.
  EXPECT_EQ(out(b_, 5, 3, 0xb, 0xa, 0, &code), kStatusCheckCondition);
  EXPECT_EQ(code, 0x2400);
}

TEST_F(ScsiPrTest, ClearRemovesEverything) {
  ASSERT_EQ(out(a_, 0, 0, 0, 0xa), kStatusGood);
  ASSERT_EQ(out(b_, 0, 0, 0, 0xb), kStatusGood);
  ASSERT_EQ(out(a_, 1, 3, 0xa, 0), kStatusGood);
  const uint32_t gen = get32(in(a_, 0).data());
  EXPECT_EQ(out(c_, 3, 0, 0xc, 0), kStatusReservationConflict);  // unregistered
  ASSERT_EQ(out(b_, 3, 0, 0xb, 0), kStatusGood);
  EXPECT_EQ(attention(a_), 0x2a03);  // RESERVATIONS PREEMPTED, before anything else A sends
  auto keys = in(a_, 0);
  ASSERT_EQ(keys.size(), 8u);
  EXPECT_EQ(get32(keys.data()), gen + 1);
  EXPECT_EQ(get32(keys.data() + 4), 0u);
  EXPECT_EQ(in(a_, 1).size(), 8u);
  EXPECT_EQ(read_as(c_), kStatusGood);
}

TEST_F(ScsiPrTest, RegistrationOutlivesTheSessionAndUnsupportedOptionsAreRefused) {
  ASSERT_EQ(out(b_, 0, 0, 0, 0xb), kStatusGood);
  ASSERT_EQ(out(b_, 1, 3, 0xb, 0), kStatusGood);
  dev_->remove_nexus(b_);
  // The same initiator port logs in again through the same target port: still the holder.
  const uint64_t again = dev_->add_nexus("iqn.2026-12.io.sluice:host-b,i,0x23d000000002", 2);
  EXPECT_EQ(read_as(again), kStatusGood);
  EXPECT_EQ(read_as(a_), kStatusReservationConflict);
  uint16_t code = 0;
  EXPECT_EQ(out(a_, 0, 0, 0, 0xa, 0x01, &code), kStatusCheckCondition);  // APTPL
  EXPECT_EQ(code, 0x2600);
  EXPECT_EQ(out(a_, 0, 0, 0, 0xa, 0x04, &code), kStatusCheckCondition);  // ALL_TG_PT
  EXPECT_EQ(code, 0x2600);
  EXPECT_EQ(out(again, 1, 2, 0xb, 0, 0, &code), kStatusCheckCondition);  // type 2 is obsolete
  EXPECT_EQ(code, 0x2400);
}

TEST_F(ScsiPrTest, ReportCapabilitiesAndFullStatus) {
  auto caps = in(a_, 2);
  ASSERT_EQ(caps.size(), 8u);
  EXPECT_EQ(get16(caps.data()), 8);
  EXPECT_EQ(caps[3] & 0x80, 0x80);  // TMV
  EXPECT_EQ(caps[4], 0xea);
  EXPECT_EQ(caps[5], 0x01);
  ASSERT_EQ(out(b_, 0, 0, 0, 0xb), kStatusGood);
  ASSERT_EQ(out(b_, 1, 1, 0xb, 0), kStatusGood);
  auto full = in(a_, 3);
  ASSERT_GE(full.size(), 8u + 24u);
  EXPECT_EQ(get64(full.data() + 8), 0xbu);
  EXPECT_EQ(full[8 + 12] & 0x01, 1);  // R_HOLDER
  EXPECT_EQ(full[8 + 13], 1);
  EXPECT_EQ(get16(full.data() + 8 + 18), 2);  // B's relative target port
  const uint32_t tid_len = get32(full.data() + 8 + 20);
  ASSERT_EQ(full.size(), 8u + 24u + tid_len);
  EXPECT_EQ(full[32], 0x45);  // iSCSI, initiator port format
  const std::string name(reinterpret_cast<const char*>(full.data() + 36));
  EXPECT_EQ(name, "iqn.2026-12.io.sluice:host-b,i,0x23d000000002");
  EXPECT_EQ(get32(full.data() + 4), full.size() - 8);
}

}  // namespace
}  // namespace sluice::scsi::testing
