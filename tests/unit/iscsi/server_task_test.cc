// The iSCSI server's task management and CmdSN window, over loopback.
#include "server_test_support.h"

namespace sluice::iscsi::testing {
namespace {

TEST_F(IscsiServerTest, TaskManagement) {
  serve();
  auto i = session();
  auto r = i->task_mgmt(1, 0, 12345);  // ABORT TASK of nothing
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->response, 1);
  r = i->task_mgmt(5, 0, kReservedTag);  // LUN RESET
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->response, 0);
  r = i->task_mgmt(6, 0, kReservedTag);  // TARGET WARM RESET
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->response, 0);
  r = i->task_mgmt(8, 0, kReservedTag);  // TASK REASSIGN: not at ErrorRecoveryLevel 0
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->response, 5);
}

// A write waiting for its R2T data is aborted: Function Complete, no response for the task,
// and a late Data-Out for it is rejected without harm.
TEST_F(IscsiServerTest, AbortTaskWaitingForData) {
  serve({.initial_r2t = true});
  auto i = session({.immediate_data = false});
  auto w = rw10(0x2a, 0, 8);
  ScsiCommand c;
  c.itt = 500;
  c.write = true;
  c.expected_data_length = 4096;
  c.cmd_sn = i->take_cmd_sn();
  c.exp_stat_sn = i->exp_stat_sn();
  std::copy(w.begin(), w.end(), c.cdb);
  ASSERT_TRUE(i->send(c));
  auto r = i->recv();
  ASSERT_TRUE(r.has_value());
  auto* r2t = std::get_if<R2t>(&r->pdu.header);
  ASSERT_NE(r2t, nullptr);
  EXPECT_EQ(r2t->itt, 500u);
  EXPECT_EQ(r2t->desired_length, 4096u);
  auto tm = i->task_mgmt(1, 0, 500);
  ASSERT_TRUE(tm.has_value());
  EXPECT_EQ(tm->response, 0);
  DataOut d;
  d.itt = 500;
  d.ttt = r2t->ttt;
  d.final = true;
  std::vector<uint8_t> data(4096, 1);
  ASSERT_TRUE(i->send(d, data));
  r = i->recv();
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(std::holds_alternative<Reject>(r->pdu.header));
  auto n = i->nop(7, {});
  ASSERT_TRUE(n.has_value());
  EXPECT_TRUE(std::holds_alternative<NopIn>(n->pdu.header));
}

// A command outside [ExpCmdSN, MaxCmdSN] is dropped: no answer, ExpCmdSN unchanged.
TEST_F(IscsiServerTest, CommandOutsideTheCmdSnWindowIsDropped) {
  serve();
  auto i = session();
  auto before = i->nop(3, {});
  ASSERT_TRUE(before.has_value());
  const auto& in = std::get<NopIn>(before->pdu.header);
  ScsiCommand c;
  c.itt = 900;
  c.cmd_sn = in.max_cmd_sn + 1;
  ASSERT_TRUE(i->send(c));  // TEST UNIT READY
  auto after = i->nop(4, {});
  ASSERT_TRUE(after.has_value());
  auto* in2 = std::get_if<NopIn>(&after->pdu.header);
  ASSERT_NE(in2, nullptr) << "the dropped command must not be answered";
  EXPECT_EQ(in2->itt, 4u);
  EXPECT_EQ(in2->exp_cmd_sn, in.exp_cmd_sn);
  // The window still works for the command that is due.
  uint8_t tur[16] = {};
  auto res = run_command(*i, tur, 0, nullptr);
  ASSERT_TRUE(res.ok);
  EXPECT_EQ(res.status, 0);
}

}  // namespace
}  // namespace sluice::iscsi::testing
