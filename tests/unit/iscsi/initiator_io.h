// SCSI commands through the test initiator: immediate data, unsolicited Data-Out up to
// FirstBurstLength, Data-Out for each R2T, Data-In reassembled at its buffer offsets.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "initiator.h"

namespace sluice::iscsi::testing {

struct CommandResult {
  bool ok = false;  // a status came back
  uint8_t status = 0xff;
  std::vector<uint8_t> data;  // data-in, at buffer offsets
  std::vector<uint8_t> sense;
  bool underflow = false, overflow = false;
  uint32_t residual = 0;
  int data_ins = 0, r2ts = 0;
  bool status_in_data_in = false;
};

// One sequence of Data-Out PDUs for [off, off + len) of `data`.
inline bool data_out(Initiator& i, const std::vector<uint8_t>& data, const ScsiCommand& c, uint32_t ttt, uint32_t off,
                     uint32_t len) {
  const uint32_t seg = i.number("MaxRecvDataSegmentLength", 8192);
  uint32_t sn = 0;
  for (uint32_t done = 0; done < len;) {
    const uint32_t n = std::min(seg, len - done);
    DataOut d;
    d.itt = c.itt;
    d.lun = c.lun;
    d.ttt = ttt;
    d.exp_stat_sn = i.exp_stat_sn();
    d.data_sn = sn++;
    d.buffer_offset = off + done;
    d.final = done + n == len;
    if (!i.send(d, std::span<const uint8_t>(data.data() + off + done, n))) return false;
    done += n;
  }
  return true;
}

// One SCSI command to completion.
inline CommandResult run_command(Initiator& i, const uint8_t* cdb, uint32_t edtl, const std::vector<uint8_t>* write,
                                 uint64_t lun = 0) {
  CommandResult res;
  const uint32_t target_mrdsl = i.number("MaxRecvDataSegmentLength", 8192);
  const bool initial_r2t = i.yes("InitialR2T", true), immediate = i.yes("ImmediateData", true);
  const uint32_t fb = i.number("FirstBurstLength", 65536);
  ScsiCommand c;
  c.itt = i.next_itt();
  c.lun = lun;
  c.cmd_sn = i.take_cmd_sn();
  c.exp_stat_sn = i.exp_stat_sn();
  c.expected_data_length = edtl;
  c.read = write == nullptr && edtl > 0;
  c.write = write != nullptr;
  std::memcpy(c.cdb, cdb, kCdbSize);
  uint32_t imm = 0, unsol_end = 0;
  if (write != nullptr) {
    imm = immediate ? std::min({fb, edtl, target_mrdsl}) : 0;
    unsol_end = initial_r2t ? imm : std::min(fb, edtl);
    c.final = unsol_end == imm;
  }
  if (!i.send(c, write ? std::span<const uint8_t>(write->data(), imm) : std::span<const uint8_t>())) return res;
  if (write != nullptr && unsol_end > imm && !data_out(i, *write, c, kReservedTag, imm, unsol_end - imm)) return res;
  if (c.read) res.data.resize(edtl);
  while (true) {
    auto r = i.recv();
    if (!r) return res;
    if (auto* d = std::get_if<DataIn>(&r->pdu.header)) {
      ++res.data_ins;
      if (d->buffer_offset + r->data.size() > res.data.size()) return res;
      std::copy(r->data.begin(), r->data.end(), res.data.begin() + d->buffer_offset);
      if (d->has_status) {
        i.set_exp_stat_sn(d->stat_sn + 1);
        res.ok = res.status_in_data_in = true;
        res.status = d->status;
        res.underflow = d->underflow;
        res.overflow = d->overflow;
        res.residual = d->residual;
        return res;
      }
    } else if (auto* t = std::get_if<R2t>(&r->pdu.header)) {
      ++res.r2ts;
      if (write == nullptr || !data_out(i, *write, c, t->ttt, t->buffer_offset, t->desired_length)) return res;
    } else if (auto* s = std::get_if<ScsiResponse>(&r->pdu.header)) {
      res.ok = true;
      res.status = s->status;
      res.underflow = s->underflow;
      res.overflow = s->overflow;
      res.residual = s->residual;
      if (r->data.size() >= 2) res.sense.assign(r->data.begin() + 2, r->data.end());
      return res;
    } else {
      return res;
    }
  }
}

}  // namespace sluice::iscsi::testing
