// SCSI commands in the full feature phase (RFC 7143 sections 10 and 11.2-11.8): a command
// PDU becomes a scsi::Task over one DMA buffer of its expected data transfer length; write
// data fills it from immediate data, unsolicited Data-Out (InitialR2T=No, up to
// FirstBurstLength) and then one R2T at a time (MaxOutstandingR2T=1) of at most
// MaxBurstLength; read data goes back from the same buffer in Data-In PDUs of at most the
// initiator's MaxRecvDataSegmentLength, the status in the last one unless there is sense.
#include <algorithm>
#include <cstring>

#include "base/log.h"
#include "env/env.h"
#include "target/iscsi/connection.h"

namespace sluice::iscsi::detail {
namespace {

// The largest expected data transfer length a command may announce (its buffer is pinned).
constexpr uint32_t kMaxTransfer = 16u << 20;

// RFC 7143 11.7.5: Data-Out PDUs are numbered from 0 within each sequence (the unsolicited
// one, then one per R2T). A gap, a repeat or a reordering means a PDU was lost (7.1.4.2); at
// ErrorRecoveryLevel 0 the target takes the rest of the data and then ends the task with
// CHECK CONDITION, PROTOCOL SERVICE CRC ERROR (7.8.2 b), keeping the connection. Until then
// the command's data_sn holds kBrokenSequence (no sequence is 2^32 PDUs long).
constexpr uint32_t kBrokenSequence = 0xffffffff;

void check_data_sn(Command& c, const DataOut& d) {
  if (c.data_sn == kBrokenSequence) return;
  c.data_sn = d.data_sn == c.data_sn ? c.data_sn + 1 : kBrokenSequence;
}

// ABORTED COMMAND, PROTOCOL SERVICE CRC ERROR (47h/05h), fixed format.
void fail_data_sequence(scsi::Task& t) {
  t.status = scsi::kStatusCheckCondition;
  t.sense.fill(0);
  t.sense[0] = 0x70;
  t.sense[2] = 0x0b;
  t.sense[7] = 10;
  t.sense[12] = 0x47;
  t.sense[13] = 0x05;
  t.sense_length = 18;
  t.transferred = 0;
}

}  // namespace

Command* Connection::find_command(uint32_t itt) {
  auto it = commands_.find(itt);
  return it == commands_.end() ? nullptr : it->second;
}

// The command's PDU is decoded (its immediate data, if any, is still due).
bool Connection::begin_command(const Pdu& pdu) {
  const auto& req = std::get<ScsiCommand>(pdu.header);
  cur_ = nullptr;
  if (device_ == nullptr) {  // a Discovery session carries no SCSI commands
    close("SCSI command in a discovery session");
    return false;
  }
  if (!accept_cmd_sn(req.immediate, req.cmd_sn) || find_command(req.itt) != nullptr) {
    if (pdu.data_length > 0) reader_.discard_data();
    return true;
  }
  if (req.expected_data_length > kMaxTransfer || (pdu.data_length > 0 && !req.write) ||
      pdu.data_length > req.expected_data_length || (pdu.data_length > 0 && !params_.immediate_data) ||
      pdu.data_length > params_.first_burst_length || (!req.final && params_.initial_r2t) ||
      (!req.final && !req.write)) {
    close("SCSI command with an invalid data length or unsolicited data");
    return false;
  }
  auto* c = new Command();
  c->conn = this;
  c->itt = req.itt;
  c->lun = req.lun;
  c->read = req.read;
  c->write = req.write;
  c->edtl = req.expected_data_length;
  c->unsolicited_done = req.final;
  if (c->edtl > 0) {
    c->buf = static_cast<uint8_t*>(env::dma_alloc(c->edtl));
    if (c->buf == nullptr) {
      delete c;
      close("out of DMA memory");
      return false;
    }
  }
  scsi::Task& t = c->task;
  std::memcpy(t.cdb.data(), req.cdb, kCdbSize);
  if (pdu.ahs.extended_cdb_length > 0) {
    const size_t extra = std::min<size_t>(pdu.ahs.extended_cdb_length, scsi::kMaxCdbLength - kCdbSize);
    std::memcpy(t.cdb.data() + kCdbSize, pdu.ahs.extended_cdb, extra);
    t.cdb_length = uint8_t(kCdbSize + extra);
  }
  t.lun = lun_to_index(req.lun).value_or(scsi::kMaxLun + 1);
  t.nexus = nexus_;
  t.direction = req.write  ? scsi::DataDirection::write
                : req.read ? scsi::DataDirection::read
                           : scsi::DataDirection::none;
  c->iov = {c->buf, c->edtl};
  t.iov = c->edtl > 0 ? &c->iov : nullptr;
  t.iovcnt = c->edtl > 0 ? 1 : 0;
  t.expected_length = c->edtl;
  t.done = task_done;
  t.ctx = c;
  commands_[c->itt] = c;
  cur_ = c;
  if (pdu.data_length > 0) reader_.set_data_buffer({c->buf, pdu.data_length});
  return true;
}

// The whole command PDU is in.
bool Connection::command_ready() {
  const Pdu& pdu = reader_.pdu();
  if (pdu.data_length == 0 && !begin_command(pdu)) return false;
  Command* c = cur_;
  cur_ = nullptr;
  if (c == nullptr) return true;  // dropped
  c->received = pdu.data_length;
  advance(c);
  return true;
}

bool Connection::data_out_buffer(const Pdu& pdu) {
  const auto& d = std::get<DataOut>(pdu.header);
  Command* c = find_command(d.itt);
  cur_ = nullptr;
  if (c == nullptr || c->executing || !c->write) {
    reader_.discard_data();  // a late Data-Out for an aborted task, or junk: answered in data_out_done
    return true;
  }
  const uint64_t end = uint64_t(d.buffer_offset) + pdu.data_length;
  bool ok;
  if (d.ttt == kReservedTag)
    ok = !c->unsolicited_done && end <= std::min(c->edtl, params_.first_burst_length);
  else
    ok = d.ttt == c->ttt && d.buffer_offset >= c->r2t_offset && end <= uint64_t(c->r2t_offset) + c->r2t_length;
  if (!ok) {
    close("Data-Out outside what the target asked for");
    return false;
  }
  check_data_sn(*c, d);
  cur_ = c;
  reader_.set_data_buffer({c->buf + d.buffer_offset, pdu.data_length});
  return true;
}

bool Connection::data_out_done(const Pdu& pdu) {
  const auto& d = std::get<DataOut>(pdu.header);
  Command* c = cur_;
  cur_ = nullptr;
  if (c == nullptr) {
    if (pdu.data_length == 0) {
      Command* known = find_command(d.itt);
      if (known != nullptr && !known->executing && known->write) {
        c = known;  // an empty Data-Out that only ends a sequence
        check_data_sn(*c, d);
      }
    }
    if (c == nullptr) {
      if (find_command(d.itt) == nullptr) send_reject(RejectReason::invalid_pdu_field, reader_.bhs());
      return true;
    }
  }
  if (d.ttt == kReservedTag) {
    c->received += pdu.data_length;
    if (d.final) c->unsolicited_done = true;
  } else {
    c->r2t_received += pdu.data_length;
    if (d.final) {
      if (c->r2t_received != c->r2t_length) {
        close("an R2T's Data-Out sequence ended short");
        return false;
      }
      c->received = c->r2t_offset + c->r2t_length;
      c->ttt = kReservedTag;
    }
  }
  if (d.final) advance(c);
  return true;
}

// Asks for the next burst, or runs the command once its data is in.
void Connection::advance(Command* c) {
  if (!c->unsolicited_done || c->ttt != kReservedTag) return;
  if (!c->write || c->received >= c->edtl) return execute(c);
  R2t r;
  r.lun = c->lun;
  r.itt = c->itt;
  r.ttt = c->ttt = next_ttt_++;
  if (c->ttt == kReservedTag) r.ttt = c->ttt = next_ttt_++;
  r.stat_sn = stat_sn_;  // an R2T does not advance StatSN
  r.exp_cmd_sn = exp_cmd_sn_;
  r.max_cmd_sn = max_cmd_sn();
  r.r2t_sn = c->r2t_sn++;
  if (c->data_sn != kBrokenSequence) c->data_sn = 0;  // the R2T's Data-Out sequence
  r.buffer_offset = c->r2t_offset = c->received;
  r.desired_length = c->r2t_length = std::min(c->edtl - c->received, params_.max_burst_length);
  c->r2t_received = 0;
  send_pdu(r, {});
}

void Connection::execute(Command* c) {
  if (c->data_sn == kBrokenSequence) {  // all its data is in: answer without running it
    fail_data_sequence(c->task);
    respond(c);
    return finish(c);
  }
  c->data_sn = 0;  // counted Data-Out until now; from here the Data-In sent
  c->executing = true;
  ++executing_;
  channel_->execute(&c->task);
}

void Connection::task_done(scsi::Task* t) {
  auto* c = static_cast<Command*>(t->ctx);
  Connection* self = c->conn;
  c->executing = false;
  --self->executing_;
  if (!self->closing_ && !c->aborted) self->respond(c);
  if (c->tmf != nullptr) self->tmf_task_ended(c);
  self->finish(c);
  self->maybe_die();
}

void Connection::respond(Command* c) {
  const scsi::Task& t = c->task;
  const uint32_t in_len = c->read ? std::min(t.transferred, c->edtl) : 0;
  const bool status_in_data = t.sense_length == 0 && in_len > 0;
  const uint32_t seg = params_.initiator_max_recv_data_segment_length;
  for (uint32_t off = 0; off < in_len;) {
    const uint32_t n = std::min(seg, in_len - off);
    const bool last = off + n == in_len;
    DataIn d;
    d.lun = c->lun;
    d.itt = c->itt;
    d.data_sn = c->data_sn++;
    d.buffer_offset = off;
    // Each burst of MaxBurstLength ends a sequence (F); the last PDU ends the last one.
    d.final = last || (off + n) % params_.max_burst_length == 0;
    d.exp_cmd_sn = exp_cmd_sn_;
    d.max_cmd_sn = max_cmd_sn();
    if (last && status_in_data) {
      d.final = true;
      d.has_status = true;
      d.status = t.status;
      d.underflow = t.residual_kind == scsi::Residual::underflow;
      d.overflow = t.residual_kind == scsi::Residual::overflow;
      d.residual = t.residual_kind == scsi::Residual::none ? 0 : t.residual;
      d.stat_sn = next_stat_sn();
    }
    send_pdu(d, {c->buf + off, n}, c);
    off += n;
  }
  if (!status_in_data) scsi_response(c);
}

void Connection::scsi_response(Command* c) {
  const scsi::Task& t = c->task;
  ScsiResponse r;
  r.itt = c->itt;
  r.status = t.status;
  r.underflow = t.residual_kind == scsi::Residual::underflow;
  r.overflow = t.residual_kind == scsi::Residual::overflow;
  r.residual = t.residual_kind == scsi::Residual::none ? 0 : t.residual;
  r.stat_sn = next_stat_sn();
  r.exp_cmd_sn = exp_cmd_sn_;
  r.max_cmd_sn = max_cmd_sn();
  r.exp_data_sn = c->read ? c->data_sn : c->r2t_sn;
  std::vector<uint8_t> sense;
  if (t.sense_length > 0) {  // SenseLength, then the sense data (RFC 7143 11.4.7.2)
    sense.push_back(0);
    sense.push_back(t.sense_length);
    sense.insert(sense.end(), t.sense.begin(), t.sense.begin() + t.sense_length);
  }
  send_pdu(r, sense);
}

// The command leaves the task table; it is freed once no queued PDU holds its buffer.
void Connection::finish(Command* c) {
  if (c->finished) return;
  c->finished = true;
  commands_.erase(c->itt);
  if (cur_ == c) cur_ = nullptr;
  if (c->sends == 0 && !c->executing) free_command(c);
}

void Connection::free_command(Command* c) {
  env::dma_free(c->buf);
  delete c;
}

}  // namespace sluice::iscsi::detail
