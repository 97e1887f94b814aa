// The access rules' pieces without sockets: iSCSI names, netmasks, initiator-group names.
#include <gtest/gtest.h>

#include "target/iscsi/acl.h"

namespace sluice::iscsi {
namespace {

TEST(IscsiAcl, IscsiNames) {
  EXPECT_TRUE(check_iscsi_name("iqn.2026-12.io.sluice:disk0").ok());
  EXPECT_TRUE(check_iscsi_name("iqn.1993-08.org.debian").ok());
  EXPECT_TRUE(check_iscsi_name("eui.02004567A425678D").ok());
  EXPECT_TRUE(check_iscsi_name("naa.52004567BA64678D").ok());
  EXPECT_TRUE(check_iscsi_name("naa.62004567BA64678D0123456789ABCDEF").ok());
  for (const char* bad : {"", "disk0", "iqn.", "iqn.2026-12", "iqn.2026-12.", "iqn.26-12.io.sluice", "eui.0200",
                          "eui.02004567A425678G", "naa.1234", "iqn.2026-12.io.sluice:disk 0", "iqn.2026-12.io_x"}) {
    Status st = check_iscsi_name(bad);
    EXPECT_EQ(st.code(), Errc::invalid_argument) << bad;
    EXPECT_NE(st.message().find("is not an iSCSI name"), std::string::npos) << st.message();
  }
  EXPECT_FALSE(check_iscsi_name("iqn.2026-12.io.sluice:" + std::string(210, 'a')).ok());
}

TEST(IscsiAcl, GroupNames) {
  for (const char* ok : {"ANY", "any", "!ANY", "iqn.2026-12.io.sluice:h", "!iqn.2026-12.io.sluice:h"})
    EXPECT_TRUE(check_group_name(ok).ok()) << ok;
  for (const char* bad : {"", "!", "!!ANY", "ANYONE", "host1"}) EXPECT_FALSE(check_group_name(bad).ok()) << bad;
}

TEST(IscsiAcl, FirstMatchingNameDecides) {
  const std::string a = "iqn.2026-12.io.sluice:a", b = "iqn.2026-12.io.sluice:b";
  EXPECT_EQ(match_name({"ANY"}, a), NameVerdict::allowed);
  EXPECT_EQ(match_name({a}, a), NameVerdict::allowed);
  EXPECT_EQ(match_name({"IQN.2026-12.IO.SLUICE:A"}, a), NameVerdict::allowed);  // names are case-insensitive
  EXPECT_EQ(match_name({a}, b), NameVerdict::no_match);
  EXPECT_EQ(match_name({"!" + a, "ANY"}, a), NameVerdict::denied);
  EXPECT_EQ(match_name({"!" + a, "ANY"}, b), NameVerdict::allowed);
  EXPECT_EQ(match_name({"ANY", "!" + a}, a), NameVerdict::allowed);
  EXPECT_EQ(match_name({"!ANY"}, a), NameVerdict::denied);
  EXPECT_EQ(match_name({}, a), NameVerdict::no_match);
}

bool acl_mask_matches(const char* mask, const char* address) {
  auto m = parse_netmask(mask);
  EXPECT_TRUE(m.ok()) << mask << ": " << m.status().to_string();
  return m.ok() && netmask_matches(m.value(), address);
}

TEST(IscsiAcl, Netmasks) {
  EXPECT_TRUE(acl_mask_matches("ANY", "192.0.2.1"));
  EXPECT_TRUE(acl_mask_matches("ANY", "::1"));
  EXPECT_TRUE(acl_mask_matches("127.0.0.1", "127.0.0.1"));
  EXPECT_FALSE(acl_mask_matches("127.0.0.1", "127.0.0.2"));
  EXPECT_TRUE(acl_mask_matches("127.0.0.1/32", "127.0.0.1"));
  EXPECT_TRUE(acl_mask_matches("127.0.0.0/8", "127.1.2.3"));
  EXPECT_FALSE(acl_mask_matches("127.0.0.0/8", "128.0.0.1"));
  EXPECT_TRUE(acl_mask_matches("192.0.2.128/25", "192.0.2.200"));
  EXPECT_FALSE(acl_mask_matches("192.0.2.128/25", "192.0.2.100"));
  EXPECT_TRUE(acl_mask_matches("127.0.0.0/0", "128.0.0.1"));
  EXPECT_TRUE(acl_mask_matches("[::1]/128", "::1"));
  EXPECT_TRUE(acl_mask_matches("[::1]", "::1"));
  EXPECT_FALSE(acl_mask_matches("[::1]/128", "::2"));
  EXPECT_TRUE(acl_mask_matches("[2001:db8::]/32", "2001:db8:1::5"));
  EXPECT_FALSE(acl_mask_matches("[2001:db8::]/32", "2001:db9::5"));
  EXPECT_FALSE(acl_mask_matches("[::1]/128", "127.0.0.1"));  // families do not mix
  EXPECT_FALSE(acl_mask_matches("127.0.0.1/32", "::1"));
  EXPECT_TRUE(acl_mask_matches("127.0.0.1/32", "::ffff:127.0.0.1"));  // IPv4-mapped
  EXPECT_FALSE(acl_mask_matches("127.0.0.1", "not an address"));
}

TEST(IscsiAcl, BadNetmasks) {
  for (const char* bad : {"", "127.0.0.1/", "127.0.0.1/33", "127.0.0.1/x", "127.0.0.1/8x", "127.0.0", "::1", "[::1",
                          "[::1]/129", "[::1]x", "[127.0.0.1]", "[::1]/", "host.example", "ANYWHERE"}) {
    auto m = parse_netmask(bad);
    ASSERT_FALSE(m.ok()) << bad;
    EXPECT_EQ(m.status().code(), Errc::invalid_argument);
    EXPECT_NE(m.status().message().find("bad netmask"), std::string::npos) << m.status().message();
  }
}

}  // namespace
}  // namespace sluice::iscsi
