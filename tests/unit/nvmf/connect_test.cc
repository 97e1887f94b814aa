// Connect, Property Get/Set and Disconnect: associations made and refused as the spec says.
#include "nvmf_test_support.h"

namespace sluice::nvmf::testing {
namespace {

namespace cn = sp::connect;

TEST_F(NvmfTest, AdminAndIoQueuesOnDifferentReactors) {
  auto [admin, io] = associate();
  EXPECT_TRUE(admin->qp().connected());
  EXPECT_EQ(admin->qp().qid(), 0);
  EXPECT_EQ(io->qp().qid(), 1);
  EXPECT_EQ(io->qp().cntlid(), admin->cntlid());
  EXPECT_EQ(io->last_dw0() & 0xffff, admin->cntlid());
  EXPECT_EQ(io->qp().subsystem_nqn(), kSubnqn);
  // A second association gets its own controller.
  Conn& other = conn(1);
  other.bring_up();
  EXPECT_NE(other.cntlid(), admin->cntlid());
  std::vector<ControllerInfo> ctrlrs;
  EXPECT_TRUE(on_home([&](Target& t) {
                ctrlrs = t.controllers(kSubnqn);
                return Status::Ok();
              }).ok());
  ASSERT_EQ(ctrlrs.size(), 2u);
  EXPECT_EQ(ctrlrs[0].hostnqn, kHostnqn);
}

TEST_F(NvmfTest, PropertyBringUpAndShutdown) {
  Conn& admin = conn(1);
  ASSERT_EQ(admin.connect(0), 0);
  auto cap = admin.property_get(sp::kRegCap, true);
  ASSERT_TRUE(cap.ok());
  EXPECT_EQ(sp::cap_mqes(*cap), 128u);
  EXPECT_TRUE(sp::cap_cqr(*cap));
  EXPECT_TRUE(sp::cap_css_nvm(*cap));
  EXPECT_EQ(sp::cap_dstrd(*cap), 0u);
  auto vs = admin.property_get(sp::kRegVs);
  ASSERT_TRUE(vs.ok());
  EXPECT_EQ(*vs, 0x00010300u);
  auto csts = admin.property_get(sp::kRegCsts);
  ASSERT_TRUE(csts.ok());
  EXPECT_EQ(*csts, 0u);
  const uint32_t cc = sp::kCcEnable | sp::cc_iosqes(6) | sp::cc_iocqes(4);
  ASSERT_EQ(admin.property_set(sp::kRegCc, cc), 0);
  EXPECT_EQ(*admin.property_get(sp::kRegCc), cc);
  EXPECT_EQ(*admin.property_get(sp::kRegCsts), sp::kCstsRdy);
  ASSERT_EQ(admin.property_set(sp::kRegCc, cc | sp::kCcShnNormal), 0);
  EXPECT_EQ(*admin.property_get(sp::kRegCsts) & sp::kCstsShstMask, sp::kCstsShstComplete);
  // CC.EN = 0: a reset, RDY drops.
  ASSERT_EQ(admin.property_set(sp::kRegCc, 0), 0);
  EXPECT_EQ(*admin.property_get(sp::kRegCsts) & sp::kCstsRdy, 0u);
  // Bad properties: an unknown offset, a read-only register, the wrong size.
  EXPECT_FALSE(admin.property_get(0x40).ok());
  EXPECT_NE(admin.property_set(sp::kRegCsts, 1), 0);
  EXPECT_FALSE(admin.property_get(sp::kRegCap, false).ok());
}

TEST_F(NvmfTest, UnknownSubsystemIsInvalidParameters) {
  Conn& c = conn(1);
  const uint16_t st = c.connect(0, "nqn.2026-12.io.sluice:nothing");
  EXPECT_EQ(sct(st), sp::kSctCommandSpecific);
  EXPECT_EQ(sc(st), sp::kScFabricsInvalidParameters);
  EXPECT_EQ(c.last_dw0(), cn::invalid_parameter(true, cn::kSubnqn));
  EXPECT_FALSE(c.qp().connected());
  // The queue pair may try again.
  EXPECT_EQ(c.connect(0), 0);
}

TEST_F(NvmfTest, HostNotAllowedIsInvalidHost) {
  ASSERT_TRUE(on_home([](Target& t) {
                SubsystemOptions s;
                s.nqn = "nqn.2026-12.io.sluice:closed";
                return t.add_subsystem(s);
              }).ok());
  ASSERT_TRUE(on_home([](Target& t) { return t.add_host("nqn.2026-12.io.sluice:closed", kHostnqn); }).ok());
  Conn& stranger = conn(1);
  const uint16_t st = stranger.connect(0, "nqn.2026-12.io.sluice:closed", "nqn.2026-12.io.sluice:host-b");
  EXPECT_EQ(sct(st), sp::kSctCommandSpecific);
  EXPECT_EQ(sc(st), sp::kScFabricsInvalidHost);
  EXPECT_EQ(stranger.last_dw0(), cn::invalid_parameter(true, cn::kHostnqn));
  Conn& friendly = conn(1);
  EXPECT_EQ(friendly.connect(0, "nqn.2026-12.io.sluice:closed", kHostnqn), 0);
}

TEST_F(NvmfTest, IoQueueConnectChecks) {
  Conn& admin = conn(0);
  ASSERT_EQ(admin.connect(0), 0);
  const uint16_t cntlid = static_cast<uint16_t>(admin.last_dw0());
  // Before CC.EN: a command sequence error.
  Conn& early = conn(1);
  EXPECT_EQ(sc(early.connect(1, kSubnqn, kHostnqn, cntlid)), sp::kScCommandSequenceError);
  ASSERT_EQ(admin.property_set(sp::kRegCc, sp::kCcEnable), 0);
  // An unknown controller, another host, a taken queue id, a queue id beyond the granted.
  Conn& io = conn(1);
  EXPECT_EQ(io.connect(1, kSubnqn, kHostnqn, cntlid + 1), sp::make_status(sp::kSctCommandSpecific, sp::kScFabricsInvalidParameters, true));
  EXPECT_EQ(io.last_dw0(), cn::invalid_parameter(true, cn::kCntlid));
  EXPECT_EQ(io.connect(1, kSubnqn, "nqn.2026-12.io.sluice:host-b", cntlid), sp::make_status(sp::kSctCommandSpecific, sp::kScFabricsInvalidParameters, true));
  EXPECT_EQ(io.connect(1, kSubnqn, kHostnqn, cntlid), 0);
  Conn& twin = conn(1);
  EXPECT_EQ(twin.connect(1, kSubnqn, kHostnqn, cntlid), sp::make_status(sp::kSctCommandSpecific, sp::kScFabricsInvalidParameters, true));
  EXPECT_EQ(twin.last_dw0(), cn::invalid_parameter(false, cn::kSqeQid));
  // A static controller ID on the admin queue, and a queue larger than MQES + 1.
  Conn& fixed = conn(0);
  EXPECT_EQ(fixed.connect(0, kSubnqn, kHostnqn, 7), sp::make_status(sp::kSctCommandSpecific, sp::kScFabricsInvalidParameters, true));
  EXPECT_EQ(fixed.connect(0, kSubnqn, kHostnqn, cn::kNewController, 4096), sp::make_status(sp::kSctCommandSpecific, sp::kScFabricsInvalidParameters, true));
  EXPECT_EQ(fixed.last_dw0(), cn::invalid_parameter(false, cn::kSqeSqsize));
  // A second Connect on a connected queue.
  EXPECT_EQ(sc(io.connect(1, kSubnqn, kHostnqn, cntlid)), sp::kScCommandSequenceError);
}

// A host that sends a second Connect before the first completes: the second is refused and
// the first still makes the association.
TEST_F(NvmfTest, ConnectWhileConnecting) {
  Conn& c = conn(1);
  std::vector<std::unique_ptr<Cmd>> cmds;
  for (int i = 0; i < 2; ++i) {
    cmds.push_back(std::make_unique<Cmd>(sp::kFabricsOpcode, cn::kDataSize, sp::kFctypeConnect));
    Cmd& cmd = *cmds.back();
    cmd.req.sqe.cdw11 = 31;
    sp::put<uint16_t>(cmd.data(), cn::kCntlid, cn::kNewController);
    std::memcpy(cmd.data() + cn::kSubnqn, kSubnqn, std::strlen(kSubnqn));
    std::memcpy(cmd.data() + cn::kHostnqn, kHostnqn, std::strlen(kHostnqn));
  }
  c.submit_all(cmds);
  ASSERT_TRUE(c.wait(*cmds[0]) && c.wait(*cmds[1]));
  EXPECT_EQ(cmds[0]->status(), 0);
  EXPECT_EQ(sc(cmds[1]->status()), sp::kScCommandSequenceError);
  bool connected = false;
  run_on(c.reactor(), [&] { connected = c.qp().connected(); });
  EXPECT_TRUE(connected);
}

TEST_F(NvmfTest, CommandsBeforeConnectAreRefused) {
  Conn& c = conn(1);
  Cmd identify(sp::kAdminIdentify, 4096);
  EXPECT_EQ(sc(c.exec(identify)), sp::kScCommandSequenceError);
  EXPECT_FALSE(c.property_get(sp::kRegVs).ok());
}

TEST_F(NvmfTest, DisconnectEndsTheQueue) {
  auto [admin, io] = associate();
  Cmd disconnect(sp::kFabricsOpcode, 0, sp::kFctypeDisconnect);
  EXPECT_EQ(io->exec(disconnect), 0);
  EXPECT_TRUE(io->qp().disconnected());
  Cmd read(sp::kIoRead, 512, 1);
  EXPECT_EQ(sc(io->exec(read)), sp::kScCommandSequenceError);
  // The queue id is free again for a new connection.
  Conn& again = conn(1);
  EXPECT_TRUE(wait_until([&] { return again.connect(1, kSubnqn, kHostnqn, admin->cntlid()) == 0; }));
  // Closing the admin queue ends the association: the I/O queue is closed too.
  admin->close();
  EXPECT_TRUE(wait_until([&] {
    bool gone = false;
    run_on(again.reactor(), [&] { gone = again.qp().disconnected(); });
    return gone;
  }));
}

TEST_F(NvmfTest, RemovingTheSubsystemEndsItsAssociations) {
  auto [admin, io] = associate();
  std::atomic<int> told{0};
  for (Conn* c : {admin, io})
    run_on(c->reactor(), [&] { c->qp().on_closed_by_target([](void* n) { ++*static_cast<std::atomic<int>*>(n); }, &told); });
  Cmd aer(sp::kAdminAsyncEventRequest);
  admin->submit(aer);
  ASSERT_TRUE(on_home([](Target& t) { return t.remove_subsystem(kSubnqn); }).ok());
  ASSERT_TRUE(admin->wait(aer));
  EXPECT_EQ(sc(aer.status()), sp::kScAbortedSqDeletion);
  for (Conn* c : {admin, io}) {
    EXPECT_TRUE(wait_until([&] {
      bool gone = false;
      run_on(c->reactor(), [&] { gone = c->qp().disconnected(); });
      return gone;
    }));
  }
  EXPECT_EQ(told.load(), 2);
  Cmd read(sp::kIoRead, 512, 1);
  EXPECT_EQ(sc(io->exec(read)), sp::kScCommandSequenceError);
  EXPECT_EQ(sc(conn(1).connect(0)), sp::kScFabricsInvalidParameters);
  EXPECT_EQ(on_home([](Target& t) { return t.remove_subsystem(kSubnqn); }).code(), Errc::not_found);
  EXPECT_EQ(on_home([](Target& t) { return t.remove_subsystem(sp::kDiscoveryNqn); }).code(), Errc::not_found);
}

}  // namespace
}  // namespace sluice::nvmf::testing
