// virtio-scsi requests taken apart (scsi_wire.h).
#include "target/vhost/scsi_wire.h"

#include <algorithm>
#include <cstring>

#include "target/vhost/chain_buffers.h"

namespace sluice::vhost {
namespace {

constexpr uint8_t kVariableLengthCdb = 0x7f;

uint32_t first_writable(const Segment* segs, uint32_t n) {
  uint32_t i = 0;
  while (i < n && !segs[i].writable) ++i;
  return i;
}

}  // namespace

int lun_field_target(const uint8_t* lun, uint32_t max_targets) {
  return lun[0] == 1 && lun[1] < max_targets ? lun[1] : -1;
}

uint64_t lun_field_lun(const uint8_t* lun) {
  uint8_t wire[8]{};  // bytes 2-3 hold the LUN; the rest must be zero
  std::memcpy(wire, lun + 2, 6);
  return scsi::lun_from_wire(wire);
}

ScsiCommand parse_command(const Segment* segs, uint32_t n, const Chain& chain, uint32_t max_targets, iovec* iov) {
  ScsiCommand c;
  if (chain.writable_bytes < kScsiResponseBytes) {
    c.verdict = ScsiCommand::Verdict::no_response;
    return c;
  }
  virtio_scsi_cmd_req req;
  if (!gather(segs, n, &req, kScsiRequestBytes)) return c;
  const uint64_t data_out = chain.readable_bytes - kScsiRequestBytes;
  const uint64_t data_in = chain.writable_bytes - kScsiResponseBytes;
  // Both ways at once is VIRTIO_SCSI_F_INOUT, not offered.
  if ((data_out != 0 && data_in != 0) || data_out + data_in > UINT32_MAX) return c;
  const int target = lun_field_target(req.lun, max_targets);
  if (target < 0) {
    c.verdict = ScsiCommand::Verdict::bad_target;
    return c;
  }
  // A variable-length CDB longer than cdb_size was cut short by the header.
  if (req.cdb[0] == kVariableLengthCdb && 8u + req.cdb[7] > sizeof req.cdb) return c;
  c.target = static_cast<uint32_t>(target);
  c.lun = lun_field_lun(req.lun);
  static_assert(sizeof req.cdb == scsi::kMaxCdbLength);
  std::memcpy(c.cdb.data(), req.cdb, sizeof req.cdb);
  const uint32_t w = first_writable(segs, n);
  if (data_out != 0) {
    c.direction = scsi::DataDirection::write;
    c.iovcnt = slice_iovecs(segs, w, kScsiRequestBytes, 0, iov);
  } else if (data_in != 0) {
    c.direction = scsi::DataDirection::read;
    c.iovcnt = slice_iovecs(segs + w, n - w, kScsiResponseBytes, 0, iov);
  }
  c.expected_length = static_cast<uint32_t>(data_out + data_in);
  c.verdict = ScsiCommand::Verdict::ok;
  return c;
}

ControlRequest parse_control(const Segment* segs, uint32_t n, uint32_t max_targets) {
  ControlRequest r;
  uint32_t type = 0;
  if (!gather(segs, n, &type, sizeof type)) return r;
  if (type == VIRTIO_SCSI_T_AN_QUERY || type == VIRTIO_SCSI_T_AN_SUBSCRIBE) {
    virtio_scsi_ctrl_an_req req;
    if (gather(segs, n, &req, sizeof req)) r.kind = ControlRequest::Kind::an;
    return r;
  }
  virtio_scsi_ctrl_tmf_req req;
  const Segment* resp = std::find_if(segs, segs + n, [](const Segment& s) { return s.writable && s.len > 0; });
  if (type != VIRTIO_SCSI_T_TMF || resp == segs + n || !gather(segs, n, &req, sizeof req)) return r;
  r.kind = ControlRequest::Kind::tmf;
  r.subtype = req.subtype;
  r.target = lun_field_target(req.lun, max_targets);
  r.lun = lun_field_lun(req.lun);
  r.response = resp->host;
  return r;
}

}  // namespace sluice::vhost
