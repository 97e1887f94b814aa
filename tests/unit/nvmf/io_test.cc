// I/O commands on an I/O queue whose reactor is not the admin queue's: every opcode, FUA,
// Compare's mismatch, LBA and NSID checks.
#include <random>

#include "nvmf_test_support.h"

namespace sluice::nvmf::testing {
namespace {

void rw(Cmd& c, uint64_t slba, uint32_t blocks, uint32_t flags = 0) {
  c.req.sqe.nsid = 1;
  c.req.sqe.cdw10 = static_cast<uint32_t>(slba);
  c.req.sqe.cdw11 = static_cast<uint32_t>(slba >> 32);
  c.req.sqe.cdw12 = (blocks - 1) | flags;
}

void fill(Cmd& c, uint32_t seed) {
  std::mt19937 rng(seed);
  for (uint32_t i = 0; i < c.req.length; ++i) c.data()[i] = static_cast<uint8_t>(rng());
}

class NvmfIoTest : public NvmfTest {
 protected:
  void SetUp() override {
    NvmfTest::SetUp();
    if (HasFatalFailure()) return;
    std::tie(admin_, io_) = associate();
  }
  std::vector<uint8_t> read_back(uint64_t slba, uint32_t blocks) {
    Cmd r(sp::kIoRead, blocks * kBlockSize);
    rw(r, slba, blocks);
    EXPECT_EQ(io_->exec(r), 0);
    return std::vector<uint8_t>(r.data(), r.data() + r.req.length);
  }
  Conn* admin_ = nullptr;
  Conn* io_ = nullptr;
};

TEST_F(NvmfIoTest, WriteThenReadBack) {
  Cmd w(sp::kIoWrite, 64 * kBlockSize);
  rw(w, 100, 64);
  fill(w, 1);
  ASSERT_EQ(io_->exec(w), 0);
  EXPECT_EQ(w.req.cqe.cid, w.req.sqe.cid);
  EXPECT_EQ(read_back(100, 64), std::vector<uint8_t>(w.data(), w.data() + w.req.length));
  // The last block of the namespace.
  Cmd last(sp::kIoWrite, kBlockSize);
  rw(last, kBlocks - 1, 1);
  fill(last, 2);
  ASSERT_EQ(io_->exec(last), 0);
  EXPECT_EQ(read_back(kBlocks - 1, 1), std::vector<uint8_t>(last.data(), last.data() + kBlockSize));
}

TEST_F(NvmfIoTest, FuaWriteIsFollowedByAFlush) {
  auto flushes = [&] {
    return bdev::find(bdev_)->stats().by_type[static_cast<int>(bdev::IoType::flush)].ops.get();
  };
  const uint64_t before = flushes();
  Cmd w(sp::kIoWrite, 8 * kBlockSize);
  rw(w, 0, 8, sp::kRwFua);
  fill(w, 3);
  ASSERT_EQ(io_->exec(w), 0);
  EXPECT_EQ(flushes(), before + 1);
  Cmd plain(sp::kIoWrite, 8 * kBlockSize);
  rw(plain, 0, 8);
  ASSERT_EQ(io_->exec(plain), 0);
  EXPECT_EQ(flushes(), before + 1);
  Cmd flush(sp::kIoFlush, 0, 1);
  ASSERT_EQ(io_->exec(flush), 0);
  EXPECT_EQ(flushes(), before + 2);
}

TEST_F(NvmfIoTest, CompareMatchesAndMismatches) {
  Cmd w(sp::kIoWrite, 4 * kBlockSize);
  rw(w, 10, 4);
  fill(w, 4);
  ASSERT_EQ(io_->exec(w), 0);
  Cmd same(sp::kIoCompare, 4 * kBlockSize);
  rw(same, 10, 4);
  std::memcpy(same.data(), w.data(), same.req.length);
  EXPECT_EQ(io_->exec(same), 0);
  Cmd differs(sp::kIoCompare, 4 * kBlockSize);
  rw(differs, 10, 4);
  std::memcpy(differs.data(), w.data(), differs.req.length);
  differs.data()[3 * kBlockSize + 7] ^= 1;
  const uint16_t st = io_->exec(differs);
  EXPECT_EQ(sct(st), sp::kSctMedia);
  EXPECT_EQ(sc(st), sp::kScCompareFailure);
}

TEST_F(NvmfIoTest, WriteZeroesAndDeallocate) {
  Cmd w(sp::kIoWrite, 32 * kBlockSize);
  rw(w, 200, 32);
  fill(w, 5);
  ASSERT_EQ(io_->exec(w), 0);
  Cmd wz(sp::kIoWriteZeroes, 0, 1);
  rw(wz, 200, 8, sp::kRwFua);
  ASSERT_EQ(io_->exec(wz), 0);
  auto back = read_back(200, 32);
  EXPECT_EQ(std::vector<uint8_t>(back.begin(), back.begin() + 8 * kBlockSize),
            std::vector<uint8_t>(8 * kBlockSize, 0));
  EXPECT_TRUE(std::equal(back.begin() + 8 * kBlockSize, back.end(), w.data() + 8 * kBlockSize));

  // Two ranges deallocated (and one empty): the device's unmaps, in order.
  auto unmaps = [&] {
    return bdev::find(bdev_)->stats().by_type[static_cast<int>(bdev::IoType::unmap)].ops.get();
  };
  const uint64_t before = unmaps();
  Cmd dsm(sp::kIoDatasetManagement, 3 * sizeof(sp::DsmRange), 1);
  dsm.req.sqe.cdw10 = 3 - 1;
  dsm.req.sqe.cdw11 = sp::kDsmDeallocate;
  auto* ranges = reinterpret_cast<sp::DsmRange*>(dsm.data());
  ranges[0] = {0, 4, 208};
  ranges[1] = {0, 0, 0};
  ranges[2] = {0, 4, 220};
  ASSERT_EQ(io_->exec(dsm), 0);
  EXPECT_EQ(unmaps(), before + 2);
  // Without the deallocate attribute it is only a hint.
  dsm.req.sqe.cdw11 = 0;
  ASSERT_EQ(io_->exec(dsm), 0);
  EXPECT_EQ(unmaps(), before + 2);
  // A range beyond the namespace.
  dsm.req.sqe.cdw11 = sp::kDsmDeallocate;
  ranges[2] = {0, 2, kBlocks - 1};
  EXPECT_EQ(sc(io_->exec(dsm)), sp::kScLbaOutOfRange);
}

TEST_F(NvmfIoTest, OutOfRangeAndShortBuffers) {
  Cmd r(sp::kIoRead, 2 * kBlockSize);
  rw(r, kBlocks - 1, 2);
  EXPECT_EQ(sc(io_->exec(r)), sp::kScLbaOutOfRange);
  rw(r, ~0ull - 1, 2);  // wraps around
  EXPECT_EQ(sc(io_->exec(r)), sp::kScLbaOutOfRange);
  Cmd w(sp::kIoWrite, 2 * kBlockSize);
  rw(w, kBlocks, 1);
  EXPECT_EQ(sc(io_->exec(w)), sp::kScLbaOutOfRange);
  Cmd wz(sp::kIoWriteZeroes, 0, 1);
  rw(wz, kBlocks - 4, 8);
  EXPECT_EQ(sc(io_->exec(wz)), sp::kScLbaOutOfRange);
  // More blocks than the buffer holds.
  rw(w, 0, 3);
  EXPECT_EQ(sc(io_->exec(w)), sp::kScDataSglLengthInvalid);
  // The failures are in the controller's error log, newest first, with the queue and LBA.
  Cmd log(sp::kAdminGetLogPage, 4 * sizeof(sp::ErrorLogEntry));
  log.req.sqe.cdw10 = sp::kLogError | (log.req.length / 4 - 1) << 16;
  std::vector<sp::ErrorLogEntry> entries(4);
  EXPECT_TRUE(wait_until([&] {
    if (admin_->exec(log) != 0) return false;
    std::memcpy(entries.data(), log.data(), log.req.length);
    return entries[0].error_count == 5;
  }));
  EXPECT_EQ(entries[0].sqid, 1);
  EXPECT_EQ(sp::status_sc(entries[0].status), sp::kScDataSglLengthInvalid);
  EXPECT_EQ(entries[1].lba, kBlocks - 4);
  EXPECT_EQ(entries[1].nsid, 1u);
}

TEST_F(NvmfIoTest, WrongNamespaceAndOpcode) {
  Cmd r(sp::kIoRead, kBlockSize);
  rw(r, 0, 1);
  r.req.sqe.nsid = 2;  // in range, inactive
  EXPECT_EQ(sc(io_->exec(r)), sp::kScInvalidNamespace);
  r.req.sqe.nsid = 0;
  EXPECT_EQ(sc(io_->exec(r)), sp::kScInvalidNamespace);
  r.req.sqe.nsid = 0xffffffff;
  EXPECT_EQ(sc(io_->exec(r)), sp::kScInvalidNamespace);
  Cmd odd(0x7c, 0, 1);
  EXPECT_EQ(sc(io_->exec(odd)), sp::kScInvalidOpcode);
  // An admin opcode on an I/O queue is an unknown I/O opcode; Property Get is admin-only.
  Cmd identify(sp::kAdminIdentify, 4096, 1);
  EXPECT_EQ(sc(io_->exec(identify)), sp::kScInvalidOpcode);
  EXPECT_FALSE(io_->property_get(sp::kRegVs).ok());
  // An I/O opcode on the admin queue (Write is Create I/O SQ there, which fabrics lack).
  Cmd misplaced(sp::kIoWrite, kBlockSize, 1);
  rw(misplaced, 0, 1);
  EXPECT_EQ(sc(admin_->exec(misplaced)), sp::kScInvalidOpcode);
}

TEST_F(NvmfIoTest, ManyCommandsInFlight) {
  std::vector<std::unique_ptr<Cmd>> cmds;
  for (uint32_t i = 0; i < 64; ++i) {
    cmds.push_back(std::make_unique<Cmd>(sp::kIoWrite, 8 * kBlockSize));
    rw(*cmds.back(), i * 8, 8);
    fill(*cmds.back(), 100 + i);
  }
  io_->submit_all(cmds);
  for (auto& c : cmds) {
    ASSERT_TRUE(io_->wait(*c));
    EXPECT_EQ(c->status(), 0);
  }
  auto back = read_back(0, 64 * 8);
  for (uint32_t i = 0; i < 64; ++i)
    EXPECT_EQ(std::memcmp(back.data() + i * 8 * kBlockSize, cmds[i]->data(), 8 * kBlockSize), 0) << i;
}

// The namespace goes while writes are still at the bdev: they finish, and the queue puts its
// channel back after the last (the App's shutdown would report a channel left behind).
TEST_F(NvmfTest, NamespaceRemovedWithIoInFlight) {
  Conn& admin = conn(kHome);
  admin.bring_up();
  Conn& io = conn(kHome);  // beside the home reactor: the removal's message queues behind the writes
  ASSERT_EQ(io.connect(1, kSubnqn, kHostnqn, admin.cntlid()), 0);
  std::vector<std::unique_ptr<Cmd>> cmds;
  for (uint32_t i = 0; i < 16; ++i) {
    cmds.push_back(std::make_unique<Cmd>(sp::kIoWrite, 8 * kBlockSize));
    rw(*cmds.back(), i * 8, 8, sp::kRwFua);
  }
  ASSERT_TRUE(run_on(kHome, [&] {
    for (auto& c : cmds) io.qp().execute(&c->req);
    EXPECT_TRUE(target_->remove_namespace(kSubnqn, 1).ok());
  }));
  for (auto& c : cmds) {
    ASSERT_TRUE(io.wait(*c));
    EXPECT_EQ(c->status(), 0);
  }
  Cmd read(sp::kIoRead, kBlockSize, 1);
  rw(read, 0, 1);
  EXPECT_EQ(sc(io.exec(read)), sp::kScInvalidNamespace);
}

// A bdev with room for 4 requests per channel: the rest wait for room and resubmit, each
// at its own step (a FUA write's flush, a deallocation's next range).
TEST_F(NvmfIoTest, BusyChannelParksRequestsUntilThereIsRoom) {
  const std::string small = sluice::testing::unique_name("nvmfqd");
  ASSERT_TRUE(bdev::create("malloc:1M?qd=4", small).ok());
  ASSERT_TRUE(on_home([&](Target& t) { return t.add_namespace(kSubnqn, {.bdev = small, .nsid = 2}).status(); }).ok());
  std::vector<std::unique_ptr<Cmd>> cmds;
  for (uint32_t i = 0; i < 32; ++i) {
    cmds.push_back(std::make_unique<Cmd>(sp::kIoWrite, 4 * kBlockSize));
    rw(*cmds.back(), i * 4, 4, i % 2 ? sp::kRwFua : 0);
    cmds.back()->req.sqe.nsid = 2;
    fill(*cmds.back(), 300 + i);
  }
  auto dsm = std::make_unique<Cmd>(sp::kIoDatasetManagement, 2 * sizeof(sp::DsmRange), 2);
  dsm->req.sqe.cdw10 = 1;
  dsm->req.sqe.cdw11 = sp::kDsmDeallocate;
  reinterpret_cast<sp::DsmRange*>(dsm->data())[0] = {0, 4, 1000};
  reinterpret_cast<sp::DsmRange*>(dsm->data())[1] = {0, 4, 1010};
  cmds.push_back(std::move(dsm));
  // The I/O queue hears of namespace 2 by message: wait until it has.
  Cmd probe(sp::kIoFlush, 0, 2);
  ASSERT_TRUE(wait_until([&] { return io_->exec(probe) == 0; }));
  io_->submit_all(cmds);
  for (auto& c : cmds) {
    ASSERT_TRUE(io_->wait(*c));
    EXPECT_EQ(c->status(), 0);
  }
  EXPECT_GT(bdev::find(small)->stats().busy.get(), 0u);
  Cmd r(sp::kIoRead, 128 * kBlockSize);
  rw(r, 0, 128);
  r.req.sqe.nsid = 2;
  ASSERT_EQ(io_->exec(r), 0);
  for (uint32_t i = 0; i < 32; ++i)
    EXPECT_EQ(std::memcmp(r.data() + i * 4 * kBlockSize, cmds[i]->data(), 4 * kBlockSize), 0) << i;
  ASSERT_TRUE(on_home([](Target& t) { return t.remove_namespace(kSubnqn, 2); }).ok());
  EXPECT_TRUE(bdev::unregister(small).ok());
}

}  // namespace
}  // namespace sluice::nvmf::testing
