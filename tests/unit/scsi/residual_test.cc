// Commands whose CDB moves more (or less) than the transport's expected length: the block
// commands move what fits and report the rest as an overflow residual (libiscsi's
// iSCSIResiduals suite, LIO's behaviour); those whose data-out is compared refuse.
#include "scsi_test_support.h"

namespace sluice::scsi::testing {
namespace {

TEST_F(ScsiTest, ReadLongerThanExpectedFillsWhatIsExpected) {
  const auto data = pattern(4 * kBlockSize, 30);
  write(0, data);
  auto whole = make(rw16(op::kRead16, 0, 4), 2 * kBlockSize);
  ASSERT_EQ(exec(*whole), kStatusGood);
  EXPECT_EQ(whole->task.transferred, 2 * kBlockSize);
  EXPECT_EQ(whole->task.residual_kind, Residual::overflow);
  EXPECT_EQ(whole->task.residual, 2 * kBlockSize);
  EXPECT_EQ(std::memcmp(whole->data(), data.data(), 2 * kBlockSize), 0);
  // Part of a block: the first 200 bytes of it.
  auto part = make(rw16(op::kRead16, 1, 1), 200);
  ASSERT_EQ(exec(*part), kStatusGood);
  EXPECT_EQ(part->task.transferred, 200u);
  EXPECT_EQ(part->task.residual_kind, Residual::overflow);
  EXPECT_EQ(part->task.residual, kBlockSize - 200);
  EXPECT_EQ(std::memcmp(part->data(), data.data() + kBlockSize, 200), 0);
  // Nothing expected: nothing moved, the whole block an overflow.
  auto none = make(rw16(op::kRead16, 0, 1), 0);
  ASSERT_EQ(exec(*none), kStatusGood);
  EXPECT_EQ(none->task.transferred, 0u);
  EXPECT_EQ(none->task.residual_kind, Residual::overflow);
  EXPECT_EQ(none->task.residual, kBlockSize);
}

TEST_F(ScsiTest, WriteLongerThanExpectedWritesTheWholeBlocksSent) {
  const auto old_data = pattern(2 * kBlockSize, 31);
  write(50, old_data);
  const auto sent = pattern(kBlockSize, 32);
  auto c = make(rw16(op::kWrite16, 50, 2), kBlockSize, DataDirection::write);
  std::memcpy(c->data(), sent.data(), kBlockSize);
  ASSERT_EQ(exec(*c), kStatusGood);
  EXPECT_EQ(c->task.transferred, kBlockSize);
  EXPECT_EQ(c->task.residual_kind, Residual::overflow);
  EXPECT_EQ(c->task.residual, kBlockSize);
  auto got = read(50, 2);
  EXPECT_EQ(std::memcmp(got.data(), sent.data(), kBlockSize), 0);
  EXPECT_EQ(std::memcmp(got.data() + kBlockSize, old_data.data() + kBlockSize, kBlockSize), 0);
  // Less than a block: nothing written. WRITE AND VERIFY does the same.
  for (uint8_t opcode : {op::kWrite16, op::kWriteVerify16}) {
    auto part = make(rw16(opcode, 51, 1), 200, DataDirection::write);
    std::memset(part->data(), 0xee, 200);
    ASSERT_EQ(exec(*part), kStatusGood);
    EXPECT_EQ(part->task.residual_kind, Residual::overflow);
    EXPECT_EQ(part->task.residual, kBlockSize - 200);
  }
  got = read(50, 2);
  EXPECT_EQ(std::memcmp(got.data() + kBlockSize, old_data.data() + kBlockSize, kBlockSize), 0);
  // WRITE AND VERIFY of 2 blocks with one sent: writes and verifies the first.
  auto wv = make(rw16(op::kWriteVerify16, 50, 2, 0x02), kBlockSize, DataDirection::write);
  std::memcpy(wv->data(), old_data.data(), kBlockSize);
  ASSERT_EQ(exec(*wv), kStatusGood);
  EXPECT_EQ(wv->task.residual_kind, Residual::overflow);
  EXPECT_EQ(read(50, 2), old_data);
}

TEST_F(ScsiTest, ComparingCommandsRefuseADataOutOfTheWrongSize) {
  // VERIFY with BYTCHK 1 and half its data: INVALID FIELD IN CDB, overflow.
  auto v = make(rw16(op::kVerify16, 0, 2, 0x02), kBlockSize, DataDirection::write);
  ASSERT_EQ(exec(*v), kStatusCheckCondition);
  EXPECT_EQ(v->asc(), 0x2400);
  EXPECT_EQ(v->task.residual_kind, Residual::overflow);
  // COMPARE AND WRITE with more data than its blocks (NUMBER OF LOGICAL BLOCKS 0 meant as
  // 256, libiscsi's CompareAndWrite tests) or less: refused, nothing written.
  const auto before = read(90, 1);
  std::vector<uint8_t> cdb(16);
  cdb[0] = op::kCompareAndWrite;
  put64(&cdb[2], 90);
  for (uint8_t blocks : {0, 1}) {
    cdb[13] = blocks;
    auto c = make(cdb, 4 * kBlockSize, DataDirection::write);
    ASSERT_EQ(exec(*c), kStatusCheckCondition);
    EXPECT_EQ(c->asc(), 0x2400);
    EXPECT_EQ(c->task.residual_kind, Residual::underflow);
  }
  cdb[13] = 2;
  auto short_data = make(cdb, 2 * kBlockSize, DataDirection::write);
  ASSERT_EQ(exec(*short_data), kStatusCheckCondition);
  EXPECT_EQ(short_data->task.residual_kind, Residual::overflow);
  EXPECT_EQ(read(90, 1), before);
}

}  // namespace
}  // namespace sluice::scsi::testing
