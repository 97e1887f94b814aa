// The SCSI layer's tests: a Device over a malloc bdev with LUN 0, two nexuses (initiators A
// and B), and a Channel on the test thread, which polls its bdev channels while it waits.
// Cmd is one task with its DMA buffer. Every wait is bounded.
#pragma once

#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "bdev/bdev.h"
#include "bdev_handle.h"
#include "env/env.h"
#include "target/scsi/cdb.h"
#include "target/scsi/scsi.h"
#include "target/scsi/sense.h"
#include "thread/io_channel.h"

namespace sluice::scsi::testing {

inline constexpr uint32_t kBlockSize = 512;
inline constexpr uint64_t kBlocks = (16u << 20) / kBlockSize;

struct Cmd {
  Task task;
  env::DmaBuffer buf;
  iovec iov{};
  bool done = false;

  Cmd(std::initializer_list<uint8_t> cdb, size_t bytes, DataDirection dir = DataDirection::read) {
    std::copy(cdb.begin(), cdb.end(), task.cdb.begin());
    task.cdb_length = static_cast<uint8_t>(cdb.size());
    task.direction = dir;
    if (bytes > 0) {
      buf = env::DmaBuffer::zeroed(bytes);
      iov = {buf.data(), bytes};
      task.iov = &iov;
      task.iovcnt = 1;
      task.expected_length = static_cast<uint32_t>(bytes);
    }
    task.ctx = this;
    task.done = [](Task* t) { static_cast<Cmd*>(t->ctx)->done = true; };
  }
  uint8_t* data() { return static_cast<uint8_t*>(buf.data()); }
  uint8_t operator[](size_t i) { return data()[i]; }
  uint8_t sense_key() const { return (task.sense[0] & 0x7f) >= 0x72 ? task.sense[1] & 0xf : task.sense[2] & 0xf; }
  uint16_t asc() const {
    return (task.sense[0] & 0x7f) >= 0x72 ? uint16_t(task.sense[2] << 8 | task.sense[3])
                                          : uint16_t(task.sense[12] << 8 | task.sense[13]);
  }
};

// CDB builders.
inline std::vector<uint8_t> rw16(uint8_t opcode, uint64_t lba, uint32_t blocks, uint8_t flags = 0) {
  std::vector<uint8_t> c(16);
  c[0] = opcode;
  c[1] = flags;
  put64(&c[2], lba);
  put32(&c[10], blocks);
  return c;
}

class ScsiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bdev_ = sluice::testing::unique_name("scsimem");
    auto created = bdev::create("malloc:16M", bdev_);
    ASSERT_TRUE(created.ok()) << created.status().to_string();
    dev_ = std::make_unique<Device>(DeviceOptions{.name = "iqn.2026-12.io.sluice:disk0", .serial = "SL0001"});
    ASSERT_TRUE(dev_->add_lun(0, bdev_).ok());
    a_ = dev_->add_nexus("iqn.2026-12.io.sluice:host-a,i,0x23d000000001", 1);
    b_ = dev_->add_nexus("iqn.2026-12.io.sluice:host-b,i,0x23d000000002", 2);
    ch_ = std::make_unique<Channel>(*dev_);
  }
  void TearDown() override {
    ch_.reset();
    dev_.reset();
    EXPECT_TRUE(bdev::unregister(bdev_).ok());
  }

  void submit(Cmd& c, uint64_t nexus = 0, uint64_t lun = 0) {
    c.done = false;
    c.task.nexus = nexus == 0 ? a_ : nexus;
    c.task.lun = lun;
    ch_->execute(&c.task);
  }
  bool wait(Cmd& c) {
    const uint64_t deadline = clock::now_ns() + sluice::testing::kIoTimeoutMs * 1000000;
    while (!c.done && clock::now_ns() < deadline) thread::poll_thread_channels();
    return c.done;
  }
  // Runs the command to completion as nexus A (or `nexus`); returns its status.
  uint8_t exec(Cmd& c, uint64_t nexus = 0, uint64_t lun = 0) {
    submit(c, nexus, lun);
    EXPECT_TRUE(wait(c)) << "opcode " << int(c.task.cdb[0]) << " never completed";
    return c.task.status;
  }
  std::unique_ptr<Cmd> make(const std::vector<uint8_t>& cdb, size_t bytes, DataDirection dir = DataDirection::read) {
    auto c = std::make_unique<Cmd>(std::initializer_list<uint8_t>{}, bytes, dir);
    std::copy(cdb.begin(), cdb.end(), c->task.cdb.begin());
    c->task.cdb_length = static_cast<uint8_t>(cdb.size());
    return c;
  }
  // Writes `data` at `lba` with WRITE(16); reads back with READ(16).
  void write(uint64_t lba, const std::vector<uint8_t>& data, uint8_t flags = 0) {
    auto c = make(rw16(op::kWrite16, lba, static_cast<uint32_t>(data.size() / kBlockSize), flags), data.size(),
                  DataDirection::write);
    std::memcpy(c->data(), data.data(), data.size());
    ASSERT_EQ(exec(*c), kStatusGood);
  }
  std::vector<uint8_t> read(uint64_t lba, uint32_t blocks) {
    auto c = make(rw16(op::kRead16, lba, blocks), size_t{blocks} * kBlockSize);
    EXPECT_EQ(exec(*c), kStatusGood);
    return std::vector<uint8_t>(c->data(), c->data() + size_t{blocks} * kBlockSize);
  }
  uint64_t flushes() const {
    return bdev::find(bdev_)->stats().by_type[static_cast<int>(bdev::IoType::flush)].ops.get();
  }

  std::string bdev_;
  std::unique_ptr<Device> dev_;
  std::unique_ptr<Channel> ch_;
  uint64_t a_ = 0;
  uint64_t b_ = 0;
};

inline std::vector<uint8_t> pattern(size_t bytes, uint32_t seed) {
  std::vector<uint8_t> v(bytes);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x = x * 1103515245u + 12345u;
    b = static_cast<uint8_t>(x >> 16);
  }
  return v;
}

}  // namespace sluice::scsi::testing
