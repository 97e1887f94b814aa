// Admin commands: each Identify CNS, each log page, features, AERs completed by namespace
// changes (removal, hot-remove, addition), keep-alive expiry, Abort.
#include "nvmf_test_support.h"

namespace sluice::nvmf::testing {
namespace {

namespace idc = sp::idc;
namespace idns = sp::idns;

uint16_t identify(Conn& c, Cmd& cmd, uint8_t cns, uint32_t nsid = 0) {
  cmd.req.sqe.cdw10 = cns;
  cmd.req.sqe.nsid = nsid;
  return c.exec(cmd);
}

uint16_t get_log(Conn& c, Cmd& cmd, uint8_t lid, uint32_t bytes, uint64_t offset = 0, bool retain = false,
                 uint32_t nsid = 0xffffffff) {
  const uint32_t numd = bytes / 4 - 1;
  cmd.req.sqe.cdw10 = lid | (retain ? 1u << 15 : 0) | (numd & 0xffff) << 16;
  cmd.req.sqe.cdw11 = numd >> 16;
  cmd.req.sqe.cdw12 = static_cast<uint32_t>(offset);
  cmd.req.sqe.cdw13 = static_cast<uint32_t>(offset >> 32);
  cmd.req.sqe.nsid = nsid;
  return c.exec(cmd);
}

uint16_t set_feature(Conn& c, uint8_t fid, uint32_t value, uint32_t* dw0 = nullptr) {
  Cmd cmd(sp::kAdminSetFeatures);
  cmd.req.sqe.cdw10 = fid;
  cmd.req.sqe.cdw11 = value;
  const uint16_t st = c.exec(cmd);
  if (dw0) *dw0 = cmd.req.cqe.dw0;
  return st;
}

Result<uint32_t> get_feature(Conn& c, uint8_t fid) {
  Cmd cmd(sp::kAdminGetFeatures);
  cmd.req.sqe.cdw10 = fid;
  if (c.exec(cmd) != 0) return Status(Errc::io_error, "get features failed");
  return cmd.req.cqe.dw0;
}

std::string text(const uint8_t* p, size_t n) { return std::string(reinterpret_cast<const char*>(p), n); }

TEST_F(NvmfTest, IdentifyController) {
  Conn& admin = conn(1);
  admin.bring_up();
  Cmd cmd(sp::kAdminIdentify, 4096);
  ASSERT_EQ(identify(admin, cmd, sp::kCnsController), 0);
  const uint8_t* d = cmd.data();
  EXPECT_EQ(text(d + idc::kSn, 20), "SLTEST01            ");
  EXPECT_EQ(text(d + idc::kMn, 11), "Sluice test");
  EXPECT_EQ(sp::get<uint16_t>(d, idc::kCntlid), admin.cntlid());
  EXPECT_EQ(sp::get<uint32_t>(d, idc::kVer), 0x00010300u);
  EXPECT_EQ(d[idc::kCntrltype], idc::kCntrltypeIo);
  EXPECT_EQ(d[idc::kMdts], 5);  // 128 KiB in 4 KiB pages
  EXPECT_EQ(d[idc::kSqes], 0x66);
  EXPECT_EQ(d[idc::kCqes], 0x44);
  EXPECT_EQ(sp::get<uint16_t>(d, idc::kMaxcmd), 128);
  EXPECT_EQ(sp::get<uint32_t>(d, idc::kNn), 32u);
  EXPECT_EQ(sp::get<uint16_t>(d, idc::kKas), 1);
  EXPECT_EQ(d[idc::kAerl], 3);
  EXPECT_TRUE(sp::get<uint32_t>(d, idc::kOaes) & idc::kOaesNamespaceAttribute);
  EXPECT_EQ(sp::get<uint16_t>(d, idc::kOncs), idc::kOncsCompare | idc::kOncsDsm | idc::kOncsWriteZeroes);
  EXPECT_EQ(d[idc::kVwc] & 1, 1);
  EXPECT_EQ(sp::get<uint32_t>(d, idc::kSgls), idc::kSglsSupported | idc::kSglsOffset);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(d + idc::kSubnqn)), kSubnqn);
  EXPECT_EQ(sp::get<uint32_t>(d, idc::kIoccsz), (64u + 8192) / 16);
  EXPECT_EQ(sp::get<uint32_t>(d, idc::kIorcsz), 1u);
  EXPECT_EQ(sp::get<uint16_t>(d, idc::kIcdoff), 0);
  EXPECT_EQ(d[idc::kFcatt], 0);
  EXPECT_EQ(d[idc::kMsdbd], 1);
}

TEST_F(NvmfTest, IdentifyNamespaceListAndDescriptors) {
  Conn& admin = conn(0);
  admin.bring_up();
  Cmd ns(sp::kAdminIdentify, 4096);
  ASSERT_EQ(identify(admin, ns, sp::kCnsNamespace, 1), 0);
  EXPECT_EQ(sp::get<uint64_t>(ns.data(), idns::kNsze), kBlocks);
  EXPECT_EQ(sp::get<uint64_t>(ns.data(), idns::kNcap), kBlocks);
  EXPECT_EQ(ns.data()[idns::kFlbas], 0);
  EXPECT_EQ((sp::get<uint32_t>(ns.data(), idns::kLbaf) >> 16) & 0xff, 9u);  // 512-byte blocks
  std::array<uint8_t, 16> nguid;
  std::memcpy(nguid.data(), ns.data() + idns::kNguid, 16);
  EXPECT_NE(nguid, (std::array<uint8_t, 16>{}));

  // An inactive NSID in range: zeroes; out of range or 0: invalid namespace.
  Cmd inactive(sp::kAdminIdentify, 4096);
  ASSERT_EQ(identify(admin, inactive, sp::kCnsNamespace, 2), 0);
  EXPECT_EQ(sp::get<uint64_t>(inactive.data(), idns::kNsze), 0u);
  Cmd bad(sp::kAdminIdentify, 4096);
  EXPECT_EQ(sc(identify(admin, bad, sp::kCnsNamespace, 33)), sp::kScInvalidNamespace);
  EXPECT_EQ(sc(identify(admin, bad, sp::kCnsNamespace, 0)), sp::kScInvalidNamespace);

  // A second namespace at NSID 5: the active list is 1, 5, and from 1 only 5.
  std::string second = sluice::testing::unique_name("nvmfmem");
  ASSERT_TRUE(bdev::create("malloc:1M", second).ok());
  ASSERT_TRUE(on_home([&](Target& t) { return t.add_namespace(kSubnqn, {.bdev = second, .nsid = 5}).status(); }).ok());
  Cmd list(sp::kAdminIdentify, 4096);
  ASSERT_EQ(identify(admin, list, sp::kCnsActiveNamespaces, 0), 0);
  EXPECT_EQ(sp::get<uint32_t>(list.data(), 0), 1u);
  EXPECT_EQ(sp::get<uint32_t>(list.data(), 4), 5u);
  EXPECT_EQ(sp::get<uint32_t>(list.data(), 8), 0u);
  ASSERT_EQ(identify(admin, list, sp::kCnsActiveNamespaces, 1), 0);
  EXPECT_EQ(sp::get<uint32_t>(list.data(), 0), 5u);
  EXPECT_EQ(sp::get<uint32_t>(list.data(), 4), 0u);

  // Descriptors: NGUID (the same as in Identify Namespace) then UUID, stable per bdev.
  Cmd desc(sp::kAdminIdentify, 4096);
  ASSERT_EQ(identify(admin, desc, sp::kCnsNamespaceIdDescriptors, 1), 0);
  const uint8_t* d = desc.data();
  EXPECT_EQ(d[0], sp::kNidtNguid);
  EXPECT_EQ(d[1], 16);
  EXPECT_EQ(std::memcmp(d + 4, nguid.data(), 16), 0);
  EXPECT_EQ(d[20], sp::kNidtUuid);
  EXPECT_EQ(d[21], 16);
  EXPECT_EQ(d[22 + 2 + 6] >> 4, 8);  // a version-8 UUID
  EXPECT_EQ(d[40], 0);               // the end of the list
  Cmd desc5(sp::kAdminIdentify, 4096);
  ASSERT_EQ(identify(admin, desc5, sp::kCnsNamespaceIdDescriptors, 5), 0);
  EXPECT_NE(std::memcmp(desc5.data() + 4, nguid.data(), 16), 0);
  EXPECT_EQ(sc(identify(admin, desc5, sp::kCnsNamespaceIdDescriptors, 2)), sp::kScInvalidNamespace);
  // An unknown CNS.
  EXPECT_EQ(sc(identify(admin, bad, 0x10)), sp::kScInvalidField);
  ASSERT_TRUE(on_home([&](Target& t) { return t.remove_namespace(kSubnqn, 5); }).ok());
  EXPECT_TRUE(bdev::unregister(second).ok());
}

TEST_F(NvmfTest, ErrorLogRecordsFailedAdminCommands) {
  Conn& admin = conn(1);
  admin.bring_up();
  Cmd bad(0x7e);  // not an admin opcode
  bad.req.sqe.cid = 42;
  EXPECT_EQ(sc(admin.exec(bad)), sp::kScInvalidOpcode);
  Cmd log(sp::kAdminGetLogPage, 4096);
  ASSERT_EQ(get_log(admin, log, sp::kLogError, 4096), 0);
  sp::ErrorLogEntry e;
  std::memcpy(&e, log.data(), sizeof e);
  EXPECT_EQ(e.error_count, 1u);
  EXPECT_EQ(e.cid, 42);
  EXPECT_EQ(sp::status_sc(e.status), sp::kScInvalidOpcode);
  // From an offset: the second entry is empty.
  Cmd second(sp::kAdminGetLogPage, 64);
  ASSERT_EQ(get_log(admin, second, sp::kLogError, 64, 64), 0);
  EXPECT_EQ(sp::get<uint64_t>(second.data(), 0), 0u);
  // An offset that is not a multiple of 4, or beyond the log.
  EXPECT_EQ(sc(get_log(admin, second, sp::kLogError, 64, 2)), sp::kScInvalidField);
  EXPECT_EQ(sc(get_log(admin, second, sp::kLogError, 64, 1 << 20)), sp::kScInvalidField);
  // An unknown log page.
  Cmd unknown(sp::kAdminGetLogPage, 512);
  const uint16_t st = get_log(admin, unknown, 0x33, 512);
  EXPECT_EQ(sct(st), sp::kSctCommandSpecific);
  EXPECT_EQ(sc(st), sp::kScInvalidLogPage);
}

TEST_F(NvmfTest, SmartLogCountsHostIo) {
  auto [admin, io] = associate();
  Cmd write(sp::kIoWrite, 4096, 1);
  write.req.sqe.cdw12 = 7;
  ASSERT_EQ(io->exec(write), 0);
  Cmd read(sp::kIoRead, 4096, 1);
  read.req.sqe.cdw12 = 7;
  ASSERT_EQ(io->exec(read), 0);
  Cmd log(sp::kAdminGetLogPage, 512);
  ASSERT_EQ(get_log(*admin, log, sp::kLogSmart, 512), 0);
  EXPECT_EQ(log.data()[sp::smart::kAvailableSpare], 100);
  EXPECT_GE(sp::get<uint64_t>(log.data(), sp::smart::kHostReads), 1u);
  EXPECT_GE(sp::get<uint64_t>(log.data(), sp::smart::kHostWrites), 1u);
  EXPECT_EQ(sp::get<uint64_t>(log.data(), sp::smart::kDataUnitsWritten), 1u);
  EXPECT_EQ(sc(get_log(*admin, log, sp::kLogSmart, 512, 0, false, 9)), sp::kScInvalidNamespace);
}

TEST_F(NvmfTest, Features) {
  Conn& admin = conn(0);
  admin.bring_up();
  uint32_t dw0 = 0;
  ASSERT_EQ(set_feature(admin, sp::kFeatureNumberOfQueues, (200u - 1) | (3u - 1) << 16, &dw0), 0);
  EXPECT_EQ(dw0, 2u | 2u << 16);  // the smaller of the two, both ways
  EXPECT_EQ(*get_feature(admin, sp::kFeatureNumberOfQueues), 2u | 2u << 16);
  ASSERT_EQ(set_feature(admin, sp::kFeatureAsyncEventConfig, 0xffffffff), 0);
  EXPECT_EQ(*get_feature(admin, sp::kFeatureAsyncEventConfig), sp::kAecNamespaceAttributeNotices);
  ASSERT_EQ(set_feature(admin, sp::kFeatureKeepAliveTimer, 5000), 0);
  EXPECT_EQ(*get_feature(admin, sp::kFeatureKeepAliveTimer), 5000u);
  ASSERT_EQ(set_feature(admin, sp::kFeatureVolatileWriteCache, 0), 0);
  EXPECT_EQ(*get_feature(admin, sp::kFeatureVolatileWriteCache), 0u);
  EXPECT_EQ(sc(set_feature(admin, 0x7c, 0)), sp::kScInvalidField);
  EXPECT_FALSE(get_feature(admin, 0x7c).ok());
  // Only 3 I/O queues granted: qid 4 is refused; once one exists the count is fixed.
  Conn& io4 = conn(1);
  EXPECT_EQ(sc(io4.connect(4, kSubnqn, kHostnqn, admin.cntlid())), sp::kScFabricsInvalidParameters);
  Conn& io1 = conn(1);
  ASSERT_EQ(io1.connect(1, kSubnqn, kHostnqn, admin.cntlid()), 0);
  EXPECT_EQ(sc(set_feature(admin, sp::kFeatureNumberOfQueues, 0)), sp::kScCommandSequenceError);
}

TEST_F(NvmfTest, AsyncEventOnNamespaceRemoval) {
  auto [admin, io] = associate();
  ASSERT_EQ(set_feature(*admin, sp::kFeatureAsyncEventConfig, sp::kAecNamespaceAttributeNotices), 0);
  // AERL + 1 = 4 may be outstanding; the fifth is refused.
  std::vector<std::unique_ptr<Cmd>> aers;
  for (int i = 0; i < 4; ++i) {
    aers.push_back(std::make_unique<Cmd>(sp::kAdminAsyncEventRequest));
    admin->submit(*aers.back());
  }
  Cmd fifth(sp::kAdminAsyncEventRequest);
  EXPECT_EQ(sc(admin->exec(fifth)), sp::kScAsyncEventLimitExceeded);
  EXPECT_FALSE(aers[0]->done.load());
  // I/O works, then the namespace goes: the first AER completes with the notice.
  Cmd read(sp::kIoRead, 512, 1);
  ASSERT_EQ(io->exec(read), 0);
  ASSERT_TRUE(on_home([](Target& t) { return t.remove_namespace(kSubnqn, 1); }).ok());
  ASSERT_TRUE(admin->wait(*aers[0]));
  EXPECT_EQ(aers[0]->status(), 0);
  EXPECT_EQ(aers[0]->req.cqe.dw0, sp::async_event(sp::kAsyncEventTypeNotice, sp::kAsyncEventNamespaceAttributeChanged,
                                                   sp::kLogChangedNamespaces));
  EXPECT_FALSE(aers[1]->done.load());
  // I/O to it fails now.
  EXPECT_TRUE(wait_until([&] { return sc(io->exec(read)) == sp::kScInvalidNamespace; }));
  // The changed namespace list names it, once; read with RAE it stays.
  Cmd log(sp::kAdminGetLogPage, 4096);
  ASSERT_EQ(get_log(*admin, log, sp::kLogChangedNamespaces, 4096, 0, /*retain=*/true), 0);
  EXPECT_EQ(sp::get<uint32_t>(log.data(), 0), 1u);
  ASSERT_EQ(get_log(*admin, log, sp::kLogChangedNamespaces, 4096), 0);
  EXPECT_EQ(sp::get<uint32_t>(log.data(), 0), 1u);
  EXPECT_EQ(sp::get<uint32_t>(log.data(), 4), 0u);
  ASSERT_EQ(get_log(*admin, log, sp::kLogChangedNamespaces, 4096), 0);
  EXPECT_EQ(sp::get<uint32_t>(log.data(), 0), 0u);
  // Adding a namespace raises the next one, and the I/O queue reaches it.
  ASSERT_TRUE(on_home([&](Target& t) { return t.add_namespace(kSubnqn, {.bdev = bdev_}).status(); }).ok());
  ASSERT_TRUE(admin->wait(*aers[1]));
  EXPECT_EQ(aers[1]->status(), 0);
  EXPECT_TRUE(wait_until([&] { return io->exec(read) == 0; }));
  // Closing the admin queue returns the rest, aborted.
  admin->close();
  for (int i = 2; i < 4; ++i) {
    ASSERT_TRUE(aers[i]->done.load());
    EXPECT_EQ(sc(aers[i]->status()), sp::kScAbortedSqDeletion);
  }
}

TEST_F(NvmfTest, HotRemovedBdevTakesItsNamespace) {
  auto [admin, io] = associate();
  ASSERT_EQ(set_feature(*admin, sp::kFeatureAsyncEventConfig, sp::kAecNamespaceAttributeNotices), 0);
  Cmd aer(sp::kAdminAsyncEventRequest);
  admin->submit(aer);
  Cmd write(sp::kIoWrite, 512, 1);
  ASSERT_EQ(io->exec(write), 0);
  ASSERT_TRUE(bdev::unregister(bdev_).ok());
  ASSERT_TRUE(admin->wait(aer));
  EXPECT_EQ((aer.req.cqe.dw0 >> 16) & 0xff, sp::kLogChangedNamespaces);
  EXPECT_TRUE(wait_until([&] { return sc(io->exec(write)) == sp::kScInvalidNamespace; }));
  Cmd ns(sp::kAdminIdentify, 4096);
  ASSERT_EQ(identify(*admin, ns, sp::kCnsNamespace, 1), 0);
  EXPECT_EQ(sp::get<uint64_t>(ns.data(), idns::kNsze), 0u);  // inactive now
}

TEST_F(NvmfTest, EventWithoutAnOutstandingRequestWaitsForOne) {
  Conn& admin = conn(1);
  admin.bring_up();
  ASSERT_EQ(set_feature(admin, sp::kFeatureAsyncEventConfig, sp::kAecNamespaceAttributeNotices), 0);
  ASSERT_TRUE(on_home([](Target& t) { return t.remove_namespace(kSubnqn, 1); }).ok());
  Cmd aer(sp::kAdminAsyncEventRequest);
  EXPECT_EQ(admin.exec(aer), 0);
  EXPECT_EQ(aer.req.cqe.dw0 & 0xff, sp::kAsyncEventTypeNotice);
}

TEST_F(NvmfTest, KeepAliveExpiry) {
  Conn& admin = conn(1);
  ASSERT_EQ(admin.connect(0, kSubnqn, kHostnqn, sp::connect::kNewController, 32, /*kato_ms=*/2000), 0);
  const uint16_t cntlid = static_cast<uint16_t>(admin.last_dw0());
  auto check = [&](uint64_t now) {
    std::vector<ControllerInfo> expired;
    EXPECT_TRUE(run_on(kHome, [&] { expired = target_->check_keep_alive(now); }));
    return expired;
  };
  EXPECT_TRUE(check(2500).empty());  // connected at 1000
  now_ms_ = 2900;
  Cmd ka(sp::kAdminKeepAlive);
  ASSERT_EQ(admin.exec(ka), 0);
  EXPECT_TRUE(check(4800).empty());
  auto expired = check(4900);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].cntlid, cntlid);
  EXPECT_EQ(expired[0].subnqn, kSubnqn);
  EXPECT_EQ(expired[0].hostnqn, kHostnqn);
  EXPECT_TRUE(check(9000).empty());  // reported once
  EXPECT_TRUE(*admin.property_get(sp::kRegCsts) & sp::kCstsCfs);
  // No timeout (KATO 0): never expires.
  Conn& forever = conn(0);
  forever.bring_up();
  EXPECT_TRUE(check(1u << 30).empty());
}

TEST_F(NvmfTest, AbortCompletesNotAborted) {
  Conn& admin = conn(0);
  admin.bring_up();
  Cmd abort(sp::kAdminAbort);
  abort.req.sqe.cdw10 = 5 | 1u << 16;
  EXPECT_EQ(admin.exec(abort), 0);
  EXPECT_EQ(abort.req.cqe.dw0 & 1, 1u);
}

}  // namespace
}  // namespace sluice::nvmf::testing
