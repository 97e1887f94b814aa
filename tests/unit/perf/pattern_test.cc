#include "perf/pattern.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace sluice::perf {
namespace {

constexpr size_t kLen = 4096;
constexpr uint64_t kOffset = 1 << 20;

std::vector<uint8_t> written(Pattern& p, uint64_t offset, uint64_t gen) {
  std::vector<uint8_t> buf(kLen);
  p.fill(buf.data(), kLen, gen);
  Pattern::stamp(buf.data(), kLen, offset);
  return buf;
}

TEST(Pattern, WhatWasWrittenChecksOut) {
  Pattern p(42);
  auto buf = written(p, kOffset, 3);
  EXPECT_FALSE(p.check(buf.data(), kLen, kOffset, 3));
  EXPECT_FALSE(p.check(buf.data(), kLen, kOffset, Pattern::kAnyGeneration));
}

TEST(Pattern, FlippedByteIsReportedWithItsDeviceOffset) {
  Pattern p(42);
  auto buf = written(p, kOffset, 0);
  const size_t at = 1234;
  const uint8_t was = buf[at];
  buf[at] ^= 0x40;
  auto m = p.check(buf.data(), kLen, kOffset, 0);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->offset, kOffset + at);
  EXPECT_EQ(m->expected, was);
  EXPECT_EQ(m->actual, was ^ 0x40);
  EXPECT_NE(m->detail.find("payload is corrupt"), std::string::npos) << m->detail;
}

TEST(Pattern, MisdirectedDataIsNamed) {
  Pattern p(42);
  auto buf = written(p, kOffset + kLen, 0);  // the data of the next block
  auto m = p.check(buf.data(), kLen, kOffset, 0);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->offset, kOffset + 9);  // the offset word of the first sector: 0x101000 vs 0x100000
  EXPECT_NE(m->detail.find("misdirected"), std::string::npos) << m->detail;
}

TEST(Pattern, StaleGenerationIsALostWrite) {
  Pattern p(42);
  auto buf = written(p, kOffset, 1);
  auto m = p.check(buf.data(), kLen, kOffset, 2);
  ASSERT_TRUE(m);
  EXPECT_NE(m->detail.find("pass 1, not pass 2"), std::string::npos) << m->detail;
}

TEST(Pattern, AnotherRunsSeedIsNamed) {
  Pattern writer(7), checker(8);
  auto buf = written(writer, kOffset, 0);
  auto m = checker.check(buf.data(), kLen, kOffset, Pattern::kAnyGeneration);
  ASSERT_TRUE(m);
  EXPECT_NE(m->detail.find("seed 7"), std::string::npos) << m->detail;
}

TEST(Pattern, TornWriteIsCaughtInTheStaleSector) {
  Pattern p(42);
  auto old_data = written(p, kOffset, 0);
  auto buf = written(p, kOffset, 1);
  std::memcpy(buf.data() + 3 * Pattern::kSector, old_data.data() + 3 * Pattern::kSector, Pattern::kSector);
  auto m = p.check(buf.data(), kLen, kOffset, 1);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->offset, kOffset + 3 * Pattern::kSector + 24);  // the generation word
}

TEST(Pattern, ZeroesAreNeverWritten) {
  Pattern p(42);
  std::vector<uint8_t> buf(kLen, 0);
  auto m = p.check(buf.data(), kLen, kOffset, Pattern::kAnyGeneration);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->offset, kOffset);
  EXPECT_NE(m->detail.find("zeroes"), std::string::npos) << m->detail;
}

}  // namespace
}  // namespace sluice::perf
