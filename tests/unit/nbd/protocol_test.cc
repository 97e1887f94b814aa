// The codec alone: request parsing and validation, the handshake fed byte by byte.
#include <algorithm>
#include <string>
#include <string_view>
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

TEST(NbdProtocol, ValidateBlockStatus) {
  ExportLimits l{1 << 20, 512, 65536, false};
  EXPECT_EQ(validate({0, kCmdBlockStatus, 0, 0, 512}, l), kEinval);  // no context selected
  l.block_status = true;
  EXPECT_EQ(validate({0, kCmdBlockStatus, 0, 0, 512}, l), 0u);
  EXPECT_EQ(validate({kCmdFlagReqOne, kCmdBlockStatus, 0, 7, 1 << 19}, l), 0u);  // any byte range
  EXPECT_EQ(validate({0, kCmdBlockStatus, 0, 0, 0xffffffffu}, l), kEinval);      // past the end
  EXPECT_EQ(validate({0, kCmdBlockStatus, 0, 0, 0}, l), kEinval);
  EXPECT_EQ(validate({kCmdFlagReqOne, kCmdRead, 0, 0, 512}, l), kEinval);
  l.read_only = true;
  EXPECT_EQ(validate({0, kCmdBlockStatus, 0, 0, 512}, l), 0u);
}

TEST(NbdProtocol, BlockStatusPayload) {
  const Extent e[] = {{4096, kStateHole | kStateZero}, {512, 0}};
  uint8_t out[4 + 16];
  ASSERT_EQ(build_block_status_payload(out, e), sizeof(out));
  EXPECT_EQ(get32(out), kBaseAllocationId);
  EXPECT_EQ(get32(out + 4), 4096u);
  EXPECT_EQ(get32(out + 8), 3u);
  EXPECT_EQ(get32(out + 12), 512u);
  EXPECT_EQ(get32(out + 16), 0u);
}

// An option with its header; `data` is the payload.
std::vector<uint8_t> option(uint32_t opt, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> o(16 + data.size());
  put64(o.data(), kOptMagic);
  put32(o.data() + 8, opt);
  put32(o.data() + 12, static_cast<uint32_t>(data.size()));
  std::copy(data.begin(), data.end(), o.begin() + 16);
  return o;
}

// LIST_META_CONTEXT / SET_META_CONTEXT data: export name, then the queries.
std::vector<uint8_t> meta_query(std::string_view name, const std::vector<std::string>& queries) {
  std::vector<uint8_t> d(8 + name.size());
  put32(d.data(), static_cast<uint32_t>(name.size()));
  std::copy(name.begin(), name.end(), d.begin() + 4);
  put32(d.data() + 4 + name.size(), static_cast<uint32_t>(queries.size()));
  for (const std::string& q : queries) {
    const size_t at = d.size();
    d.resize(at + 4 + q.size());
    put32(d.data() + at, static_cast<uint32_t>(q.size()));
    std::copy(q.begin(), q.end(), d.begin() + at + 4);
  }
  return d;
}

struct OptionReply {
  uint32_t opt = 0, type = 0;
  std::vector<uint8_t> data;
};

// Feeds one option and returns the replies it produced.
std::vector<OptionReply> replies_to(Handshake& h, const std::vector<uint8_t>& in) {
  std::vector<uint8_t> out;
  EXPECT_EQ(h.feed(in, out), in.size());
  std::vector<OptionReply> replies;
  for (size_t at = 0; at + 20 <= out.size();) {
    EXPECT_EQ(get64(out.data() + at), kRepMagic);
    OptionReply r{get32(out.data() + at + 8), get32(out.data() + at + 12), {}};
    const uint32_t len = get32(out.data() + at + 16);
    r.data.assign(out.begin() + at + 20, out.begin() + at + 20 + len);
    replies.push_back(std::move(r));
    at += 20 + len;
  }
  return replies;
}

Handshake in_options() {
  Handshake h = make();
  uint8_t f[4];
  put32(f, kClientFixedNewstyle | kClientNoZeroes);
  std::vector<uint8_t> out;
  EXPECT_EQ(h.feed(f, out), 4u);
  return h;
}

std::vector<uint8_t> go(std::string_view name) {
  std::vector<uint8_t> d(6 + name.size());
  put32(d.data(), static_cast<uint32_t>(name.size()));
  std::copy(name.begin(), name.end(), d.begin() + 4);
  return option(kOptGo, d);
}

TEST(NbdProtocol, MetaContextsListAndSelectBaseAllocation) {
  Handshake h = in_options();
  // SET before structured replies: refused (its replies would have to be structured).
  auto r = replies_to(h, option(kOptSetMetaContext, meta_query("a", {"base:allocation"})));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].type, kRepErrInvalid);
  ASSERT_EQ(replies_to(h, option(kOptStructuredReply, {}))[0].type, kRepAck);

  // LIST without queries, and with the "base:" wildcard: base:allocation with id 0.
  for (auto queries : {std::vector<std::string>{}, std::vector<std::string>{"base:"}}) {
    r = replies_to(h, option(kOptListMetaContext, meta_query("a", queries)));
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].type, kRepMetaContext);
    EXPECT_EQ(get32(r[0].data.data()), 0u);
    EXPECT_EQ(std::string(r[0].data.begin() + 4, r[0].data.end()), kBaseAllocation);
    EXPECT_EQ(r[1].type, kRepAck);
  }
  // Unknown namespaces and leaves are ignored, an unknown export is an error.
  r = replies_to(h, option(kOptListMetaContext, meta_query("a", {"qemu:dirty-bitmap:x", "base:nope"})));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].type, kRepAck);
  r = replies_to(h, option(kOptSetMetaContext, meta_query("zz", {"base:allocation"})));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].type, kRepErrUnknown);

  // SET selects it with id 1 ("base:" selects nothing).
  r = replies_to(h, option(kOptSetMetaContext, meta_query("", {"base:", "x-other:y", "base:allocation"})));
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].type, kRepMetaContext);
  EXPECT_EQ(get32(r[0].data.data()), kBaseAllocationId);
  EXPECT_EQ(r[1].type, kRepAck);
  r = replies_to(h, go("a"));  // "" is the default export, "a": the same one
  ASSERT_FALSE(r.empty());
  EXPECT_EQ(r.back().type, kRepAck);
  EXPECT_EQ(h.state(), Handshake::State::transmission);
  EXPECT_TRUE(h.block_status());
}

TEST(NbdProtocol, MetaContextSelectionIsReplacedAndChecked) {
  Handshake h = in_options();
  ASSERT_EQ(replies_to(h, option(kOptStructuredReply, {}))[0].type, kRepAck);
  ASSERT_EQ(replies_to(h, option(kOptSetMetaContext, meta_query("a", {"base:allocation"}))).size(), 2u);
  // A later SET with no queries selects nothing.
  auto r = replies_to(h, option(kOptSetMetaContext, meta_query("a", {})));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].type, kRepAck);
  replies_to(h, go("a"));
  EXPECT_FALSE(h.block_status());

  // Lengths that do not add up: NBD_REP_ERR_INVALID, and the selection is dropped.
  Handshake g = in_options();
  ASSERT_EQ(replies_to(g, option(kOptStructuredReply, {}))[0].type, kRepAck);
  ASSERT_EQ(replies_to(g, option(kOptSetMetaContext, meta_query("a", {"base:allocation"}))).size(), 2u);
  std::vector<uint8_t> bad = meta_query("a", {"base:allocation"});
  put32(bad.data() + 9, 200);  // the query's length runs past the option
  r = replies_to(g, option(kOptSetMetaContext, bad));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].type, kRepErrInvalid);
  bad = meta_query("a", {"base:allocation"});
  bad.push_back(0);  // a trailing byte
  EXPECT_EQ(replies_to(g, option(kOptListMetaContext, bad))[0].type, kRepErrInvalid);
  EXPECT_EQ(replies_to(g, option(kOptListMetaContext, {1, 2, 3}))[0].type, kRepErrInvalid);
  replies_to(g, go("a"));
  EXPECT_EQ(g.state(), Handshake::State::transmission);
  EXPECT_FALSE(g.block_status());
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
