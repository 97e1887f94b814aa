// One NVMe/TCP connection, receiving: bytes from the socket go through the PDU reader; each
// command capsule takes a slot from the connection's pool and goes to the queue pair once
// its data is in (in the capsule, or as H2CData after our R2T).
//
// Reading: small PDUs arrive in a staging buffer (one recv brings many); the data of a large
// PDU is received straight into the command's DMA buffer. With every slot taken the
// connection stops reading until a response has left (back-pressure).
//
// Teardown: close() shuts the socket and the queue pair (the association ends if this is
// the admin queue); commands still at the queue pair finish, their responses dropped, and the
// last one frees the connection from a message, so nothing of it is on the stack then.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "base/log.h"
#include "env/env.h"
#include "net/reactor_connections.h"
#include "target/nvmf_tcp/connection.h"
#include "thread/thread.h"

namespace sluice::nvmf::tcp::detail {

namespace sp = nvme::spec;
using nvme::tcp::PduReader;
using nvme::tcp::PduType;
using nvme::tcp::Role;
using nvme::tcp::Violation;

namespace {

using Conns = net::ReactorConnections<Conn>;

nvme::tcp::RxParams initial_params(const Shared& s) {
  nvme::tcp::RxParams p;
  p.maxh2cdata = s.options.max_h2c_data;
  p.max_capsule_data = s.target->options().in_capsule_data_bytes;
  p.max_plen = std::max(p.maxh2cdata, p.max_capsule_data) + 256;  // + header, digests, padding
  return p;
}

}  // namespace

Conn::Conn(std::shared_ptr<Shared> shared, std::string peer)
    : shared_(std::move(shared)), peer_(std::move(peer)), rx_(Role::controller, initial_params(*shared_)) {}

Conn::~Conn() {
  for (Slot& s : slots_) env::dma_free(s.buf);
  std::free(staging_);
}

void Conn::open(int fd) {
  staging_ = static_cast<uint8_t*>(std::malloc(kStagingBytes));
  qp_ = std::make_unique<QueuePair>(*shared_->target);
  qp_->on_closed_by_target([](void* arg) { static_cast<Conn*>(arg)->close("the association ended"); }, this);
  slots_.resize(shared_->target->options().max_queue_depth);
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    s.conn = this;
    s.tag = static_cast<uint16_t>(i);
    s.req.ctx = &s;
    s.req.done = on_done;
    s.resp_send.arg = &s;
    s.resp_send.done = [](void* arg, bool) { static_cast<Slot*>(arg)->conn->response_sent(static_cast<Slot*>(arg)); };
    s.data_send.arg = &s;
    // Usually the CapsuleResp that follows finishes the slot; a read whose status rode on its
    // data (SUCCESS) has none.
    s.data_send.done = [](void* arg, bool) {
      auto* slot = static_cast<Slot*>(arg);
      if (slot->status_in_data) slot->conn->response_sent(slot);
    };
    s.next_free = free_;
    free_ = &s;
  }
  if (staging_ == nullptr) {
    ::close(fd);
    die();
    return;
  }
  if (!conn_.open(fd, this).ok()) {
    die();
    return;
  }
}

void Conn::close(const char* why) {
  if (closing_) return;
  closing_ = true;
  if (why != nullptr && why[0] != '\0') log::info("nvmf-tcp: {}: closing: {}", peer_, why);
  conn_.close();  // hands every queued send back
  // Commands still waiting for their data never reached the queue pair.
  for (Slot& s : slots_)
    if (s.busy && !s.executing) release(&s);
  cur_ = nullptr;
  if (qp_) qp_->close();
  maybe_die();
}

void Conn::destroy() {
  qp_.reset();
  shared_->live.fetch_sub(1);
  delete this;
}

void Conn::on_readable() {
  for (int round = 0; round < kRecvRounds && !closing_ && conn_.reading(); ++round) {
    if (stage_off_ == stage_len_) stage_off_ = stage_len_ = 0;
    const std::span<uint8_t> window = rx_.data_window();
    if (stage_off_ == stage_len_ && window.size() >= kDirectRecvBytes && rx_.state() == PduReader::State::reading) {
      // A large PDU's data: straight into the command's buffer (the window ends with it).
      auto n = conn_.recv(window.data(), window.size());
      if (!n.ok() || *n == 0) return;
      rx_.data_received(*n);
      if (!process()) return;
      continue;
    }
    if (stage_off_ > 0) {
      std::memmove(staging_, staging_ + stage_off_, stage_len_ - stage_off_);
      stage_len_ -= stage_off_;
      stage_off_ = 0;
    }
    if (stage_len_ < kStagingBytes) {
      auto n = conn_.recv(staging_ + stage_len_, kStagingBytes - stage_len_);
      if (!n.ok() || *n == 0) return;
      stage_len_ += *n;
    }
    if (!process()) return;
  }
}

bool Conn::process() {
  if (in_process_) return true;
  in_process_ = true;
  const bool more = process_pdus();
  in_process_ = false;
  if (!more && !closing_) conn_.set_reading(false);  // blocked: resume() turns it back on
  return more;
}

bool Conn::process_pdus() {
  while (!closing_) {
    switch (rx_.state()) {
      case PduReader::State::reading:
        if (stage_off_ == stage_len_) return true;
        stage_off_ += rx_.feed({staging_ + stage_off_, stage_len_ - stage_off_});
        pdu_handled_ = false;
        break;
      case PduReader::State::need_buffer:
        if (!on_need_buffer()) return false;
        break;
      case PduReader::State::pdu_ready:
      case PduReader::State::data_digest_error:
        if (pdu_handled_) {
          if (stage_off_ == stage_len_) return true;
          stage_off_ += rx_.feed({staging_ + stage_off_, stage_len_ - stage_off_});
          pdu_handled_ = false;
          break;
        }
        if (!on_pdu()) return false;
        pdu_handled_ = true;
        break;
      case PduReader::State::failed: fatal(rx_.error()); return false;
    }
  }
  return false;
}

// A PDU with data: a capsule with in-capsule data takes its slot now, an H2CData goes into
// its command's buffer at DATAO.
bool Conn::on_need_buffer() {
  const nvme::tcp::Pdu& pdu = rx_.pdu();
  if (pdu.type == PduType::capsule_cmd) {
    if (!take_slot_for_capsule()) return false;  // blocked until a slot frees
    Slot* s = cur_;
    const uint8_t sgl_type = static_cast<uint8_t>(s->req.sqe.prp2 >> 56);
    // In-capsule data is described by a Data Block SGL with the Offset subtype (01h) whose
    // length is the data that came.
    if (s->req.length != pdu.data_length || s->xfer != Xfer::host_to_controller || sgl_type != 0x01) {
      fail_command(s, sp::make_status(sp::kSctGeneric, sp::kScDataSglLengthInvalid, true));
      cur_ = nullptr;
      rx_.discard_data();
      return true;
    }
    if (!ensure_buffer(s, pdu.data_length)) {
      fail_command(s, sp::make_status(sp::kSctGeneric, sp::kScInternalError));
      cur_ = nullptr;
      rx_.discard_data();
      return true;
    }
    rx_.set_data_buffer({static_cast<uint8_t*>(s->buf), pdu.data_length});
    return true;
  }
  // H2CData: its TTAG names the slot; DATAO must continue where the last one ended.
  const nvme::tcp::DataHeader& h = pdu.data;
  Slot* s = h.ttag < slots_.size() ? &slots_[h.ttag] : nullptr;
  if (s == nullptr || !s->busy || s->executing || s->xfer != Xfer::host_to_controller || s->req.sqe.cid != h.cccid ||
      h.datao != s->h2c_received || h.datal > s->req.length - s->h2c_received) {
    fatal(nvme::tcp::make_error(Violation::data_out_of_range));
    return false;
  }
  cur_ = s;
  rx_.set_data_buffer({static_cast<uint8_t*>(s->buf) + h.datao, h.datal});
  return true;
}

bool Conn::on_pdu() {
  const nvme::tcp::Pdu& pdu = rx_.pdu();
  const bool digest_error = rx_.state() == PduReader::State::data_digest_error;
  switch (pdu.type) {
    case PduType::ic_req: on_ic_req(); return !closing_;
    case PduType::capsule_cmd:
      if (pdu.data_length == 0) return on_capsule();
      if (cur_ != nullptr) {  // in-capsule data is in (or failed its digest)
        Slot* s = cur_;
        cur_ = nullptr;
        s->data_error = digest_error;
        s->h2c_received = pdu.data_length;
        on_h2c_done(s);
      }
      return true;
    case PduType::h2c_data: {
      Slot* s = cur_;
      cur_ = nullptr;
      if (s == nullptr) return true;
      s->data_error = s->data_error || digest_error;
      s->h2c_received += pdu.data_length;
      if (s->h2c_received == s->req.length) {
        on_h2c_done(s);
      } else if (pdu.data.last) {
        // LAST_PDU before all the data the R2T asked for.
        fatal(nvme::tcp::make_error(Violation::data_out_of_range));
        return false;
      }
      return true;
    }
    case PduType::h2c_term_req: close("the host sent a termination request"); return false;
    default:  // the reader lets through only what a controller receives
      return true;
  }
}

void Conn::on_ic_req() {
  const nvme::tcp::IcReq& req = rx_.pdu().ic_req;
  nvme::tcp::RxParams p = rx_.params();
  p.header_digest = (req.digest & nvme::tcp::kDigestHeader) != 0;
  p.data_digest = (req.digest & nvme::tcp::kDigestData) != 0;
  p.pda = 0;  // CPDA 0: H2C data may start right after the header
  rx_.set_params(p);
  tx_.header_digest = p.header_digest;
  tx_.data_digest = p.data_digest;
  tx_.pda = req.hpda;
  nvme::tcp::IcResp resp;
  resp.cpda = 0;
  resp.digest = req.digest & (nvme::tcp::kDigestHeader | nvme::tcp::kDigestData);
  resp.maxh2cdata = shared_->options.max_h2c_data;
  ic_send_.iov[0] = {ic_buf_, nvme::tcp::build_ic_resp(ic_buf_, resp)};
  ic_send_.iovcnt = 1;
  ic_send_.arg = this;
  ic_send_.done = [](void* arg, bool) {
    auto* c = static_cast<Conn*>(arg);
    --c->sends_;
    c->maybe_die();
  };
  ++sends_;
  ic_done_ = true;
  conn_.send(&ic_send_);
}

// Takes a slot for the capsule in rx_.pdu() into cur_ and reads its SGL. False: none free.
bool Conn::take_slot_for_capsule() {
  if (cur_ != nullptr) return true;  // taken on an earlier pass
  if (free_ == nullptr) return false;
  Slot* s = free_;
  free_ = s->next_free;
  ++busy_;
  s->busy = true;
  s->executing = false;
  s->data_error = false;
  s->h2c_received = 0;
  s->req.sqe = rx_.pdu().sqe;
  s->req.cqe = {};
  s->req.state = {};
  s->xfer = transfer_direction(s->req.sqe);
  // The SGL descriptor (SQE bytes 24-39): address, length, then the type in its last byte.
  s->req.length = s->xfer == Xfer::none ? 0 : static_cast<uint32_t>(s->req.sqe.prp2);
  s->req.data = nullptr;
  cur_ = s;
  return true;
}

bool Conn::on_capsule() {
  if (!take_slot_for_capsule()) return false;
  Slot* s = cur_;
  cur_ = nullptr;
  const uint8_t sgl_type = static_cast<uint8_t>(s->req.sqe.prp2 >> 56);
  const uint32_t max_io = shared_->target->options().max_io_bytes;
  if (s->req.length > std::max<uint32_t>(max_io, 8192) || s->xfer == Xfer::bidirectional) {
    fail_command(s, sp::make_status(sp::kSctGeneric, sp::kScDataSglLengthInvalid, true));
    return true;
  }
  if (s->req.length > 0 && !ensure_buffer(s, s->req.length)) {
    fail_command(s, sp::make_status(sp::kSctGeneric, sp::kScInternalError));
    return true;
  }
  if (s->xfer == Xfer::host_to_controller && s->req.length > 0) {
    // Data not in the capsule must be asked for: a Transport SGL Data Block (type 5, subtype
    // Ah) is what a host sends for that.
    if (sgl_type != 0x5a) {
      fail_command(s, sp::make_status(sp::kSctGeneric, sp::kScDataSglLengthInvalid, true));
      return true;
    }
    send_r2t(s);
    return true;
  }
  execute(s);
  return true;
}

void Conn::on_h2c_done(Slot* s) {
  if (s->data_error) {
    fail_command(s, sp::make_status(sp::kSctGeneric, sp::kScDataTransferError));
    return;
  }
  execute(s);
}

void Conn::fatal(const nvme::tcp::PduError& e) {
  if (closing_) return;
  log::info("nvmf-tcp: {}: {}", peer_, nvme::tcp::violation_name(e.what));
  if (e.fes != nvme::tcp::Fes::none && ic_done_) {
    terminating_ = true;
    conn_.set_reading(false);
    send_term_req(e, rx_.raw_header());  // closes once it is out
    return;
  }
  close("protocol error");
}

void Conn::resume() {
  if (closing_ || terminating_) return;
  conn_.set_reading(true);
  if (in_process_) return;
  if (!process()) conn_.set_reading(false);
}

void Conn::maybe_die() {
  if (!closing_ || dead_ || busy_ > 0 || sends_ > 0) return;
  if (qp_ && qp_->in_flight() > 0) return;
  die();
}

void Conn::die() {
  dead_ = true;
  closing_ = true;
  Conns::retire(this);
}

void close_connections(const Shared* shared) {
  for (Conn* c : Conns::snapshot())
    if (c->shared() == shared) c->close("the transport stopped");
}

void close_controller(const Target* target, const std::string& nqn, uint16_t cntlid) {
  for (Conn* c : Conns::snapshot())
    if (c->serves(target, nqn, cntlid)) c->close("keep-alive timeout");
}

void start_connection(std::shared_ptr<Shared> shared, int fd, const std::string& peer) {
  shared->live.fetch_add(1);
  auto* c = new Conn(std::move(shared), peer);
  Conns::add(c);
  c->open(fd);
}

}  // namespace sluice::nvmf::tcp::detail
