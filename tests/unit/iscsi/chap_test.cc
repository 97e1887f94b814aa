// CHAP: the response computed independently (MD5 of id || secret || challenge, RFC 1994),
// binary value encodings, one-way and mutual exchanges, and the refusals.
#include "target/iscsi/chap.h"

#include <gtest/gtest.h>
#include <nettle/md5.h>

#include <cstring>

namespace sluice::iscsi {
namespace {

// MD5 straight from nettle over the concatenation, as RFC 1994 section 4.1 defines it.
ChapDigest md5_of(const std::string& bytes) {
  md5_ctx c;
  md5_init(&c);
  md5_update(&c, bytes.size(), reinterpret_cast<const uint8_t*>(bytes.data()));
  ChapDigest d;
  md5_digest(&c, d.size(), d.data());
  return d;
}

std::string hex(const ChapDigest& d) { return encode_hex(d); }

TEST(IscsiChap, ResponseIsMd5OfIdSecretChallenge) {
  // The RFC 1321 vector: MD5("abc") with id 'a', secret "b", challenge "c".
  const uint8_t c = 'c';
  EXPECT_EQ(hex(chap_response('a', "b", {&c, 1})), "0x900150983cd24fb0d6963f7d28e17f72");
  const std::string secret = "a-secret-of-16by";
  const std::vector<uint8_t> challenge = {0xde, 0xad, 0xbe, 0xef, 0, 1, 2};
  std::string joined(1, char(0x37));
  joined += secret;
  joined.append(challenge.begin(), challenge.end());
  EXPECT_EQ(chap_response(0x37, secret, challenge), md5_of(joined));
}

TEST(IscsiChap, BinaryValues) {
  using V = std::vector<uint8_t>;
  EXPECT_EQ(decode_binary("0x0102ff", 16), (V{1, 2, 0xff}));
  EXPECT_EQ(decode_binary("0XaBc", 16), (V{0x0a, 0xbc}));  // odd count: a leading zero nibble
  EXPECT_EQ(decode_binary("0bAQID", 16), (V{1, 2, 3}));
  EXPECT_EQ(decode_binary("0BAQI=", 16), (V{1, 2}));
  EXPECT_EQ(decode_binary("0bAQ==", 16), (V{1}));
  EXPECT_EQ(decode_binary("0x", 16), std::nullopt);
  EXPECT_EQ(decode_binary("0xzz", 16), std::nullopt);
  EXPECT_EQ(decode_binary("1234", 16), std::nullopt);
  EXPECT_EQ(decode_binary("0bAQI", 16), std::nullopt);   // not a multiple of 4
  EXPECT_EQ(decode_binary("0bAQJ=", 16), std::nullopt);  // non-zero dropped bits
  EXPECT_EQ(decode_binary("0bA=I=", 16), std::nullopt);
  EXPECT_EQ(decode_binary("0x010203", 2), std::nullopt);  // over the limit
  EXPECT_EQ(encode_hex(V{0, 0xab}), "0x00ab");
}

TEST(IscsiChap, Credentials) {
  EXPECT_TRUE(check_credentials({"init", "twelve-bytes", "", ""}).ok());
  EXPECT_FALSE(check_credentials({"init", "short", "", ""}).ok());
  EXPECT_FALSE(check_credentials({"", "twelve-bytes", "", ""}).ok());
  EXPECT_TRUE(check_credentials({"init", "twelve-bytes", "tgt", "another-secret"}).ok());
  EXPECT_FALSE(check_credentials({"init", "twelve-bytes", "tgt", "twelve-bytes"}).ok());  // same both ways
  EXPECT_FALSE(check_credentials({"init", "twelve-bytes", "", "another-secret"}).ok());
}

// A random source that counts up from `start`: the challenge is known to the test.
ChapTarget::RandomSource counting(uint8_t start) {
  return [start](uint8_t* out, size_t n) mutable {
    for (size_t i = 0; i < n; ++i) out[i] = start++;
  };
}

struct Challenge {
  uint8_t id;
  std::vector<uint8_t> bytes;
};

Challenge start(ChapTarget& t, const std::string& algorithms = "7,5") {
  std::string resp;
  EXPECT_TRUE(t.handle({{"CHAP_A", algorithms}}, resp).ok());
  auto keys = parse_text(resp);
  EXPECT_TRUE(keys.ok());
  EXPECT_EQ(find_key(*keys, "CHAP_A")->value, "5");
  Challenge c;
  c.id = uint8_t(std::stoi(find_key(*keys, "CHAP_I")->value));
  c.bytes = *decode_binary(find_key(*keys, "CHAP_C")->value, 1024);
  return c;
}

const ChapCredentials kOneWay{"iqn.2026-12.test:init", "initiator-secret", "", ""};
const ChapCredentials kMutual{"iqn.2026-12.test:init", "initiator-secret", "iqn.2026-12.test:tgt", "target-secret-x"};

TEST(IscsiChap, OneWay) {
  ChapTarget t(kOneWay, counting(10));
  const Challenge c = start(t);
  EXPECT_EQ(c.id, 10);  // the counting source: id first, then 16 challenge bytes
  ASSERT_EQ(c.bytes.size(), kChapChallengeSize);
  EXPECT_EQ(c.bytes[0], 11);
  std::string joined(1, char(c.id));
  joined += kOneWay.initiator_secret;
  joined.append(c.bytes.begin(), c.bytes.end());
  std::string resp;
  ASSERT_TRUE(t.handle({{"CHAP_N", kOneWay.initiator_name}, {"CHAP_R", hex(md5_of(joined))}}, resp).ok());
  EXPECT_TRUE(t.authenticated());
  EXPECT_TRUE(resp.empty());
}

TEST(IscsiChap, ResponseInBase64) {
  ChapTarget t(kOneWay);  // getrandom()
  const Challenge c = start(t, "5");
  const ChapDigest d = chap_response(c.id, kOneWay.initiator_secret, c.bytes);
  // 16 bytes in base64 by hand: 5 groups of 3 and one byte with "==".
  static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string b64 = "0b";
  for (size_t i = 0; i < 15; i += 3) {
    const uint32_t v = uint32_t{d[i]} << 16 | uint32_t{d[i + 1]} << 8 | d[i + 2];
    for (int s = 18; s >= 0; s -= 6) b64 += kB64[(v >> s) & 63];
  }
  b64 += kB64[d[15] >> 2];
  b64 += kB64[(d[15] & 3) << 4];
  b64 += "==";
  std::string resp;
  ASSERT_TRUE(t.handle({{"CHAP_N", kOneWay.initiator_name}, {"CHAP_R", b64}}, resp).ok());
  EXPECT_TRUE(t.authenticated());
}

TEST(IscsiChap, WrongResponseNameOrAlgorithmRefused) {
  {
    ChapTarget t(kOneWay, counting(1));
    const Challenge c = start(t);
    ChapDigest d = chap_response(c.id, kOneWay.initiator_secret, c.bytes);
    d[3] ^= 1;
    std::string resp;
    const Status st = t.handle({{"CHAP_N", kOneWay.initiator_name}, {"CHAP_R", hex(d)}}, resp);
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("wrong CHAP_R"), std::string::npos) << st.message();
    EXPECT_FALSE(t.authenticated());
    // Nothing more is accepted after a failure, not even the right answer.
    EXPECT_FALSE(t.handle({{"CHAP_N", kOneWay.initiator_name},
                           {"CHAP_R", hex(chap_response(c.id, kOneWay.initiator_secret, c.bytes))}},
                          resp)
                     .ok());
  }
  {
    ChapTarget t(kOneWay, counting(1));
    const Challenge c = start(t);
    std::string resp;
    EXPECT_FALSE(
        t.handle({{"CHAP_N", "someone-else"}, {"CHAP_R", hex(chap_response(c.id, kOneWay.initiator_secret, c.bytes))}},
                 resp)
            .ok());
  }
  {
    ChapTarget t(kOneWay, counting(1));
    std::string resp;
    EXPECT_FALSE(t.handle({{"CHAP_A", "6,7"}}, resp).ok());
    EXPECT_EQ(resp, std::string("CHAP_A=Reject\0", 14));
  }
  {
    ChapTarget t(kOneWay, counting(1));
    std::string resp;
    EXPECT_FALSE(t.handle({{"CHAP_N", "x"}, {"CHAP_R", "0x00"}}, resp).ok());  // no CHAP_A first
  }
}

TEST(IscsiChap, Mutual) {
  ChapTarget t(kMutual, counting(50));
  const Challenge c = start(t);
  const std::vector<uint8_t> mine = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 9, 8, 7, 6, 5, 4};
  std::string resp;
  ASSERT_TRUE(t.handle({{"CHAP_N", kMutual.initiator_name},
                        {"CHAP_R", hex(chap_response(c.id, kMutual.initiator_secret, c.bytes))},
                        {"CHAP_I", "77"},
                        {"CHAP_C", encode_hex(mine)}},
                       resp)
                  .ok());
  EXPECT_TRUE(t.authenticated());
  auto keys = parse_text(resp);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(find_key(*keys, "CHAP_N")->value, kMutual.target_name);
  std::string joined(1, char(77));
  joined += kMutual.target_secret;
  joined.append(mine.begin(), mine.end());
  EXPECT_EQ(find_key(*keys, "CHAP_R")->value, hex(md5_of(joined)));
}

TEST(IscsiChap, MutualRefusals) {
  {  // the target's own challenge sent back
    ChapTarget t(kMutual, counting(50));
    const Challenge c = start(t);
    std::string resp;
    const Status st = t.handle({{"CHAP_N", kMutual.initiator_name},
                                {"CHAP_R", hex(chap_response(c.id, kMutual.initiator_secret, c.bytes))},
                                {"CHAP_I", "1"},
                                {"CHAP_C", encode_hex(c.bytes)}},
                               resp);
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("challenge"), std::string::npos) << st.message();
    EXPECT_TRUE(resp.empty());
  }
  {  // mutual configured, the initiator does not ask
    ChapTarget t(kMutual, counting(50));
    const Challenge c = start(t);
    std::string resp;
    EXPECT_FALSE(t.handle({{"CHAP_N", kMutual.initiator_name},
                           {"CHAP_R", hex(chap_response(c.id, kMutual.initiator_secret, c.bytes))}},
                          resp)
                     .ok());
  }
  {  // asked, but not configured; a bad CHAP_I
    ChapTarget t(kOneWay, counting(50));
    const Challenge c = start(t);
    std::string resp;
    EXPECT_FALSE(t.handle({{"CHAP_N", kOneWay.initiator_name},
                           {"CHAP_R", hex(chap_response(c.id, kOneWay.initiator_secret, c.bytes))},
                           {"CHAP_I", "1"},
                           {"CHAP_C", "0x0102"}},
                          resp)
                     .ok());
    ChapTarget u(kMutual, counting(50));
    const Challenge d = start(u);
    EXPECT_FALSE(u.handle({{"CHAP_N", kMutual.initiator_name},
                           {"CHAP_R", hex(chap_response(d.id, kMutual.initiator_secret, d.bytes))},
                           {"CHAP_I", "256"},
                           {"CHAP_C", "0x0102"}},
                          resp)
                     .ok());
  }
}

}  // namespace
}  // namespace sluice::iscsi
