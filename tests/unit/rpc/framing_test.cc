#include <gtest/gtest.h>

#include "rpc/rpc.h"

namespace sluice::rpc {
namespace {

using Next = FrameSplitter::Next;

TEST(FrameSplitter, SplitsValuesBackToBackAcrossFeeds) {
  FrameSplitter s(1024);
  std::string frame;
  s.feed(R"({"a":"}{[\"x"} [1,)");
  ASSERT_EQ(s.next(frame), Next::frame);
  EXPECT_EQ(frame, R"({"a":"}{[\"x"})");
  EXPECT_EQ(s.next(frame), Next::need_more);
  s.feed("2]\n{}");
  ASSERT_EQ(s.next(frame), Next::frame);
  EXPECT_EQ(frame, "[1,2]");
  ASSERT_EQ(s.next(frame), Next::frame);
  EXPECT_EQ(frame, "{}");
  EXPECT_EQ(s.next(frame), Next::need_more);
}

TEST(FrameSplitter, OneByteAtATime) {
  const std::string text = R"({"method":"x","params":{"s":"a\\\"}b"}})";
  FrameSplitter s(1024);
  std::string frame;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    s.feed(text.substr(i, 1));
    ASSERT_EQ(s.next(frame), Next::need_more) << i;
  }
  s.feed(text.substr(text.size() - 1));
  ASSERT_EQ(s.next(frame), Next::frame);
  EXPECT_EQ(frame, text);
}

TEST(FrameSplitter, RejectsWhatCannotBeFramed) {
  std::string frame;
  FrameSplitter garbage(1024);
  garbage.feed("  hello");
  EXPECT_EQ(garbage.next(frame), Next::garbage);

  FrameSplitter big(16);
  big.feed(R"({"x":"0123456789abcdef"})");
  EXPECT_EQ(big.next(frame), Next::too_large);

  FrameSplitter unterminated(16);
  unterminated.feed("{\"");
  EXPECT_EQ(unterminated.next(frame), Next::need_more);
  unterminated.feed(std::string(20, 'x'));
  EXPECT_EQ(unterminated.next(frame), Next::too_large);
}

}  // namespace
}  // namespace sluice::rpc
