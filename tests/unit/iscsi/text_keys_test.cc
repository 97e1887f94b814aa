// The key=value text: parsing edge cases, key name and value limits, the C-bit accumulator,
// building and splitting response text.
#include "target/iscsi/text_keys.h"

#include <gtest/gtest.h>

namespace sluice::iscsi {
namespace {

using namespace std::string_literals;

TEST(IscsiText, ParsesPairs) {
  auto r = parse_text("InitiatorName=iqn.x\0HeaderDigest=CRC32C,None\0X-com.example.k=v=w\0"s);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0], (KeyValue{"InitiatorName", "iqn.x"}));
  EXPECT_EQ((*r)[1].value, "CRC32C,None");
  EXPECT_EQ((*r)[2], (KeyValue{"X-com.example.k", "v=w"}));  // only the first '=' splits
  EXPECT_EQ(find_key(*r, "HeaderDigest"), &(*r)[1]);
  EXPECT_EQ(find_key(*r, "DataDigest"), nullptr);
}

TEST(IscsiText, EmptyTextAndEmptyValue) {
  auto r = parse_text(""s);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  r = parse_text("SendTargets=\0"s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].value, "");
  r = parse_text("A=1\0\0\0"s);  // stray NULs carry nothing
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 1u);
}

TEST(IscsiText, Errors) {
  auto err = [](const std::string& t) {
    auto r = parse_text(t);
    EXPECT_FALSE(r.ok()) << "accepted: " << t;
    return r.ok() ? std::string() : r.status().message();
  };
  EXPECT_NE(err("NoEquals\0"s).find("no '='"), std::string::npos);
  EXPECT_NE(err("A=1"s).find("NUL"), std::string::npos);  // not NUL-terminated
  EXPECT_NE(err("A=1\0A=2\0"s).find("twice"), std::string::npos);
  err("=value\0"s);
  err("lower=1\0"s);
  err("Bad key=1\0"s);
  err("Bad#=1\0"s);
  EXPECT_NE(err("K" + std::string(63, 'k') + "=1\0"s).find("over 63"), std::string::npos);
  EXPECT_TRUE(parse_text(std::string(63, 'K') + "=1\0"s).ok());
  EXPECT_TRUE(parse_text("X#org.iana.k=1\0"s).ok());
  EXPECT_NE(err("TargetAlias=" + std::string(256, 'a') + "\0"s).find("over 255"), std::string::npos);
  EXPECT_TRUE(parse_text("TargetAlias=" + std::string(255, 'a') + "\0"s).ok());
  EXPECT_TRUE(parse_text("CHAP_C=0x" + std::string(8190, 'a') + "\0"s).ok());
  err("CHAP_C=0x" + std::string(8191, 'a') + "\0"s);
}

TEST(IscsiText, KeyNames) {
  EXPECT_TRUE(check_key_name("MaxBurstLength").ok());
  EXPECT_TRUE(check_key_name("X-a.b-c+d@e_f1").ok());
  EXPECT_FALSE(check_key_name("").ok());
  EXPECT_FALSE(check_key_name("1Key").ok());
  EXPECT_FALSE(check_key_name("A#b").ok());
  EXPECT_EQ(max_value_length("CHAP_R"), kMaxLongValue);
  EXPECT_EQ(max_value_length("TargetName"), kMaxValue);
}

TEST(IscsiText, AccumulatorJoinsContinuedPdus) {
  TextAccumulator acc(100);
  const std::string a = "InitiatorName=iq", b = "n.x\0SessionType=Nor"s, c = "mal\0"s;
  auto span = [](const std::string& s) { return std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()); };
  ASSERT_TRUE(acc.add(span(a), true).ok());
  EXPECT_FALSE(acc.complete());
  EXPECT_FALSE(acc.take().ok());  // not complete yet
  ASSERT_TRUE(acc.add(span(a), true).ok());
  acc.reset();
  ASSERT_TRUE(acc.add(span(a), true).ok());
  ASSERT_TRUE(acc.add(span(b), true).ok());
  ASSERT_TRUE(acc.add(span(c), false).ok());
  EXPECT_TRUE(acc.complete());
  EXPECT_FALSE(acc.add(span(c), false).ok());  // after the last PDU
  acc.reset();
  ASSERT_TRUE(acc.add(span(a), true).ok());
  ASSERT_TRUE(acc.add(span(b), true).ok());
  ASSERT_TRUE(acc.add(span(c), false).ok());
  auto r = acc.take();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].value, "iqn.x");
  EXPECT_EQ((*r)[1].value, "Normal");
  EXPECT_EQ(acc.size(), 0u);
}

TEST(IscsiText, AccumulatorLimit) {
  TextAccumulator acc(10);
  const std::string s(6, 'A');
  auto span = std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  ASSERT_TRUE(acc.add(span, true).ok());
  const Status st = acc.add(span, true);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("limit of 10"), std::string::npos) << st.message();
  EXPECT_EQ(acc.size(), 0u);
}

TEST(IscsiText, BuildAndSplit) {
  std::string out;
  append_key(out, "HeaderDigest", "None");
  append_key(out, "MaxRecvDataSegmentLength", "8192");
  EXPECT_EQ(out, "HeaderDigest=None\0MaxRecvDataSegmentLength=8192\0"s);
  auto back = parse_text(out);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->size(), 2u);
  EXPECT_EQ(text_chunk(out, 0, 10), "HeaderDige");
  EXPECT_EQ(text_chunk(out, 40, 10), out.substr(40));
  EXPECT_EQ(text_chunk(out, out.size(), 10), "");
  std::string joined;
  for (size_t at = 0; at < out.size(); at += 7) joined += text_chunk(out, at, 7);
  EXPECT_EQ(joined, out);
}

}  // namespace
}  // namespace sluice::iscsi
