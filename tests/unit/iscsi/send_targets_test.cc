// SendTargets answers: All in a Discovery session, one name, the session's own target, and
// the refusals.
#include "target/iscsi/send_targets.h"

#include <gtest/gtest.h>

namespace sluice::iscsi {
namespace {

using namespace std::string_literals;

const std::vector<TargetRecord> kTargets = {
    {"iqn.2026-12.test:a", {{"192.0.2.1:3260", 1}, {"[2001:db8::1]:3260", 2}}},
    {"iqn.2026-12.test:b", {{"192.0.2.1:3260", 1}}},
};

TEST(IscsiSendTargets, AllInDiscovery) {
  const std::string r = answer_send_targets("All", kTargets, SessionType::discovery, "");
  EXPECT_EQ(r,
            "TargetName=iqn.2026-12.test:a\0TargetAddress=192.0.2.1:3260,1\0TargetAddress=[2001:db8::1]:3260,2\0"
            "TargetName=iqn.2026-12.test:b\0TargetAddress=192.0.2.1:3260,1\0"s);
  // TargetAddress repeats, so the answer is not a text parse_text() takes (keys once each).
  EXPECT_FALSE(parse_text(r).ok());
}

TEST(IscsiSendTargets, OneNameOrTheSessionsOwn) {
  EXPECT_EQ(answer_send_targets("iqn.2026-12.test:b", kTargets, SessionType::discovery, ""),
            "TargetName=iqn.2026-12.test:b\0TargetAddress=192.0.2.1:3260,1\0"s);
  EXPECT_EQ(answer_send_targets("iqn.2026-12.test:none", kTargets, SessionType::discovery, ""), "");
  EXPECT_EQ(answer_send_targets("", kTargets, SessionType::normal, "iqn.2026-12.test:b"),
            "TargetName=iqn.2026-12.test:b\0TargetAddress=192.0.2.1:3260,1\0"s);
}

TEST(IscsiSendTargets, Refusals) {
  EXPECT_EQ(answer_send_targets("All", kTargets, SessionType::normal, "iqn.2026-12.test:a"), "SendTargets=Reject\0"s);
  EXPECT_EQ(answer_send_targets("", kTargets, SessionType::discovery, ""), "SendTargets=Reject\0"s);
}

}  // namespace
}  // namespace sluice::iscsi
