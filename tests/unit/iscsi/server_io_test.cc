// The iSCSI server's full feature phase over loopback: INQUIRY, READ CAPACITY(16), WRITE then
// READ from 512 B to 1 MiB by immediate data, unsolicited Data-Out and R2T, with and without
// digests; CHECK CONDITION with sense; two sessions at once.
#include <thread>

#include "server_test_support.h"

namespace sluice::iscsi::testing {
namespace {

TEST_F(IscsiServerTest, InquiryAndReadCapacity16) {
  serve();
  auto i = session();
  uint8_t inq[16] = {0x12, 0, 0, 0, 96, 0};
  auto r = run_command(*i, inq, 96, nullptr);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 0);
  ASSERT_GE(r.data.size(), 36u);
  EXPECT_EQ(std::string(r.data.begin() + 8, r.data.begin() + 14), "SLUICE");
  EXPECT_TRUE(r.status_in_data_in);

  uint8_t cap[16] = {0x9e, 0x10};
  cap[13] = 32;
  r = run_command(*i, cap, 32, nullptr);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 0);
  uint64_t last = 0;
  for (int k = 0; k < 8; ++k) last = last << 8 | r.data[k];
  uint32_t bs = uint32_t(r.data[8]) << 24 | uint32_t(r.data[9]) << 16 | uint32_t(r.data[10]) << 8 | r.data[11];
  EXPECT_EQ(bs, 512u);
  EXPECT_EQ(last, kDiskBytes / 512 - 1);

  // An allocation length beyond what INQUIRY returns: underflow, with its residual.
  uint8_t big[16] = {0x12, 0, 0, 0x01, 0x00, 0};
  r = run_command(*i, big, 256, nullptr);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(r.underflow);
  EXPECT_GT(r.residual, 0u);
}

TEST_F(IscsiServerTest, OutOfRangeReadIsCheckConditionWithSense) {
  serve();
  auto i = session();
  auto cdb = rw10(0x28, uint32_t(kDiskBytes / 512), 1);
  auto r = run_command(*i, cdb.data(), 512, nullptr);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 0x02);
  EXPECT_FALSE(r.status_in_data_in);
  EXPECT_EQ(sense_key(r.sense), 0x05);  // ILLEGAL REQUEST
  EXPECT_EQ(sense_asc(r.sense), 0x21);  // LOGICAL BLOCK ADDRESS OUT OF RANGE
  // The session goes on.
  uint8_t tur[16] = {};
  r = run_command(*i, tur, 0, nullptr);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 0);
}

// Data-Out PDUs out of DataSN order (libiscsi's iSCSIDataSnInvalid): at ErrorRecoveryLevel 0
// the task ends in CHECK CONDITION, PROTOCOL SERVICE CRC ERROR, nothing is written, and the
// session goes on (RFC 7143 7.8.2).
TEST_F(IscsiServerTest, DataOutOutOfOrderFailsTheTaskNotTheSession) {
  serve();
  auto i = session({.immediate_data = false});
  for (const std::vector<uint32_t>& sns : {std::vector<uint32_t>{1, 0}, {0, 0}, {27}}) {
    const uint32_t blocks = uint32_t(sns.size());
    std::vector<uint8_t> data(blocks * 512, 0xa6);
    ScsiCommand c;
    c.itt = i->next_itt();
    c.cmd_sn = i->take_cmd_sn();
    c.exp_stat_sn = i->exp_stat_sn();
    c.expected_data_length = uint32_t(data.size());
    c.write = c.final = true;
    auto cdb = rw10(0x2a, 100, uint16_t(blocks));
    std::memcpy(c.cdb, cdb.data(), kCdbSize);
    ASSERT_TRUE(i->send(c));
    auto r2t = i->recv();
    ASSERT_TRUE(r2t && std::holds_alternative<R2t>(r2t->pdu.header));
    for (uint32_t k = 0; k < blocks; ++k) {
      DataOut d;
      d.itt = c.itt;
      d.ttt = std::get<R2t>(r2t->pdu.header).ttt;
      d.exp_stat_sn = i->exp_stat_sn();
      d.data_sn = sns[k];
      d.buffer_offset = k * 512;
      d.final = k + 1 == blocks;
      ASSERT_TRUE(i->send(d, std::span<const uint8_t>(data.data() + k * 512, 512)));
    }
    auto resp = i->recv();
    ASSERT_TRUE(resp && std::holds_alternative<ScsiResponse>(resp->pdu.header)) << sns.size();
    EXPECT_EQ(std::get<ScsiResponse>(resp->pdu.header).status, 0x02);
    ASSERT_GE(resp->data.size(), 2u);
    const std::vector<uint8_t> sense(resp->data.begin() + 2, resp->data.end());
    EXPECT_EQ(sense_key(sense), 0x0b);  // ABORTED COMMAND
    EXPECT_EQ(sense_asc(sense), 0x47);  // PROTOCOL SERVICE CRC ERROR (47h/05h)
  }
  auto rd = rw10(0x28, 100, 2);
  auto back = run_command(*i, rd.data(), 1024, nullptr);
  ASSERT_TRUE(back.ok);
  EXPECT_EQ(back.status, 0);
  EXPECT_EQ(back.data, std::vector<uint8_t>(1024, 0));  // nothing was written
}

// LUN RESET and TARGET WARM RESET: every session's next command, the asking one's too, is
// CHECK CONDITION, UNIT ATTENTION (29h), once.
TEST_F(IscsiServerTest, ResetsRaiseAUnitAttentionOnEverySession) {
  serve();
  auto a = session({.isid_last = 1});
  auto b = session({.isid_last = 2});
  uint8_t tur[16] = {};
  for (uint8_t function : {uint8_t(5), uint8_t(6)}) {
    auto tm = a->task_mgmt(function, 0, kReservedTag);
    ASSERT_TRUE(tm.has_value());
    EXPECT_EQ(tm->response, 0);
    for (Initiator* s : {a.get(), b.get()}) {
      auto r = run_command(*s, tur, 0, nullptr);
      ASSERT_TRUE(r.ok);
      EXPECT_EQ(r.status, 0x02) << int(function);
      EXPECT_EQ(sense_key(r.sense), 0x06);
      EXPECT_EQ(sense_asc(r.sense), 0x29);
      r = run_command(*s, tur, 0, nullptr);
      ASSERT_TRUE(r.ok);
      EXPECT_EQ(r.status, 0) << int(function);
    }
  }
}

struct IoMode {
  const char* name;
  LoginOptions login;
};

void PrintTo(const IoMode& m, std::ostream* os) { *os << m.name; }

class IscsiServerIoTest : public IscsiServerTest, public ::testing::WithParamInterface<IoMode> {};

// WRITE(10) then READ(10) of each size at a few offsets; the data must come back unchanged.
TEST_P(IscsiServerIoTest, WriteThenReadBack) {
  serve();
  auto i = session(GetParam().login);
  const uint32_t mrdsl = GetParam().login.max_recv;
  uint32_t lba = 8;
  for (uint32_t size : {512u, 4096u, 65536u, 300u * 1024, 1u << 20}) {
    std::vector<uint8_t> data = pattern(size, uint8_t(size / 512));
    auto w = rw10(0x2a, lba, uint16_t(size / 512));
    auto r = run_command(*i, w.data(), size, &data);
    ASSERT_TRUE(r.ok) << size;
    ASSERT_EQ(r.status, 0) << size;
    EXPECT_FALSE(r.underflow || r.overflow);
    const uint32_t fb = i->number("FirstBurstLength", 65536);
    const LoginOptions& lo = GetParam().login;
    const bool all_unsolicited =
        size <= fb && (!lo.initial_r2t || (lo.immediate_data && size <= i->number("MaxRecvDataSegmentLength", 8192)));
    EXPECT_EQ(r.r2ts > 0, !all_unsolicited) << size;
    auto rd = rw10(0x28, lba, uint16_t(size / 512));
    r = run_command(*i, rd.data(), size, nullptr);
    ASSERT_TRUE(r.ok) << size;
    ASSERT_EQ(r.status, 0) << size;
    EXPECT_EQ(r.data_ins, int((size + mrdsl - 1) / mrdsl)) << size;
    EXPECT_TRUE(r.data == data) << size;
    lba += size / 512 + 8;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Modes, IscsiServerIoTest,
    ::testing::Values(IoMode{"ImmediateAndR2t", {.max_recv = 8192}},
                      IoMode{"R2tOnly", {.immediate_data = false, .max_recv = 65536}},
                      IoMode{"Unsolicited", {.initial_r2t = false, .max_recv = 16384}},
                      IoMode{"UnsolicitedWithDigests",
                             {.digests = true, .initial_r2t = false, .first_burst = 131072, .max_recv = 32768}},
                      IoMode{"R2tWithDigests", {.digests = true, .max_burst = 65536, .max_recv = 8192}}),
    [](const ::testing::TestParamInfo<IoMode>& p) { return std::string(p.param.name); });

TEST_F(IscsiServerTest, TwoSessionsAtOnce) {
  serve();
  auto a = session({.isid_last = 1});
  auto b = session({.digests = true, .isid_last = 2});
  auto run = [](Initiator* s, uint32_t lba, uint8_t seed, bool* ok) {
    *ok = true;
    for (int k = 0; k < 20 && *ok; ++k) {
      std::vector<uint8_t> data = pattern(128 * 1024, uint8_t(seed + k));
      auto w = rw10(0x2a, lba, 256);
      auto r = run_command(*s, w.data(), uint32_t(data.size()), &data);
      auto rd = rw10(0x28, lba, 256);
      auto back = run_command(*s, rd.data(), uint32_t(data.size()), nullptr);
      *ok = r.ok && r.status == 0 && back.ok && back.status == 0 && back.data == data;
    }
  };
  bool ok_a = false, ok_b = false;
  std::thread ta(run, a.get(), 0, 1, &ok_a);
  std::thread tb(run, b.get(), 4096, 100, &ok_b);
  ta.join();
  tb.join();
  EXPECT_TRUE(ok_a);
  EXPECT_TRUE(ok_b);
  EXPECT_EQ(target_->live_connections(), 2u);
  ASSERT_TRUE(a->logout().has_value());
  ASSERT_TRUE(b->logout().has_value());
  EXPECT_TRUE(sluice::testing::wait_until([&] { return target_->live_connections() == 0; }));
}

}  // namespace
}  // namespace sluice::iscsi::testing
