// Fuzz target: virtio-scsi's requests (src/target/vhost/scsi_wire.h) as the device meets a
// hostile guest: each chain the walker accepts is taken apart both as a command and as a
// control request, and answered the way the queues answer.
//
// Input: as vhost_chain_fuzz's (bytes 0-1 the ring size and EVENT_IDX, byte 2 the starting
// index, the rest the guest's memory with the rings at its start). Besides "never crash or
// hang" it checks:
//   - a command to run names a target slot below the limit, and its data iovecs lie inside
//     guest memory, go the way the chain's buffers do and add up to its expected length;
//   - a task management request's response byte lies inside guest memory;
//   - the response written back (virtio_scsi_cmd_resp, or the notification answer) lands in
//     the chain's device-writable buffers only (ASan checks the bounds).
#include <cstring>

#include "target/vhost/chain_buffers.h"
#include "target/vhost/scsi_wire.h"
#include "vhost_fuzz_ring.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::vhost;
  using sluice::fuzz::FuzzRing;
  constexpr const char* kName = "vhost_scsi_fuzz";
  constexpr uint32_t kMaxTargets = 8;
  FuzzRing ring;
  if (!ring.attach(kName, data, size)) return 0;
  SplitQueue& q = ring.queue;
  const uint16_t qsize = ring.size;
  const auto broken = [](const char* what) { FuzzRing::broken(kName, what); };
  Segment segs[128];
  iovec iov[128];
  uint16_t head;
  uint32_t popped = 0;
  while (q.pop(&head) && ++popped <= 4u * qsize) {
    Chain c;
    if (q.walk(head, segs, &c) != ChainError::none) {
      q.push_used(head, 0);
      continue;
    }
    uint32_t written = 0;
    const ScsiCommand cmd = parse_command(segs, c.segments, c, kMaxTargets, iov);
    if (cmd.verdict == ScsiCommand::Verdict::ok) {
      if (cmd.target >= kMaxTargets) broken("a command to a target beyond the limit");
      if (cmd.iovcnt < 0 || static_cast<uint32_t>(cmd.iovcnt) > c.segments) broken("more iovecs than segments");
      uint64_t total = 0;
      for (int i = 0; i < cmd.iovcnt; ++i) {
        if (!ring.inside(iov[i].iov_base, iov[i].iov_len)) broken("a data iovec outside guest memory");
        total += iov[i].iov_len;
        if (cmd.direction == sluice::scsi::DataDirection::read) std::memset(iov[i].iov_base, 0x5a, iov[i].iov_len);
      }
      if (total != cmd.expected_length) broken("the iovecs do not add up to the expected length");
      if ((cmd.direction == sluice::scsi::DataDirection::none) != (cmd.expected_length == 0))
        broken("a data direction without data, or data without one");
    }
    if (cmd.verdict != ScsiCommand::Verdict::no_response) {
      virtio_scsi_cmd_resp resp{};
      resp.response = VIRTIO_SCSI_S_FAILURE;
      if (!scatter(segs, c.segments, &resp, sizeof resp)) broken("no room for a response the parser promised");
      written = sizeof resp;
    }
    const ControlRequest ctl = parse_control(segs, c.segments, kMaxTargets);
    if (ctl.kind == ControlRequest::Kind::tmf) {
      if (!ring.inside(ctl.response, 1)) broken("a response byte outside guest memory");
      if (ctl.target >= static_cast<int>(kMaxTargets)) broken("a TMF to a target beyond the limit");
      *ctl.response = VIRTIO_SCSI_S_FUNCTION_REJECTED;
    } else if (ctl.kind == ControlRequest::Kind::an) {
      virtio_scsi_ctrl_an_resp resp{};
      (void)scatter(segs, c.segments, &resp, sizeof resp);
    }
    q.push_used(head, written);
  }
  (void)q.need_signal();
  q.publish_avail_event();
  return 0;
}
