// Shared by the NVMe driver tests: a software controller model and a driver attached to it,
// completion waiters, bounded polling and patterned DMA buffers.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "env/env.h"
#include "nvme/nvme.h"
#include "nvme/testing/controller_model.h"

namespace sluice::nvme::testing {

struct Waiter {
  bool done = false;
  Completion c;
  static void cb(void* arg, const Completion& c) {
    auto* w = static_cast<Waiter*>(arg);
    w->done = true;
    w->c = c;
  }
};

// Polls `q` until `cond` holds or `timeout_ms` passes; false on timeout.
template <typename Cond>
bool poll_until(IoQueue& q, Cond cond, uint64_t timeout_ms = 10000) {
  const uint64_t deadline = clock::now_ns() + timeout_ms * 1000000;
  while (!cond()) {
    q.poll();
    if (clock::now_ns() > deadline) return false;
  }
  return true;
}

inline void fill_pattern(void* p, size_t n, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  auto* b = static_cast<uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    b[i] = static_cast<uint8_t>(x);
  }
}

inline bool all_zero(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i)
    if (b[i] != 0) return false;
  return true;
}

class ModelTest : public ::testing::Test {
 protected:
  void start(ModelOptions mo = {}, ControllerOptions co = {}) {
    model_ = std::make_shared<ControllerModel>(std::move(mo));
    auto c = Controller::attach(model_->make_device(), co);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    ctrl_ = std::move(c.value());
  }
  std::unique_ptr<IoQueue> queue(uint32_t entries = 0) {
    auto q = ctrl_->create_io_queue(entries);
    EXPECT_TRUE(q.ok()) << q.status().to_string();
    return q.ok() ? std::move(q.value()) : nullptr;
  }
  // Submits one command through `submit` (returning Errc) and waits for its completion.
  template <typename Submit>
  Completion run(IoQueue& q, Submit submit) {
    Waiter w;
    Errc e = submit(&w);
    EXPECT_EQ(e, Errc::ok);
    if (e != Errc::ok) return {};
    EXPECT_TRUE(poll_until(q, [&] { return w.done; }));
    return w.c;
  }
  Completion write(IoQueue& q, const void* buf, uint64_t lba, uint32_t nlb, uint32_t bs = 512) {
    iovec v = {const_cast<void*>(buf), size_t{nlb} * bs};
    return run(q, [&](Waiter* w) { return q.write(1, &v, 1, lba, nlb, Waiter::cb, w); });
  }
  Completion read(IoQueue& q, void* buf, uint64_t lba, uint32_t nlb, uint32_t bs = 512) {
    iovec v = {buf, size_t{nlb} * bs};
    return run(q, [&](Waiter* w) { return q.read(1, &v, 1, lba, nlb, Waiter::cb, w); });
  }
  void TearDown() override {
    ctrl_.reset();
    if (model_) {
      EXPECT_EQ(model_->violations(), 0u) << model_->last_violation();
    }
  }

  std::shared_ptr<ControllerModel> model_;
  std::shared_ptr<Controller> ctrl_;
};

}  // namespace sluice::nvme::testing
