// Many sessions at once: a hundred initiators logged in to one node, each writing and reading
// back its own blocks while the others are open, then all logging out.
#include <fmt/format.h>

#include "server_test_support.h"

namespace sluice::iscsi::testing {
namespace {

constexpr int kSessions = 100;
constexpr uint16_t kBlocksEach = 8;  // 4 KiB of 512-byte blocks per session

std::vector<uint8_t> pattern_of(int session) {
  std::vector<uint8_t> b(kBlocksEach * 512);
  for (size_t k = 0; k < b.size(); ++k) b[k] = uint8_t(session * 7 + k);
  return b;
}

TEST_F(IscsiServerTest, HundredSessionsAtOnce) {
  serve();
  std::vector<std::unique_ptr<Initiator>> sessions;
  for (int s = 0; s < kSessions; ++s) {
    sessions.push_back(session(LoginOptions{.initiator = fmt::format("iqn.2026-12.io.sluice:host{}", s)}));
    ASSERT_FALSE(HasFailure()) << "session " << s;
  }
  auto live = target_->connections();
  ASSERT_TRUE(live.ok()) << live.status().to_string();
  EXPECT_EQ(live->size(), size_t{kSessions});

  // Every session writes while all are open, then every one reads back what it wrote: a
  // mix-up between sessions' tasks or buffers shows as another session's pattern.
  for (int s = 0; s < kSessions; ++s) {
    const auto data = pattern_of(s);
    auto cdb = rw10(0x2a, uint32_t(s * kBlocksEach), kBlocksEach);
    auto r = run_command(*sessions[s], cdb.data(), uint32_t(data.size()), &data);
    ASSERT_TRUE(r.ok) << "session " << s;
    ASSERT_EQ(r.status, 0) << "session " << s;
  }
  for (int s = 0; s < kSessions; ++s) {
    auto cdb = rw10(0x28, uint32_t(s * kBlocksEach), kBlocksEach);
    auto r = run_command(*sessions[s], cdb.data(), kBlocksEach * 512, nullptr);
    ASSERT_TRUE(r.ok) << "session " << s;
    ASSERT_EQ(r.status, 0) << "session " << s;
    EXPECT_EQ(r.data, pattern_of(s)) << "session " << s;
  }

  for (int s = 0; s < kSessions; ++s) {
    auto out = sessions[s]->logout();
    ASSERT_TRUE(out.has_value()) << "session " << s;
    EXPECT_EQ(out->response, 0) << "session " << s;  // closed successfully
  }
  sessions.clear();
  EXPECT_TRUE(sluice::testing::wait_until([&] { return target_->live_connections() == 0; }));
}

}  // namespace
}  // namespace sluice::iscsi::testing
