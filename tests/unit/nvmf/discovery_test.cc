// The discovery subsystem: its controller, and a log built from the subsystems' listeners,
// showing a host only what it may connect to. And NQN validation.
#include "nvmf_test_support.h"

namespace sluice::nvmf::testing {
namespace {

namespace dl = sp::discovery;

std::string field(const uint8_t* e, size_t off, size_t n) {
  std::string s(reinterpret_cast<const char*>(e + off), n);
  s.erase(s.find_last_not_of(std::string(" \0", 2)) + 1);
  return s;
}

TEST(NqnTest, Validation) {
  EXPECT_TRUE(validate_nqn("nqn.2014-08.org.nvmexpress.discovery").ok());
  EXPECT_TRUE(validate_nqn("nqn.2026-12.io.sluice:disk").ok());
  EXPECT_TRUE(validate_nqn("nqn.2016-06.io.spdk:cnode1").ok());
  EXPECT_TRUE(validate_nqn("nqn.2014-08.org.nvmexpress:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6").ok());
  EXPECT_FALSE(validate_nqn("nqn.2014-08.org.nvmexpress:uuid:f81d4fae-7dec-11d0-a765").ok());
  EXPECT_FALSE(validate_nqn("iqn.2026-12.io.sluice:disk").ok());
  EXPECT_FALSE(validate_nqn("nqn.2026-13.io.sluice:disk").ok());
  EXPECT_FALSE(validate_nqn("nqn.26-12.io.sluice:disk").ok());
  EXPECT_FALSE(validate_nqn("nqn.2026-12.:disk").ok());
  EXPECT_FALSE(validate_nqn("nqn.2026-12.1io.sluice:disk").ok());
  EXPECT_FALSE(validate_nqn("nqn.2026-12.io..sluice:disk").ok());
  EXPECT_FALSE(validate_nqn("nqn.2026-12.io-.sluice").ok());
  std::string longest = "nqn.2026-12.io.sluice:" + std::string(223 - 22, 'x');
  EXPECT_TRUE(validate_nqn(longest).ok());
  EXPECT_FALSE(validate_nqn(longest + "x").ok());
}

TEST_F(NvmfTest, SubsystemOptionsAreChecked) {
  auto add = [&](SubsystemOptions s) { return on_home([&](Target& t) { return t.add_subsystem(s); }); };
  EXPECT_EQ(add({.nqn = "not-an-nqn"}).code(), Errc::invalid_argument);
  EXPECT_EQ(add({.nqn = kSubnqn}).code(), Errc::exists);
  EXPECT_EQ(add({.nqn = "nqn.2026-12.io.sluice:x", .serial = std::string(21, 'S')}).code(), Errc::invalid_argument);
  // Control-path calls off the home reactor are refused.
  EXPECT_EQ(target_->add_subsystem({.nqn = "nqn.2026-12.io.sluice:y"}).code(), Errc::invalid_argument);
  // Namespaces: a taken NSID, one beyond the maximum, an unknown bdev.
  EXPECT_EQ(on_home([&](Target& t) { return t.add_namespace(kSubnqn, {.bdev = bdev_, .nsid = 1}).status(); }).code(),
            Errc::exists);
  EXPECT_EQ(on_home([&](Target& t) { return t.add_namespace(kSubnqn, {.bdev = bdev_, .nsid = 33}).status(); }).code(),
            Errc::invalid_argument);
  EXPECT_EQ(on_home([&](Target& t) { return t.add_namespace(kSubnqn, {.bdev = "nothing"}).status(); }).code(),
            Errc::not_found);
}

TEST_F(NvmfTest, DiscoveryLogShowsWhatTheHostMayReach) {
  ASSERT_TRUE(on_home([](Target& t) {
                SLUICE_RETURN_IF_ERROR(t.add_listener(kSubnqn, {.traddr = "127.0.0.1", .trsvcid = "4420"}));
                SLUICE_RETURN_IF_ERROR(t.add_listener(
                    kSubnqn, {.adrfam = AddressFamily::ipv6, .traddr = "::1", .trsvcid = "4421"}));
                SLUICE_RETURN_IF_ERROR(t.add_subsystem({.nqn = "nqn.2026-12.io.sluice:private"}));
                SLUICE_RETURN_IF_ERROR(t.add_listener("nqn.2026-12.io.sluice:private",
                                                      {.traddr = "10.0.0.1", .trsvcid = "4420"}));
                return t.add_host("nqn.2026-12.io.sluice:private", "nqn.2026-12.io.sluice:host-b");
              }).ok());
  auto discover = [&](const std::string& hostnqn, std::vector<uint8_t>& page) {
    Conn& c = conn(1);
    ASSERT_EQ(c.connect(0, sp::kDiscoveryNqn, hostnqn), 0);
    ASSERT_EQ(c.property_set(sp::kRegCc, sp::kCcEnable), 0);
    Cmd id(sp::kAdminIdentify, 4096);
    id.req.sqe.cdw10 = sp::kCnsController;
    ASSERT_EQ(c.exec(id), 0);
    EXPECT_EQ(id.data()[sp::idc::kCntrltype], sp::idc::kCntrltypeDiscovery);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(id.data() + sp::idc::kSubnqn)), sp::kDiscoveryNqn);
    // The header first, as a host does, then the whole log.
    Cmd head(sp::kAdminGetLogPage, dl::kHeaderSize);
    head.req.sqe.cdw10 = sp::kLogDiscovery | (dl::kHeaderSize / 4 - 1) << 16;
    ASSERT_EQ(c.exec(head), 0);
    const uint64_t records = sp::get<uint64_t>(head.data(), dl::kNumrec);
    const uint32_t bytes = static_cast<uint32_t>(dl::kHeaderSize + records * dl::kEntrySize);
    Cmd all(sp::kAdminGetLogPage, bytes);
    all.req.sqe.cdw10 = sp::kLogDiscovery | (bytes / 4 - 1) << 16;
    ASSERT_EQ(c.exec(all), 0);
    page.assign(all.data(), all.data() + bytes);
    EXPECT_EQ(sp::get<uint64_t>(page.data(), dl::kGenctr), sp::get<uint64_t>(head.data(), dl::kGenctr));
    // A discovery controller has no namespaces and no I/O queues.
    Cmd ns(sp::kAdminIdentify, 4096);
    ns.req.sqe.nsid = 1;
    EXPECT_EQ(sc(c.exec(ns)), sp::kScInvalidField);
    Conn& io = conn(1);
    EXPECT_EQ(sc(io.connect(1, sp::kDiscoveryNqn, hostnqn, c.cntlid())), sp::kScFabricsInvalidParameters);
  };

  std::vector<uint8_t> page;
  discover(kHostnqn, page);
  ASSERT_EQ(sp::get<uint64_t>(page.data(), dl::kNumrec), 2u);
  const uint8_t* e = page.data() + dl::kHeaderSize;
  EXPECT_EQ(e[dl::kTrtype], dl::kTrtypeTcp);
  EXPECT_EQ(e[dl::kAdrfam], dl::kAdrfamIpv4);
  EXPECT_EQ(e[dl::kSubtype], dl::kSubtypeNvm);
  EXPECT_EQ(sp::get<uint16_t>(e, dl::kCntlid), 0xffff);
  EXPECT_EQ(sp::get<uint16_t>(e, dl::kPortid), 0);
  EXPECT_EQ(field(e, dl::kTraddr, dl::kTraddrSize), "127.0.0.1");
  EXPECT_EQ(field(e, dl::kTrsvcid, dl::kTrsvcidSize), "4420");
  EXPECT_EQ(field(e, dl::kSubnqn, dl::kSubnqnSize), kSubnqn);
  e += dl::kEntrySize;
  EXPECT_EQ(e[dl::kAdrfam], dl::kAdrfamIpv6);
  EXPECT_EQ(field(e, dl::kTraddr, dl::kTraddrSize), "::1");
  EXPECT_EQ(field(e, dl::kTrsvcid, dl::kTrsvcidSize), "4421");

  // host-b may also reach the private subsystem.
  discover("nqn.2026-12.io.sluice:host-b", page);
  ASSERT_EQ(sp::get<uint64_t>(page.data(), dl::kNumrec), 3u);
  const uint8_t* third = page.data() + dl::kHeaderSize + 2 * dl::kEntrySize;
  EXPECT_EQ(field(third, dl::kSubnqn, dl::kSubnqnSize), "nqn.2026-12.io.sluice:private");
  EXPECT_EQ(sp::get<uint16_t>(third, dl::kPortid), 2);  // a third address
  EXPECT_EQ(sp::get<uint16_t>(page.data() + dl::kHeaderSize + dl::kEntrySize, dl::kPortid), 1);
  // Other log pages are not there on a discovery controller.
}

}  // namespace
}  // namespace sluice::nvmf::testing
