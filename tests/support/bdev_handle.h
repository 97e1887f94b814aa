// A bdev opened with this thread's channel, for tests that drive a device directly; unique
// device names; and a bounded wait that polls a channel.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "bdev/bdev.h"
#include "bdev/channel.h"

namespace sluice::testing {

inline constexpr uint64_t kIoTimeoutMs = 10000;  // every synchronous test I/O is bounded

// "prefix0", "prefix1", ...: names no other test in the process has used.
inline std::string unique_name(const char* prefix) {
  static std::atomic<int> n{0};
  return std::string(prefix) + std::to_string(n.fetch_add(1));
}

struct BdevHandle {
  std::unique_ptr<bdev::BdevDesc> desc;
  bdev::BdevChannel* ch = nullptr;

  explicit BdevHandle(const std::string& name, bdev::OpenOptions opts = {}) {
    auto d = bdev::open(name, opts);
    EXPECT_TRUE(d.ok()) << d.status().to_string();
    if (!d.ok()) return;
    desc = std::move(d.value());
    auto c = desc->get_channel();
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    if (c.ok()) ch = c.value();
  }
  ~BdevHandle() { close(); }
  BdevHandle(const BdevHandle&) = delete;
  BdevHandle& operator=(const BdevHandle&) = delete;
  void close() {
    if (ch != nullptr) {
      EXPECT_TRUE(desc->put_channel(ch).ok());
    }
    ch = nullptr;
    desc.reset();
  }
  bdev::SyncIo io() { return bdev::SyncIo{*desc, ch, kIoTimeoutMs}; }
  uint32_t bs() const { return desc->geometry().block_size; }
};

// Polls `ch` until `cond` holds or `timeout_ms` passes; false on timeout.
template <typename Cond>
bool poll_until(bdev::BdevChannel* ch, Cond cond, uint64_t timeout_ms = kIoTimeoutMs) {
  const uint64_t deadline = clock::now_ns() + timeout_ms * 1000000;
  while (!cond()) {
    ch->poll();
    if (clock::now_ns() > deadline) return false;
  }
  return true;
}

}  // namespace sluice::testing
