// Timeouts, abort, controller reset and recovery, and queues on several threads.
#include <thread>
#include <vector>

#include <gmock/gmock.h>

#include "nvme_test_support.h"

namespace sluice::nvme::testing {
namespace {

TEST_F(ModelTest, ExplicitAbortCompletesAStalledCommand) {
  start();
  auto q = queue();
  q->set_timeout_ms(0);
  model_->inject({q->id(), spec::kIoRead, 1, 0, /*stall=*/true});
  env::DmaBuffer buf(4096);
  Waiter w;
  iovec v = {buf.data(), 4096};
  ASSERT_EQ(q->read(1, &v, 1, 0, 8, Waiter::cb, &w), Errc::ok);
  q->poll();
  EXPECT_EQ(model_->stalled(), 1u);
  EXPECT_FALSE(w.done);
  auto aborted = ctrl_->abort(q->id(), 0);  // the first command gets cid 0
  ASSERT_TRUE(aborted.ok()) << aborted.status().to_string();
  EXPECT_TRUE(*aborted);
  ASSERT_TRUE(poll_until(*q, [&] { return w.done; }));
  EXPECT_EQ(w.c.errc(), Errc::aborted);
  EXPECT_EQ(status_text(w.c.status), "command abort requested (SCT 0 SC 0x07)");
  auto again = ctrl_->abort(q->id(), 0);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);  // nothing left to abort
}

TEST_F(ModelTest, TimedOutCommandIsAbortedAndTheQueueGoesOn) {
  start();
  auto q = queue();
  q->set_timeout_ms(20);
  model_->inject({q->id(), spec::kIoWrite, 1, 0, /*stall=*/true});
  env::DmaBuffer buf(4096);
  Waiter w;
  iovec v = {buf.data(), 4096};
  ASSERT_EQ(q->write(1, &v, 1, 0, 8, Waiter::cb, &w), Errc::ok);
  ASSERT_TRUE(poll_until(*q, [&] { return w.done; }));
  EXPECT_TRUE(w.c.timed_out);
  EXPECT_EQ(w.c.errc(), Errc::aborted);
  EXPECT_THAT(completion_status(w.c, "write").message(), ::testing::HasSubstr("timed out, then command abort requested"));
  EXPECT_EQ(q->stats().timeouts, 1u);
  EXPECT_EQ(model_->counters().aborts_done, 1u);
  EXPECT_EQ(model_->counters().enables, 1u);  // no reset was needed
  EXPECT_TRUE(write(*q, buf.data(), 0, 8).ok());
}

TEST_F(ModelTest, CommandThatSurvivesItsAbortTriggersAResetAndTheQueueReconnects) {
  start();
  auto q = queue();
  q->set_timeout_ms(20);
  env::DmaBuffer data(4096);
  fill_pattern(data.data(), 4096, 11);
  ASSERT_TRUE(write(*q, data.data(), 64, 8).ok());
  // The read stalls, and the Abort claims success without touching it: a stuck controller.
  model_->inject({q->id(), spec::kIoRead, 1, 0, /*stall=*/true});
  model_->inject({0, spec::kAdminAbort, 1, 0});
  env::DmaBuffer buf(4096);
  Waiter w;
  iovec v = {buf.data(), 4096};
  ASSERT_EQ(q->read(1, &v, 1, 64, 8, Waiter::cb, &w), Errc::ok);
  ASSERT_TRUE(poll_until(*q, [&] { return w.done; }));
  EXPECT_TRUE(w.c.reset_aborted);
  EXPECT_EQ(w.c.errc(), Errc::aborted);
  EXPECT_EQ(model_->counters().enables, 2u);
  EXPECT_EQ(q->stats().reconnects, 1u);
  EXPECT_EQ(model_->io_queue_count(), 1u);
  // The data written before the reset is still there, read through the recreated queue.
  env::DmaBuffer back(4096);
  ASSERT_TRUE(read(*q, back.data(), 64, 8).ok());
  EXPECT_EQ(std::memcmp(back.data(), data.data(), 4096), 0);
}

TEST_F(ModelTest, ResetFailsOutstandingCommandsOnEveryQueue) {
  start();
  auto a = queue(), b = queue();
  a->set_timeout_ms(0);
  b->set_timeout_ms(0);
  model_->inject({Injection::kAnyQueue, spec::kIoWrite, 3, 0, /*stall=*/true});
  env::DmaBuffer buf(3 * 4096);
  int failed = 0;
  auto cb = [](void* arg, const Completion& c) {
    EXPECT_TRUE(c.reset_aborted);
    ++*static_cast<int*>(arg);
  };
  for (int i = 0; i < 3; ++i) {
    iovec v = {static_cast<uint8_t*>(buf.data()) + i * 4096, 4096};
    ASSERT_EQ((i == 2 ? *b : *a).write(1, &v, 1, i * 8, 8, cb, &failed), Errc::ok);
  }
  a->poll();
  b->poll();
  EXPECT_EQ(model_->stalled(), 3u);
  ASSERT_TRUE(ctrl_->reset().ok());
  EXPECT_EQ(model_->stalled(), 0u);  // the disable dropped them
  a->poll();
  b->poll();
  EXPECT_EQ(failed, 3);
  EXPECT_EQ(a->outstanding(), 0u);
  EXPECT_EQ(model_->io_queue_count(), 2u);
  EXPECT_TRUE(write(*a, buf.data(), 0, 8).ok());
  EXPECT_TRUE(write(*b, buf.data(), 8, 8).ok());
}

TEST_F(ModelTest, DeletingAQueueAbortsWhatIsStalledOnIt) {
  start();
  auto q = queue();
  q->set_timeout_ms(0);
  model_->inject({q->id(), spec::kIoRead, 1, 0, /*stall=*/true});
  env::DmaBuffer buf(4096);
  iovec v = {buf.data(), 4096};
  ASSERT_EQ(q->read(1, &v, 1, 0, 8, nullptr, nullptr), Errc::ok);
  q->poll();
  EXPECT_EQ(model_->stalled(), 1u);
  q.reset();  // Delete SQ completes it as aborted, then Delete CQ
  EXPECT_EQ(model_->stalled(), 0u);
  EXPECT_EQ(model_->io_queue_count(), 0u);
  EXPECT_EQ(model_->counters().error_completions, 1u);
}

TEST_F(ModelTest, QueuePairsOnSeveralThreads) {
  start();
  constexpr int kThreads = 3;
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto q = ctrl_->create_io_queue(32);
      if (!q.ok()) {
        ++bad;
        return;
      }
      env::DmaBuffer out(4096), in(4096);
      for (int i = 0; i < 50; ++i) {
        const uint64_t lba = (t * 1000 + i) * 8;
        fill_pattern(out.data(), 4096, lba);
        iovec vo = {out.data(), 4096}, vi = {in.data(), 4096};
        Waiter w1, w2;
        if ((*q)->write(1, &vo, 1, lba, 8, Waiter::cb, &w1) != Errc::ok) ++bad;
        if (!poll_until(**q, [&] { return w1.done; }) || !w1.c.ok()) ++bad;
        if ((*q)->read(1, &vi, 1, lba, 8, Waiter::cb, &w2) != Errc::ok) ++bad;
        if (!poll_until(**q, [&] { return w2.done; }) || !w2.c.ok()) ++bad;
        if (std::memcmp(out.data(), in.data(), 4096) != 0) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(model_->io_queue_count(), 0u);
}

}  // namespace
}  // namespace sluice::nvme::testing
