// Fuzz target: the split virtqueue and its descriptor-chain walker (src/target/vhost/
// virtqueue.h, descriptor_chain.h) as a device meets a hostile guest.
//
// Input: bytes 0-1 are the ring size (a power of two, 1 to 256) and byte 2 the queue's
// starting index; the rest is the guest's memory (at most 64 KiB, one region at guest
// address 0x10000, rings at its start), so the descriptor table, the available ring and
// every buffer and indirect table are the fuzzer's. Each available head is walked and
// returned. Besides "never crash or hang" it checks:
//   - every segment the walker accepts lies inside guest memory, and none that the device
//     reads follows one it writes;
//   - a chain's byte counts are the sums of its segments;
//   - pop() never yields a head beyond the table.
#include <cstring>
#include <iterator>

#include "vhost_fuzz_ring.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::vhost;
  using sluice::fuzz::FuzzRing;
  constexpr const char* kName = "vhost_chain_fuzz";
  FuzzRing ring;
  if (!ring.attach(kName, data, size)) return 0;
  SplitQueue& q = ring.queue;
  const uint16_t qsize = ring.size;
  const auto broken = [](const char* what) { FuzzRing::broken(kName, what); };
  Segment segs[16];
  uint16_t head;
  uint32_t popped = 0;
  while (q.pop(&head)) {
    if (head >= qsize) broken("pop yielded a head beyond the table");
    // The device's writes land in guest memory, rings included, and may make more available.
    if (++popped > 4u * qsize) break;
    Chain c;
    const ChainError err = q.walk(head, segs, &c);
    if (c.segments > std::size(segs)) broken("more segments than the array holds");
    uint64_t readable = 0, writable = 0;
    bool seen_writable = false;
    for (uint32_t i = 0; i < c.segments; ++i) {
      const Segment& s = segs[i];
      if (!ring.inside(s.host, s.len)) broken("a segment outside guest memory");
      if (!s.writable && seen_writable) broken("a readable segment after a writable one");
      seen_writable = seen_writable || s.writable;
      (s.writable ? writable : readable) += s.len;
      // Touch every byte, as the device would (ASan checks the bounds too).
      if (s.len > 0) {
        volatile uint8_t sink = s.host[0];
        sink = s.host[s.len - 1];
        (void)sink;
        if (s.writable) std::memset(s.host, 0xab, s.len);
      }
    }
    if (err == ChainError::none && (readable != c.readable_bytes || writable != c.writable_bytes))
      broken("byte counts differ from the segments'");
    q.push_used(head, err == ChainError::none ? static_cast<uint32_t>(c.writable_bytes) : 0);
  }
  (void)q.need_signal();
  q.publish_avail_event();
  return 0;
}
