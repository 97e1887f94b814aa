// Fuzz target: the SCSI layer (src/target/scsi) as a transport hands it an initiator's command:
// the CDB, the parameter or write data, and the expected transfer length all come from the
// input, and the task runs for real against a 1 MiB RAM disk on this thread.
//
// Input: byte 0: CDB length (low 5 bits, +1), which nexus sends it (bit 5), which LUN (bit 6);
// bytes 1-2: expected transfer length (little-endian, at most 64 KiB); then the CDB; the rest
// is data-out. Besides "never crash, leak or hang" it checks what a transport relies on:
//   - the task completes, exactly once, within a bounded number of polls;
//   - the status is one SAM defines; CHECK CONDITION comes with sense (fixed 70h/71h or
//     descriptor 72h/73h) that fits the sense buffer, and other statuses with none;
//   - no more data-in than expected_length, and never more than the buffers hold.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "bdev/bdev.h"
#include "env/env.h"
#include "target/scsi/scsi.h"
#include "thread/thread.h"

namespace sluice::fuzz {
namespace {

using namespace sluice::scsi;

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "scsi_cdb_fuzz: BROKEN PROMISE: %s\n", what);
  std::abort();
}

constexpr size_t kMaxData = 64 << 10;

struct World {
  std::string bdev = "scsi_fuzz_mem";
  std::unique_ptr<Device> dev;
  std::unique_ptr<Channel> ch;
  uint64_t nexus[2] = {};
  void* buf = nullptr;

  World() {
    if (!bdev::create("malloc:1M", bdev).ok()) broken("no malloc bdev");
    dev = std::make_unique<Device>(DeviceOptions{.name = "iqn.2026-12.io.sluice:fuzz", .serial = "FUZZ01"});
    if (!dev->add_lun(0, bdev).ok()) broken("add_lun");
    nexus[0] = dev->add_nexus("iqn.2026-12.io.sluice:a,i,0x23d000000001", 1);
    nexus[1] = dev->add_nexus("iqn.2026-12.io.sluice:b,i,0x23d000000002", 1);
    ch = std::make_unique<Channel>(*dev);
    buf = env::dma_alloc(kMaxData);
    if (buf == nullptr) broken("no DMA memory");
  }
};

World& world() {
  static World* w = new World();  // lives for the process: the fuzzer never tears down
  return *w;
}

bool good_status(uint8_t s) {
  return s == kStatusGood || s == kStatusCheckCondition || s == kStatusConditionMet || s == kStatusBusy ||
         s == kStatusReservationConflict || s == kStatusTaskSetFull || s == kStatusTaskAborted;
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::fuzz;
  if (size < 4) return 0;
  World& w = world();
  const size_t cdb_len = (data[0] & 0x1f) + 1;
  const int who = (data[0] >> 5) & 1;
  const uint64_t lun = (data[0] >> 6) & 1;  // LUN 1 does not exist: the layer must say so
  const size_t expected = std::min<size_t>(data[1] | size_t{data[2]} << 8, kMaxData);
  data += 3;
  size -= 3;
  if (size < cdb_len) return 0;

  Task task{};
  std::memcpy(task.cdb.data(), data, cdb_len);
  task.cdb_length = static_cast<uint8_t>(cdb_len);
  const size_t out = std::min(size - cdb_len, kMaxData);
  std::memset(w.buf, 0, kMaxData);
  std::memcpy(w.buf, data + cdb_len, out);
  // Data-out commands get the input's bytes; data-in ones a buffer of `expected` bytes.
  const bool writes = data_direction(task.cdb.data()) == DataDirection::write;
  iovec iov{w.buf, writes ? out : expected};
  task.iov = &iov;
  task.iovcnt = iov.iov_len != 0 ? 1 : 0;
  task.expected_length = static_cast<uint32_t>(writes ? out : expected);
  task.lun = lun;
  task.nexus = w.nexus[who];
  int completions = 0;
  task.ctx = &completions;
  task.done = [](Task* t) { ++*static_cast<int*>(t->ctx); };
  w.ch->execute(&task);
  for (int i = 0; i < 1000000 && completions == 0; ++i) sluice::thread::poll_thread_channels();
  if (completions != 1) broken("the task did not complete exactly once");
  if (!good_status(task.status)) broken("a status SAM does not define");
  if (task.status == kStatusCheckCondition) {
    if (task.sense_length < 8 || task.sense_length > kMaxSenseLength) broken("CHECK CONDITION without sense");
    const uint8_t code = task.sense[0] & 0x7f;
    if (code != 0x70 && code != 0x71 && code != 0x72 && code != 0x73) broken("sense of an unknown format");
  } else if (task.sense_length != 0) {
    broken("sense without CHECK CONDITION");
  }
  if (!writes && task.transferred > expected) broken("more data-in than expected_length");
  if (task.transferred > kMaxData) broken("more data than the buffer holds");
  return 0;
}
