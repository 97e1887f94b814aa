// virtio-scsi's requests as the guest lays them out (virtio 1.1, 5.6.6): a command's chain
// and a control request's chain taken apart, every byte of them the guest's (fuzzed by
// tests/fuzz/vhost_scsi_fuzz.cc).
#pragma once

#include <linux/virtio_scsi.h>
#include <sys/uio.h>

#include <array>
#include <cstdint>

#include "target/scsi/scsi.h"
#include "target/vhost/descriptor_chain.h"

namespace sluice::vhost {

inline constexpr uint32_t kScsiRequestBytes = sizeof(virtio_scsi_cmd_req);
inline constexpr uint32_t kScsiResponseBytes = sizeof(virtio_scsi_cmd_resp);

// A command: virtio_scsi_cmd_req, data-out buffers, virtio_scsi_cmd_resp, data-in buffers.
struct ScsiCommand {
  enum class Verdict : uint8_t {
    ok,           // run it
    no_response,  // no room for the response: return the chain with nothing written
    failure,      // answer VIRTIO_SCSI_S_FAILURE (a short header, data both ways, a CDB cut short)
    bad_target,   // answer VIRTIO_SCSI_S_BAD_TARGET (a LUN field that names no target slot)
  };
  Verdict verdict = Verdict::failure;
  uint32_t target = 0;  // the slot (below max_targets) when ok
  uint64_t lun = 0;     // as scsi::lun_from_wire decodes it
  std::array<uint8_t, scsi::kMaxCdbLength> cdb{};
  scsi::DataDirection direction = scsi::DataDirection::none;
  int iovcnt = 0;  // the data buffers, in the caller's iovec array
  uint32_t expected_length = 0;
};

// Takes apart a walked chain of `n` segments; `iov` must hold n entries. Targets at or above
// `max_targets` are bad targets.
ScsiCommand parse_command(const Segment* segs, uint32_t n, const Chain& chain, uint32_t max_targets, iovec* iov);

// A control queue request: task management (virtio_scsi_ctrl_tmf_req, a response byte) or an
// asynchronous notification query or subscription (virtio_scsi_ctrl_an_req, _resp).
struct ControlRequest {
  enum class Kind : uint8_t { malformed, tmf, an };
  Kind kind = Kind::malformed;
  uint32_t subtype = 0;  // tmf
  int target = -1;       // tmf: the slot, -1 if the LUN field names none below max_targets
  uint64_t lun = 0;      // tmf
  uint8_t* response = nullptr;  // tmf: the response byte, in guest memory
};

ControlRequest parse_control(const Segment* segs, uint32_t n, uint32_t max_targets);

// The LUN field's slot (byte 1, when byte 0 is 1) or -1; its LUN (bytes 2-3, SAM encoding).
int lun_field_target(const uint8_t* lun, uint32_t max_targets);
uint64_t lun_field_lun(const uint8_t* lun);

}  // namespace sluice::vhost
