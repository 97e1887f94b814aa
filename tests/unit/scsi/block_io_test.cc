// Data through the SCSI layer on a malloc bdev: READ and WRITE of every size, FUA,
// SYNCHRONIZE CACHE, VERIFY, WRITE AND VERIFY, UNMAP, WRITE SAME, COMPARE AND WRITE,
// GET LBA STATUS, and the errors each refuses with.
#include "scsi_test_support.h"

namespace sluice::scsi::testing {
namespace {

TEST_F(ScsiTest, WriteThenReadBackEverySize) {
  const auto d6 = pattern(2 * kBlockSize, 1);
  Cmd w6({op::kWrite6, 0x00, 0x01, 0x00, 2, 0}, d6.size(), DataDirection::write);  // LBA 256
  std::memcpy(w6.data(), d6.data(), d6.size());
  ASSERT_EQ(exec(w6), kStatusGood);
  EXPECT_EQ(w6.task.transferred, d6.size());
  Cmd r6({op::kRead6, 0x00, 0x01, 0x00, 2, 0}, d6.size());
  ASSERT_EQ(exec(r6), kStatusGood);
  EXPECT_EQ(std::vector<uint8_t>(r6.data(), r6.data() + d6.size()), d6);

  const auto d10 = pattern(3 * kBlockSize, 2);
  Cmd w10({op::kWrite10, 0, 0, 0, 0x02, 0x00, 0, 0, 3, 0}, d10.size(), DataDirection::write);  // LBA 512
  std::memcpy(w10.data(), d10.data(), d10.size());
  ASSERT_EQ(exec(w10), kStatusGood);
  Cmd r10({op::kRead10, 0, 0, 0, 0x02, 0x00, 0, 0, 3, 0}, d10.size());
  ASSERT_EQ(exec(r10), kStatusGood);
  EXPECT_EQ(std::vector<uint8_t>(r10.data(), r10.data() + d10.size()), d10);

  const auto d12 = pattern(kBlockSize, 3);
  Cmd w12({op::kWrite12, 0, 0, 0, 0x03, 0x00, 0, 0, 0, 1, 0, 0}, d12.size(), DataDirection::write);
  std::memcpy(w12.data(), d12.data(), d12.size());
  ASSERT_EQ(exec(w12), kStatusGood);
  Cmd r12({op::kRead12, 0, 0, 0, 0x03, 0x00, 0, 0, 0, 1, 0, 0}, d12.size());
  ASSERT_EQ(exec(r12), kStatusGood);
  EXPECT_EQ(std::vector<uint8_t>(r12.data(), r12.data() + d12.size()), d12);

  const auto d16 = pattern(8 * kBlockSize, 4);
  write(kBlocks - 8, d16);  // the last blocks of the LUN
  EXPECT_EQ(read(kBlocks - 8, 8), d16);
  // READ(10) of what WRITE(6) wrote: one medium, whatever the CDB size.
  Cmd cross({op::kRead10, 0, 0, 0, 0x01, 0x00, 0, 0, 2, 0}, d6.size());
  ASSERT_EQ(exec(cross), kStatusGood);
  EXPECT_EQ(std::vector<uint8_t>(cross.data(), cross.data() + d6.size()), d6);
}

TEST_F(ScsiTest, ReadIntoSeveralBuffersAndALongerExpectedLength) {
  write(40, pattern(4 * kBlockSize, 5));
  auto c = make(rw16(op::kRead16, 40, 2), 4 * kBlockSize);
  // Three segments: the first two hold the data, the third is the transport's spare room.
  iovec iov[3] = {{c->data(), kBlockSize / 2},
                  {c->data() + kBlockSize / 2, kBlockSize * 3 / 2},
                  {c->data() + 2 * kBlockSize, 2 * kBlockSize}};
  c->task.iov = iov;
  c->task.iovcnt = 3;
  ASSERT_EQ(exec(*c), kStatusGood);
  EXPECT_EQ(c->task.transferred, 2 * kBlockSize);
  EXPECT_EQ(c->task.residual_kind, Residual::underflow);
  EXPECT_EQ(c->task.residual, 2 * kBlockSize);
  const auto want = pattern(4 * kBlockSize, 5);
  EXPECT_EQ(std::memcmp(c->data(), want.data(), 2 * kBlockSize), 0);
}

TEST_F(ScsiTest, RangeProtectionAndZeroLengthChecks) {
  auto past = make(rw16(op::kRead16, kBlocks - 1, 2), 2 * kBlockSize);
  ASSERT_EQ(exec(*past), kStatusCheckCondition);
  EXPECT_EQ(past->sense_key(), sense_key::kIllegalRequest);
  EXPECT_EQ(past->asc(), 0x2100);
  auto huge = make(rw16(op::kWrite16, ~uint64_t{0}, 1), kBlockSize, DataDirection::write);
  ASSERT_EQ(exec(*huge), kStatusCheckCondition);
  EXPECT_EQ(huge->asc(), 0x2100);
  auto rdprotect = make(rw16(op::kRead16, 0, 1, 0x20), kBlockSize);
  ASSERT_EQ(exec(*rdprotect), kStatusCheckCondition);
  EXPECT_EQ(rdprotect->asc(), 0x2400);
  EXPECT_EQ(get16(rdprotect->task.sense.data() + 16), 1);  // byte 1 of the CDB
  Cmd wrprotect({op::kWrite10, 0x40, 0, 0, 0, 0, 0, 0, 1, 0}, kBlockSize, DataDirection::write);
  ASSERT_EQ(exec(wrprotect), kStatusCheckCondition);
  EXPECT_EQ(wrprotect.asc(), 0x2400);
  // Zero blocks move nothing and are no error; past the end they still are.
  Cmd none({op::kRead10, 0, 0, 0, 0, 5, 0, 0, 0, 0}, 0);
  ASSERT_EQ(exec(none), kStatusGood);
  EXPECT_EQ(none.task.transferred, 0u);
  auto none_past = make(rw16(op::kRead16, kBlocks + 1, 0), 0);
  ASSERT_EQ(exec(*none_past), kStatusCheckCondition);
  EXPECT_EQ(none_past->asc(), 0x2100);
}

TEST_F(ScsiTest, FuaAndSynchronizeCacheFlush) {
  const uint64_t before = flushes();
  write(0, pattern(kBlockSize, 6), 0x08);  // FUA
  EXPECT_EQ(flushes(), before + 1);
  write(0, pattern(kBlockSize, 7), 0x10);  // DPO: accepted, no flush
  EXPECT_EQ(flushes(), before + 1);
  Cmd s10({op::kSyncCache10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0);
  ASSERT_EQ(exec(s10), kStatusGood);
  EXPECT_EQ(flushes(), before + 2);
  auto s16 = make(rw16(op::kSyncCache16, 100, 10), 0);
  ASSERT_EQ(exec(*s16), kStatusGood);
  EXPECT_EQ(flushes(), before + 3);
  auto s16_past = make(rw16(op::kSyncCache16, kBlocks, 10), 0);
  ASSERT_EQ(exec(*s16_past), kStatusCheckCondition);
  EXPECT_EQ(s16_past->asc(), 0x2100);
}

// PRE-FETCH: range checked (0 blocks: to the end), then GOOD with nothing moved or flushed.
TEST_F(ScsiTest, PrefetchChecksItsRangeOnly) {
  const uint64_t before = flushes();
  Cmd p10({op::kPrefetch10, 0x02, 0, 0, 0, 0, 0, 0, 8, 0}, 0);  // IMMED
  ASSERT_EQ(exec(p10), kStatusGood);
  auto p16 = make(rw16(op::kPrefetch16, kBlocks - 256, 256), 0);
  ASSERT_EQ(exec(*p16), kStatusGood);
  auto to_end = make(rw16(op::kPrefetch16, 5, 0), 0);
  ASSERT_EQ(exec(*to_end), kStatusGood);
  for (auto [lba, blocks] : {std::pair<uint64_t, uint32_t>{kBlocks - 1, 2}, {kBlocks + 1, 0}, {~uint64_t{0}, 1}}) {
    auto past = make(rw16(op::kPrefetch16, lba, blocks), 0);
    ASSERT_EQ(exec(*past), kStatusCheckCondition);
    EXPECT_EQ(past->asc(), 0x2100) << lba;
  }
  EXPECT_EQ(flushes(), before);
}

TEST_F(ScsiTest, VerifyComparesAndReportsTheMiscompareOffset) {
  const auto d = pattern(4 * kBlockSize, 8);
  write(64, d);
  auto medium = make(rw16(op::kVerify16, 64, 4), 0, DataDirection::none);  // BYTCHK 0
  ASSERT_EQ(exec(*medium), kStatusGood);
  auto same = make(rw16(op::kVerify16, 64, 4, 0x02), d.size(), DataDirection::write);
  std::memcpy(same->data(), d.data(), d.size());
  ASSERT_EQ(exec(*same), kStatusGood);
  auto differ = make(rw16(op::kVerify16, 64, 4, 0x02), d.size(), DataDirection::write);
  std::memcpy(differ->data(), d.data(), d.size());
  differ->data()[1234] ^= 0x40;
  ASSERT_EQ(exec(*differ), kStatusCheckCondition);
  EXPECT_EQ(differ->sense_key(), sense_key::kMiscompare);
  EXPECT_EQ(differ->asc(), 0x1d00);
  EXPECT_EQ(differ->task.sense[0], 0xf0);  // VALID: INFORMATION holds the offset
  EXPECT_EQ(get32(differ->task.sense.data() + 3), 1234u);
  // BYTCHK 11b: one block stands for each.
  write(80, std::vector<uint8_t>(3 * kBlockSize, 0x5a));
  Cmd one({op::kVerify10, 0x06, 0, 0, 0, 80, 0, 0, 3, 0}, kBlockSize, DataDirection::write);
  std::memset(one.data(), 0x5a, kBlockSize);
  ASSERT_EQ(exec(one), kStatusGood);
  Cmd reserved({op::kVerify10, 0x04, 0, 0, 0, 80, 0, 0, 3, 0}, kBlockSize, DataDirection::write);
  ASSERT_EQ(exec(reserved), kStatusCheckCondition);
  EXPECT_EQ(reserved.asc(), 0x2400);
}

TEST_F(ScsiTest, WriteAndVerify) {
  const auto d = pattern(2 * kBlockSize, 9);
  const uint64_t before = flushes();
  Cmd wv({op::kWriteVerify10, 0x02, 0, 0, 0, 90, 0, 0, 2, 0}, d.size(), DataDirection::write);
  std::memcpy(wv.data(), d.data(), d.size());
  ASSERT_EQ(exec(wv), kStatusGood);
  EXPECT_EQ(flushes(), before + 1);  // on the medium before it is read back
  EXPECT_EQ(read(90, 2), d);
}

TEST_F(ScsiTest, UnmapThenReadZeroes) {
  write(200, pattern(16 * kBlockSize, 10));
  Cmd c({op::kUnmap, 0, 0, 0, 0, 0, 0, 0, 40, 0}, 40, DataDirection::write);
  put16(c.data(), 38);
  put16(c.data() + 2, 32);
  put64(c.data() + 8, 200);
  put32(c.data() + 16, 4);
  put64(c.data() + 24, 210);
  put32(c.data() + 32, 6);
  ASSERT_EQ(exec(c), kStatusGood);
  const auto got = read(200, 16);
  const auto orig = pattern(16 * kBlockSize, 10);
  for (uint32_t b = 0; b < 16; ++b) {
    const bool unmapped = b < 4 || b >= 10;
    const uint8_t* p = got.data() + b * kBlockSize;
    if (unmapped)
      EXPECT_TRUE(std::all_of(p, p + kBlockSize, [](uint8_t x) { return x == 0; })) << b;
    else
      EXPECT_EQ(std::memcmp(p, orig.data() + b * kBlockSize, kBlockSize), 0) << b;
  }
}

TEST_F(ScsiTest, UnmapOutOfRangeUnmapsNothing) {
  const auto d = pattern(2 * kBlockSize, 11);
  write(300, d);
  Cmd c({op::kUnmap, 0, 0, 0, 0, 0, 0, 0, 40, 0}, 40, DataDirection::write);
  put16(c.data() + 2, 32);
  put64(c.data() + 8, 300);
  put32(c.data() + 16, 2);
  put64(c.data() + 24, kBlocks - 1);
  put32(c.data() + 32, 2);
  ASSERT_EQ(exec(c), kStatusCheckCondition);
  EXPECT_EQ(c.asc(), 0x2100);
  EXPECT_EQ(read(300, 2), d);
  Cmd short_list({op::kUnmap, 0, 0, 0, 0, 0, 0, 0, 4, 0}, 4, DataDirection::write);
  ASSERT_EQ(exec(short_list), kStatusCheckCondition);
  EXPECT_EQ(short_list.asc(), 0x1a00);
  Cmd anchor({op::kUnmap, 1, 0, 0, 0, 0, 0, 0, 0, 0}, 0);
  ASSERT_EQ(exec(anchor), kStatusCheckCondition);
  EXPECT_EQ(anchor.asc(), 0x2400);
}

TEST_F(ScsiTest, WriteSamePatternUnmapAndNdob) {
  std::vector<uint8_t> block = pattern(kBlockSize, 12);
  Cmd ws10({op::kWriteSame10, 0, 0, 0, 0x01, 0x00, 0, 0, 5, 0}, kBlockSize, DataDirection::write);  // LBA 256
  std::memcpy(ws10.data(), block.data(), kBlockSize);
  ASSERT_EQ(exec(ws10), kStatusGood);
  const auto got = read(256, 6);
  for (int b = 0; b < 5; ++b) EXPECT_EQ(std::memcmp(got.data() + b * kBlockSize, block.data(), kBlockSize), 0) << b;
  // UNMAP bit with a block of zeroes: unmapped, and reads back as zeroes.
  write(400, pattern(4 * kBlockSize, 13));
  auto ws16 = make(rw16(op::kWriteSame16, 400, 3, 0x08), kBlockSize, DataDirection::write);
  ASSERT_EQ(exec(*ws16), kStatusGood);
  auto z = read(400, 4);
  EXPECT_TRUE(std::all_of(z.begin(), z.begin() + 3 * kBlockSize, [](uint8_t x) { return x == 0; }));
  EXPECT_EQ(std::memcmp(z.data() + 3 * kBlockSize, pattern(4 * kBlockSize, 13).data() + 3 * kBlockSize, kBlockSize), 0);
  // NDOB: zeroes without a data-out buffer.
  write(500, pattern(2 * kBlockSize, 14));
  auto ndob = make(rw16(op::kWriteSame16, 500, 2, 0x01), 0, DataDirection::none);
  ASSERT_EQ(exec(*ndob), kStatusGood);
  z = read(500, 2);
  EXPECT_TRUE(std::all_of(z.begin(), z.end(), [](uint8_t x) { return x == 0; }));
  // WSNZ: zero blocks are refused, as is a range past the end.
  auto zero = make(rw16(op::kWriteSame16, 0, 0), kBlockSize, DataDirection::write);
  ASSERT_EQ(exec(*zero), kStatusCheckCondition);
  EXPECT_EQ(zero->asc(), 0x2400);
  auto past = make(rw16(op::kWriteSame16, kBlocks - 1, 2), kBlockSize, DataDirection::write);
  ASSERT_EQ(exec(*past), kStatusCheckCondition);
  EXPECT_EQ(past->asc(), 0x2100);
}

TEST_F(ScsiTest, WriteSameLargerThanOneChunk) {
  // More than the 1 MiB bounce chunk: the pattern goes out in several writes.
  const uint32_t blocks = 5000;
  std::vector<uint8_t> block(kBlockSize, 0xa5);
  block[0] = 1;
  auto ws = make(rw16(op::kWriteSame16, 1000, blocks), kBlockSize, DataDirection::write);
  std::memcpy(ws->data(), block.data(), kBlockSize);
  ASSERT_EQ(exec(*ws), kStatusGood);
  const auto got = read(1000 + blocks - 2, 3);
  EXPECT_EQ(std::memcmp(got.data(), block.data(), kBlockSize), 0);
  EXPECT_EQ(std::memcmp(got.data() + kBlockSize, block.data(), kBlockSize), 0);
  EXPECT_NE(got[2 * kBlockSize], 1);  // the block after the range is untouched
}

TEST_F(ScsiTest, CompareAndWriteMatchesThenWrites) {
  const auto old_data = pattern(2 * kBlockSize, 15);
  const auto new_data = pattern(2 * kBlockSize, 16);
  write(600, old_data);
  std::vector<uint8_t> cdb(16);
  cdb[0] = op::kCompareAndWrite;
  put64(&cdb[2], 600);
  cdb[13] = 2;
  auto c = make(cdb, 4 * kBlockSize, DataDirection::write);
  std::memcpy(c->data(), old_data.data(), old_data.size());
  std::memcpy(c->data() + old_data.size(), new_data.data(), new_data.size());
  ASSERT_EQ(exec(*c), kStatusGood);
  EXPECT_EQ(read(600, 2), new_data);
}

TEST_F(ScsiTest, CompareAndWriteMiscompareLeavesTheBlocksAndNamesTheOffset) {
  const auto old_data = pattern(2 * kBlockSize, 17);
  write(700, old_data);
  std::vector<uint8_t> cdb(16);
  cdb[0] = op::kCompareAndWrite;
  put64(&cdb[2], 700);
  cdb[13] = 2;
  auto c = make(cdb, 4 * kBlockSize, DataDirection::write);
  std::memcpy(c->data(), old_data.data(), old_data.size());
  c->data()[kBlockSize + 17] ^= 1;
  std::memset(c->data() + old_data.size(), 0xee, old_data.size());
  ASSERT_EQ(exec(*c), kStatusCheckCondition);
  EXPECT_EQ(c->sense_key(), sense_key::kMiscompare);
  EXPECT_EQ(c->asc(), 0x1d00);
  EXPECT_EQ(c->task.sense[0] & 0x80, 0x80);
  EXPECT_EQ(get32(c->task.sense.data() + 3), kBlockSize + 17);
  EXPECT_EQ(read(700, 2), old_data);
  // Too many blocks for MAXIMUM COMPARE AND WRITE LENGTH.
  cdb[13] = 65;
  auto big = make(cdb, 130 * kBlockSize, DataDirection::write);
  ASSERT_EQ(exec(*big), kStatusCheckCondition);
  EXPECT_EQ(big->asc(), 0x2400);
}

// ORWRITE: each block becomes itself ORed with the data-out; ORPROTECT refused; 0 blocks is
// GOOD; a write-protected LUN refuses it (lun_test has the read-only LUN).
TEST_F(ScsiTest, OrWriteOrsTheDataIntoTheBlocks) {
  std::vector<uint8_t> old_data(3 * kBlockSize, 0xa5);
  write(900, old_data);
  std::vector<uint8_t> cdb = rw16(op::kOrWrite16, 900, 2, 0x08);  // FUA
  auto c = make(cdb, 2 * kBlockSize, DataDirection::write);
  std::memset(c->data(), 0x5a, 2 * kBlockSize);
  c->data()[kBlockSize + 1] = 0x02;
  const uint64_t before = flushes();
  ASSERT_EQ(exec(*c), kStatusGood);
  EXPECT_EQ(flushes(), before + 1);
  std::vector<uint8_t> want(3 * kBlockSize, 0xff);
  want[kBlockSize + 1] = 0xa7;
  want.resize(2 * kBlockSize);
  want.insert(want.end(), kBlockSize, 0xa5);  // the third block untouched
  EXPECT_EQ(read(900, 3), want);
  auto prot = make(rw16(op::kOrWrite16, 900, 1, 0x20), kBlockSize, DataDirection::write);
  ASSERT_EQ(exec(*prot), kStatusCheckCondition);
  EXPECT_EQ(prot->asc(), 0x2400);
  auto none = make(rw16(op::kOrWrite16, 0, 0), 0, DataDirection::write);
  ASSERT_EQ(exec(*none), kStatusGood);
  auto past = make(rw16(op::kOrWrite16, kBlocks + 1, 0), 0, DataDirection::write);
  ASSERT_EQ(exec(*past), kStatusCheckCondition);
  EXPECT_EQ(past->asc(), 0x2100);
  auto short_data = make(rw16(op::kOrWrite16, 900, 2), kBlockSize, DataDirection::write);
  ASSERT_EQ(exec(*short_data), kStatusCheckCondition);
  EXPECT_EQ(short_data->task.residual_kind, Residual::overflow);
}

TEST_F(ScsiTest, CompareAndWriteExcludesOverlappingWrites) {
  // A COMPARE AND WRITE, then a WRITE to the same block submitted before it completes: the
  // write waits, so the compare sees the old data and the write lands last.
  const auto old_data = pattern(kBlockSize, 18);
  const auto caw_data = pattern(kBlockSize, 19);
  const auto later = pattern(kBlockSize, 20);
  write(800, old_data);
  std::vector<uint8_t> cdb(16);
  cdb[0] = op::kCompareAndWrite;
  put64(&cdb[2], 800);
  cdb[13] = 1;
  auto c = make(cdb, 2 * kBlockSize, DataDirection::write);
  std::memcpy(c->data(), old_data.data(), kBlockSize);
  std::memcpy(c->data() + kBlockSize, caw_data.data(), kBlockSize);
  auto w = make(rw16(op::kWrite16, 800, 1), kBlockSize, DataDirection::write);
  std::memcpy(w->data(), later.data(), kBlockSize);
  auto other = make(rw16(op::kWrite16, 801, 1), kBlockSize, DataDirection::write);  // no overlap
  submit(*c);
  submit(*w);
  submit(*other);
  EXPECT_FALSE(w->done);
  ASSERT_TRUE(wait(*c));
  ASSERT_TRUE(wait(*w));
  ASSERT_TRUE(wait(*other));
  EXPECT_EQ(c->task.status, kStatusGood);
  EXPECT_EQ(w->task.status, kStatusGood);
  EXPECT_EQ(read(800, 1), later);
  // And the other way: a write in flight holds back a COMPARE AND WRITE of its blocks.
  auto w2 = make(rw16(op::kWrite16, 800, 1), kBlockSize, DataDirection::write);
  std::memcpy(w2->data(), old_data.data(), kBlockSize);
  auto c2 = make(cdb, 2 * kBlockSize, DataDirection::write);
  std::memcpy(c2->data(), old_data.data(), kBlockSize);
  std::memcpy(c2->data() + kBlockSize, caw_data.data(), kBlockSize);
  submit(*w2);
  submit(*c2);
  ASSERT_TRUE(wait(*w2));
  ASSERT_TRUE(wait(*c2));
  EXPECT_EQ(c2->task.status, kStatusGood);  // it compared against w2's data
  EXPECT_EQ(read(800, 1), caw_data);
}

TEST_F(ScsiTest, GetLbaStatus) {
  std::vector<uint8_t> cdb(16);
  cdb[0] = op::kServiceActionIn16;
  cdb[1] = op::kSaGetLbaStatus;
  put64(&cdb[2], 10);
  put32(&cdb[10], 24);
  auto c = make(cdb, 24);
  ASSERT_EQ(exec(*c), kStatusGood);
  EXPECT_EQ(get32(c->data()), 20u);  // one descriptor
  EXPECT_EQ(get64(c->data() + 8), 10u);
  EXPECT_EQ(get32(c->data() + 16), kBlocks - 10);  // malloc keeps no map: all of it is mapped
  EXPECT_EQ((*c)[20], 0);
  put64(&cdb[2], kBlocks);
  auto past = make(cdb, 24);
  ASSERT_EQ(exec(*past), kStatusCheckCondition);
  EXPECT_EQ(past->asc(), 0x2100);
}

}  // namespace
}  // namespace sluice::scsi::testing

namespace sluice::scsi::testing {
namespace {

TEST_F(ScsiTest, CompareAndWriteExcludesWritesOfOtherChannelsOnTheThread) {
  // Two connections served by one thread: a WRITE through the second waits for a COMPARE AND
  // WRITE of the same block through the first.
  Channel second(*dev_);
  const auto old_data = pattern(kBlockSize, 21);
  const auto caw_data = pattern(kBlockSize, 22);
  const auto later = pattern(kBlockSize, 23);
  write(900, old_data);
  std::vector<uint8_t> cdb(16);
  cdb[0] = op::kCompareAndWrite;
  put64(&cdb[2], 900);
  cdb[13] = 1;
  auto c = make(cdb, 2 * kBlockSize, DataDirection::write);
  std::memcpy(c->data(), old_data.data(), kBlockSize);
  std::memcpy(c->data() + kBlockSize, caw_data.data(), kBlockSize);
  auto w = make(rw16(op::kWrite16, 900, 1), kBlockSize, DataDirection::write);
  std::memcpy(w->data(), later.data(), kBlockSize);
  w->task.nexus = b_;
  submit(*c);
  second.execute(&w->task);
  EXPECT_FALSE(w->done);
  ASSERT_TRUE(wait(*c));
  ASSERT_TRUE(wait(*w));
  EXPECT_EQ(c->task.status, kStatusGood);
  EXPECT_EQ(w->task.status, kStatusGood);
  EXPECT_EQ(read(900, 1), later);
  EXPECT_EQ(second.in_flight(), 0u);
}

}  // namespace
}  // namespace sluice::scsi::testing
