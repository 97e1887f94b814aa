// One NVMe/TCP connection, sending: R2Ts for write data, and for each finished command its
// C2HData (read data, straight from the command's buffer) and CapsuleResp. A slot returns to
// the pool when its CapsuleResp is out (or dropped with a closed connection).
#include <algorithm>

#include "base/log.h"
#include "env/env.h"
#include "target/nvmf_tcp/connection.h"

namespace sluice::nvmf::tcp::detail {

namespace sp = nvme::spec;
using nvme::tcp::Role;

bool Conn::ensure_buffer(Slot* s, size_t len) {
  if (s->buf_cap >= len) {
    s->req.data = s->buf;
    return true;
  }
  env::dma_free(s->buf);
  s->buf = env::dma_alloc(len);
  s->buf_cap = s->buf ? len : 0;
  s->req.data = s->buf;
  return s->buf != nullptr;
}

void Conn::execute(Slot* s) {
  s->executing = true;
  qp_->execute(&s->req);  // on_done may run inside
}

void Conn::on_done(Request* req) {
  auto* s = static_cast<Slot*>(req->ctx);
  s->conn->command_done(s);
}

void Conn::command_done(Slot* s) {
  s->executing = false;
  if (closing_) {
    release(s);
    maybe_die();
    return;
  }
  send_response(s);
}

void Conn::send_r2t(Slot* s) {
  nvme::tcp::R2t r;
  r.cccid = s->req.sqe.cid;
  r.ttag = s->tag;
  r.r2to = 0;
  r.r2tl = s->req.length;  // the host splits it into H2CData PDUs of at most MAXH2CDATA
  s->data_send.iov[0] = {s->data_hdr, nvme::tcp::build_r2t(s->data_hdr, tx_, r)};
  s->data_send.iovcnt = 1;
  conn_.send(&s->data_send);
}

void Conn::fail_command(Slot* s, uint16_t status) {
  s->req.cqe = {};
  s->req.cqe.status = status;
  s->xfer = Xfer::none;  // no data goes back
  send_response(s);
}

void Conn::send_response(Slot* s) {
  sp::Cqe cqe = s->req.cqe;
  cqe.cid = s->req.sqe.cid;
  cqe.sqid = qp_ ? qp_->qid() : 0;
  // SQHD only counts: a slot waits for every entry of the host's queue (a host beyond it
  // meets back-pressure, not a full queue), so the host never has to wait on it.
  cqe.sqhd = ++sqhd_;
  s->status_in_data = false;
  if (s->xfer == Xfer::controller_to_host && sp::status_sc(cqe.status) == sp::kScSuccess &&
      sp::status_sct(cqe.status) == sp::kSctGeneric && s->req.length > 0) {
    nvme::tcp::DataHeader h;
    h.cccid = s->req.sqe.cid;
    h.datao = 0;
    h.datal = s->req.length;
    h.last = true;
    // A host that disabled SQ flow control needs no SQHD, so a plain success can ride on the
    // data: one PDU (and one receive on the host) per read instead of two.
    s->status_in_data = qp_->sq_flow_control_disabled() && cqe.dw0 == 0 && cqe.dw1 == 0;
    h.success = s->status_in_data;
    net::SendItem& d = s->data_send;
    d.iov[0] = {s->data_hdr, nvme::tcp::build_data(s->data_hdr, Role::controller, tx_, h)};
    d.iov[1] = {s->buf, s->req.length};
    d.iovcnt = 2;
    if (tx_.data_digest) {
      nvme::tcp::put_digest(s->ddgst, nvme::tcp::data_digest({static_cast<const uint8_t*>(s->buf), s->req.length}));
      d.iov[2] = {s->ddgst, sizeof(s->ddgst)};
      d.iovcnt = 3;
    }
    conn_.send(&d);  // a closed connection hands it straight back: response_sent
    if (s->status_in_data) return;
  }
  net::SendItem& r = s->resp_send;
  r.iov[0] = {s->resp_hdr, nvme::tcp::build_capsule_resp(s->resp_hdr, tx_, cqe)};
  r.iovcnt = 1;
  conn_.send(&r);  // a closed connection hands it straight back: response_sent
}

void Conn::response_sent(Slot* s) {
  release(s);
  if (closing_) {
    maybe_die();
    return;
  }
  if (qp_->disconnected() && busy_ == 0) {
    close(nullptr);  // a Disconnect, or the association ended: the last response is out
    return;
  }
  if (!conn_.reading() && !terminating_) resume();
}

void Conn::release(Slot* s) {
  if (!s->busy) return;
  s->busy = false;
  s->executing = false;
  s->status_in_data = false;  // data_send carries this slot's next R2T too
  if (s->buf_cap > kKeepBufferBytes) {
    env::dma_free(s->buf);
    s->buf = nullptr;
    s->buf_cap = 0;
  }
  s->req.data = nullptr;
  s->next_free = free_;
  free_ = s;
  --busy_;
}

void Conn::send_term_req(const nvme::tcp::PduError& e, std::span<const uint8_t> header) {
  term_send_.iov[0] = {term_buf_, nvme::tcp::build_term_req(term_buf_, Role::controller, e.fes, e.fei, header)};
  term_send_.iovcnt = 1;
  term_send_.arg = this;
  term_send_.done = [](void* arg, bool) {
    auto* c = static_cast<Conn*>(arg);
    --c->sends_;
    c->close("protocol error: termination request sent");
    c->maybe_die();
  };
  ++sends_;
  conn_.send(&term_send_);
}

}  // namespace sluice::nvmf::tcp::detail
