// The codec alone: request parsing and validation, the handshake fed byte by byte.
#include <vector>

#include <gtest/gtest.h>

#include "target/nbd/protocol.h"

namespace sluice::nbd::proto {
namespace {

TEST(NbdProtocol, ParseRequest) {
  uint8_t b[kRequestSize];
  put32(b, kRequestMagic);
  put16(b + 4, kCmdFlagFua);
  put16(b + 6, kCmdWrite);
  put64(b + 8, 0x1122334455667788ull);
  put64(b + 16, 4096);
  put32(b + 24, 512);
  auto r = parse_request(std::span<const uint8_t, kRequestSize>(b, kRequestSize));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, kCmdWrite);
  EXPECT_EQ(r->flags, kCmdFlagFua);
  EXPECT_EQ(r->cookie, 0x1122334455667788ull);
  EXPECT_EQ(r->offset, 4096u);
  EXPECT_EQ(r->length, 512u);
  b[0] ^= 1;
  EXPECT_FALSE(parse_request(std::span<const uint8_t, kRequestSize>(b, kRequestSize)));
}

TEST(NbdProtocol, Validate) {
  ExportLimits l{1 << 20, 512, 65536, false};
  EXPECT_EQ(validate({0, kCmdRead, 0, 0, 512}, l), 0u);
  EXPECT_EQ(validate({0, kCmdRead, 0, (1 << 20) - 512, 512}, l), 0u);
  EXPECT_EQ(validate({0, kCmdRead, 0, 1 << 20, 512}, l), kEinval);
  EXPECT_EQ(validate({0, kCmdRead, 0, ~0ull, 512}, l), kEinval);
  EXPECT_EQ(validate({0, kCmdRead, 0, 0, 131072}, l), kEoverflow);
  EXPECT_EQ(validate({0, kCmdTrim, 0, 0, 1 << 20}, l), 0u);  // no payload: no payload cap
  EXPECT_EQ(validate({0, kCmdWrite, 0, 1 << 20, 512}, l), kEnospc);
  EXPECT_EQ(validate({kCmdFlagFastZero, kCmdWriteZeroes, 0, 0, 512}, l), 0u);
  EXPECT_EQ(validate({kCmdFlagFastZero, kCmdWrite, 0, 0, 512}, l), kEinval);
  EXPECT_EQ(validate({0, 42, 0, 0, 0}, l), kEinval);
  EXPECT_EQ(validate({kCmdFlagDf, kCmdRead, 0, 0, 512}, l), 0u);
  EXPECT_EQ(validate({kCmdFlagDf, kCmdWrite, 0, 0, 512}, l), kEinval);
  l.read_only = true;
  EXPECT_EQ(validate({0, kCmdWrite, 0, 0, 512}, l), kEperm);
  EXPECT_EQ(validate({0, kCmdWriteZeroes, 0, 0, 512}, l), kEperm);
  EXPECT_EQ(validate({0, kCmdFlush, 0, 0, 0}, l), 0u);
  EXPECT_TRUE(transmission_flags(l) & kTxReadOnly);
  EXPECT_FALSE(transmission_flags(l) & kTxSendTrim);
  l.read_only = false;
  l.can_trim = false;
  EXPECT_EQ(validate({0, kCmdTrim, 0, 0, 512}, l), kEnotsup);
  EXPECT_FALSE(transmission_flags(l) & kTxSendTrim);
  EXPECT_TRUE(transmission_flags(l) & kTxSendWriteZeroes);
}

Handshake make() {
  return Handshake(
      [](std::string_view name) -> std::optional<ExportView> {
        if (name != "a" && !name.empty()) return std::nullopt;
        return ExportView{"a", ExportLimits{1 << 20, 512, 65536, false}};
      },
      [] { return std::vector<std::string>{"a"}; });
}

TEST(NbdProtocol, HandshakeFedByteByByte) {
  Handshake h = make();
  std::vector<uint8_t> in(4 + 16 + 4 + 1 + 2);
  put32(in.data(), kClientFixedNewstyle);
  put64(in.data() + 4, kOptMagic);
  put32(in.data() + 12, kOptGo);
  put32(in.data() + 16, 7);
  put32(in.data() + 20, 1);
  in[24] = 'a';
  put16(in.data() + 25, 0);
  std::vector<uint8_t> out;
  std::vector<uint8_t> pending;
  for (uint8_t b : in) {
    pending.push_back(b);
    size_t used;
    while ((used = h.feed(pending, out)) > 0) pending.erase(pending.begin(), pending.begin() + used);
  }
  EXPECT_TRUE(pending.empty());
  EXPECT_EQ(h.state(), Handshake::State::transmission);
  EXPECT_EQ(h.chosen().name, "a");
  // INFO_EXPORT (20 + 12) then ACK (20).
  ASSERT_EQ(out.size(), 52u);
  EXPECT_EQ(get32(out.data() + 12), kRepInfo);
  EXPECT_EQ(get64(out.data() + 22), 1u << 20);
  EXPECT_EQ(get32(out.data() + 32 + 12), kRepAck);
}

TEST(NbdProtocol, HandshakeRefusesBadFlagsAndMagic) {
  std::vector<uint8_t> out;
  Handshake h = make();
  uint8_t f[4];
  put32(f, 0x80);
  EXPECT_EQ(h.feed(f, out), 4u);
  EXPECT_EQ(h.state(), Handshake::State::closed);

  Handshake g = make();
  put32(f, 0);
  EXPECT_EQ(g.feed(f, out), 4u);
  uint8_t bad[16] = {1, 2, 3};
  EXPECT_EQ(g.feed(bad, out), 16u);
  EXPECT_EQ(g.state(), Handshake::State::closed);
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace sluice::nbd::proto
