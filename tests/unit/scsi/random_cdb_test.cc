// Untrusted CDBs and parameter data: thousands of random commands (known opcodes with random
// fields, and random bytes) with random buffers. Every task must complete, with a status the
// initiator can act on, sense when it is CHECK CONDITION, and no more data than expected; the
// sanitizer builds check the memory it touches.
#include <random>

#include "scsi_test_support.h"

namespace sluice::scsi::testing {
namespace {

constexpr uint8_t kOpcodes[] = {op::kTestUnitReady,
                                op::kRequestSense,
                                op::kRead6,
                                op::kWrite6,
                                op::kInquiry,
                                op::kModeSelect6,
                                op::kReserve6,
                                op::kRelease6,
                                op::kModeSense6,
                                op::kStartStopUnit,
                                op::kPreventAllow,
                                op::kReadCapacity10,
                                op::kRead10,
                                op::kWrite10,
                                op::kWriteVerify10,
                                op::kVerify10,
                                op::kSyncCache10,
                                op::kWriteSame10,
                                op::kUnmap,
                                op::kModeSelect10,
                                op::kReserve10,
                                op::kRelease10,
                                op::kModeSense10,
                                op::kPersistentReserveIn,
                                op::kPersistentReserveOut,
                                op::kRead16,
                                op::kCompareAndWrite,
                                op::kWrite16,
                                op::kWriteVerify16,
                                op::kVerify16,
                                op::kSyncCache16,
                                op::kWriteSame16,
                                op::kServiceActionIn16,
                                op::kReportLuns,
                                op::kMaintenanceIn,
                                op::kRead12,
                                op::kWrite12,
                                op::kWriteVerify12,
                                op::kVerify12};

// An LBA near the start and a length the buffer holds, in the block commands' layout.
void plausible_block_fields(uint8_t* cdb, size_t len, size_t bytes, std::mt19937_64& rng) {
  uint32_t blocks = static_cast<uint32_t>(bytes / kBlockSize);
  if (cdb[0] == op::kCompareAndWrite) blocks /= 2;
  const uint32_t lba = static_cast<uint32_t>(rng() % 4096);
  cdb[1] &= 0x1e;  // no protection fields
  switch (len) {
    case 6:
      put16(cdb + 2, static_cast<uint16_t>(lba));
      cdb[4] = static_cast<uint8_t>(blocks);
      break;
    case 10:
      put32(cdb + 2, lba);
      put16(cdb + 7, static_cast<uint16_t>(blocks));
      break;
    case 12:
      put32(cdb + 2, lba);
      put32(cdb + 6, blocks);
      break;
    default:
      put64(cdb + 2, lba);
      if (cdb[0] == op::kCompareAndWrite) {
        cdb[13] = static_cast<uint8_t>(blocks);
      } else {
        put32(cdb + 10, blocks);
      }
  }
}

TEST_F(ScsiTest, RandomCommandsAllCompleteSanely) {
  std::mt19937_64 rng(20261207);
  int good = 0, good_io = 0;
  auto below = [&](uint64_t n) { return n == 0 ? 0 : rng() % n; };
  for (int i = 0; i < 4000; ++i) {
    const size_t bytes = below(4) == 0 ? 0 : (1 + below(16)) * kBlockSize;
    auto c = std::make_unique<Cmd>(std::initializer_list<uint8_t>{}, bytes, DataDirection::write);
    for (auto& b : c->task.cdb) b = static_cast<uint8_t>(rng());
    c->task.cdb[0] = below(8) == 0 ? static_cast<uint8_t>(rng()) : kOpcodes[below(std::size(kOpcodes))];
    const size_t len = cdb_length(c->task.cdb[0]);
    c->task.cdb_length = static_cast<uint8_t>(len != 0 ? len : 16);
    if (len != 0 && below(2) == 0) {
      // Mostly small numbers, so that commands get past the range checks to the bdev.
      for (size_t k = 2; k < len - 1; ++k) c->task.cdb[k] = below(3) == 0 ? static_cast<uint8_t>(below(4)) : 0;
      c->task.cdb[len - 1] = 0;
      if (below(2) == 0) c->task.cdb[1] &= 0x1f;
      if (below(3) != 0) plausible_block_fields(c->task.cdb.data(), len, bytes, rng);
    }
    for (size_t k = 0; k < bytes; ++k) c->data()[k] = below(4) == 0 ? static_cast<uint8_t>(rng()) : 0;
    iovec iov[2];
    if (bytes >= 2 * kBlockSize && below(2) == 0) {  // sometimes two segments
      const size_t first = (1 + below(bytes / kBlockSize - 1)) * kBlockSize;
      iov[0] = {c->data(), first};
      iov[1] = {c->data() + first, bytes - first};
      c->task.iov = iov;
      c->task.iovcnt = 2;
    }
    c->task.expected_length = static_cast<uint32_t>(below(3) == 0 ? below(bytes + 1) : bytes);
    const uint64_t nexus = below(3) == 0 ? b_ : a_;
    const uint64_t lun = below(10) == 0 ? below(20) : 0;
    ASSERT_TRUE([&] {
      submit(*c, nexus, lun);
      return wait(*c);
    }()) << "command "
         << i << " opcode " << int(c->task.cdb[0]) << " never completed";
    const uint8_t st = c->task.status;
    if (st == kStatusGood) {
      ++good;
      if (c->task.transferred > 0 && data_direction(c->task.cdb.data()) == DataDirection::write) ++good_io;
    }
    ASSERT_TRUE(st == kStatusGood || st == kStatusCheckCondition || st == kStatusReservationConflict)
        << "command " << i << " status " << int(st);
    if (st == kStatusCheckCondition) {
      ASSERT_GE(c->task.sense_length, 8) << i;
      ASSERT_TRUE((c->task.sense[0] & 0x7f) == 0x70 || c->task.sense[0] == 0x72) << i;
    }
    if (data_direction(c->task.cdb.data()) == DataDirection::read) {
      ASSERT_LE(c->task.transferred, c->task.expected_length);
    }
    if (i % 50 == 0) {
      // Keep the unit usable: start it, drop reservations.
      dev_->reset();
      Cmd start({op::kStartStopUnit, 0, 0, 0, 1, 0}, 0);
      exec(start, a_);
      exec(start, a_);
    }
  }
  EXPECT_EQ(ch_->in_flight(), 0u);
  // Enough of them got past the checks to reach the bdev for the run to mean something.
  EXPECT_GT(good, 300);
  EXPECT_GT(good_io, 40);
  std::printf("%d GOOD, %d of them moving data-out\n", good, good_io);
}

}  // namespace
}  // namespace sluice::scsi::testing
