// One iSCSI connection's life: the receive loop feeding the PDU reader, the send queue, and
// teardown, on the reactor that owns its socket (the NBD session's pattern).
//
// Reading: bytes arrive in a staging buffer and are fed to the reader; while a Data-Out (or
// immediate data) is due for a command's buffer and the staging buffer is empty, recv goes
// straight into that buffer. Teardown: close() shuts the socket at once (queued sends come
// back, tasks waiting for data are freed); tasks at the SCSI layer finish, and the last one
// frees the connection from a message, so that nothing of it is on the stack when it goes.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "base/log.h"
#include "target/iscsi/connection.h"

namespace sluice::iscsi::detail {
namespace {

constexpr size_t kStagingBytes = 64 << 10;
constexpr int kRecvRounds = 16;  // bounds one readiness event's work
// An initiator that sends but does not read (NOP-Outs, READs) stops being read once this
// much is queued to it, and is read again below half of it.
constexpr size_t kMaxQueuedBytes = 32 << 20;
using Connections = net::ReactorConnections<Connection>;

RxParams login_rx() { return RxParams{}; }

// "192.0.2.1:3260" -> "192.0.2.1", "[::1]:3260" -> "::1".
std::string host_of(const std::string& peer) {
  if (!peer.empty() && peer[0] == '[') return peer.substr(1, peer.find(']') - 1);
  return peer.substr(0, peer.rfind(':'));
}

}  // namespace

Connection::Connection(std::shared_ptr<Target::State> state, std::string peer, uint16_t pg_tag, std::string portal)
    : state_(std::move(state)),
      peer_(std::move(peer)),
      reader_(Role::target, login_rx(), std::max<size_t>(state_->options.max_recv_data_segment_length, 8192)),
      pg_tag_(pg_tag),
      portal_(std::move(portal)),
      peer_address_(host_of(peer_)),
      queue_depth_(state_->options.default_queue_depth) {}

Connection::~Connection() { std::free(staging_); }

void Connection::open(int fd) {
  staging_ = static_cast<uint8_t*>(std::malloc(kStagingBytes));
  if (staging_ == nullptr) {
    ::close(fd);
    die();
    return;
  }
  if (!conn_.open(fd, this).ok()) {
    die();
    return;
  }
  // A login that stalls must not hold the connection: a timed poller closes it.
  auto p = thread::register_poller(
      [this] {
        // Unregistering frees this callable: nothing of it is touched after that.
        Connection* self = this;
        thread::Poller* timer = self->login_timer_;
        self->login_timer_ = nullptr;
        if (!self->full_feature_) self->close("login timed out");
        if (timer != nullptr) (void)thread::unregister_poller(timer);
        return thread::PollStatus::busy;
      },
      std::chrono::duration_cast<std::chrono::microseconds>(state_->options.login_timeout).count(), "iscsi_login");
  if (p.ok()) login_timer_ = p.value();
}

void Connection::close(const char* why) {
  if (closing_) return;
  closing_ = true;
  if (why != nullptr && why[0] != '\0') log::info("iscsi: {}: closing: {}", peer_, why);
  conn_.close();  // queued sends come back (ok=false): their commands can go
  cur_ = nullptr;
  std::vector<Command*> waiting;
  for (auto& [itt, c] : commands_)
    if (!c->executing) waiting.push_back(c);
  for (Command* c : waiting) finish(c);
  maybe_die();
}

void Connection::on_readable() {
  ++readable_calls_;  // bytes or an end: either way the initiator is not silent
  for (int round = 0; round < kRecvRounds && !closing_ && !draining_; ++round) {
    if (conn_.queued_bytes() > kMaxQueuedBytes) {
      paused_ = true;
      conn_.set_reading(false);
      return;
    }
    std::span<uint8_t> window = reader_.data_window();
    if (!window.empty() && window.size() >= 4096) {
      auto n = conn_.recv(window.data(), window.size());
      if (!n.ok() || *n == 0) return;
      reader_.data_received(*n);
      if (!process({})) return;
      continue;
    }
    auto n = conn_.recv(staging_, kStagingBytes);
    if (!n.ok() || *n == 0) return;
    if (!process(std::span<const uint8_t>(staging_, *n))) return;
  }
}

// Feeds `in` whole (an empty span only settles the state after a direct recv).
bool Connection::process(std::span<const uint8_t> in) {
  while (true) {
    if (!in.empty()) in = in.subspan(reader_.feed(in));
    const PduReader::State st = reader_.state();
    bool ok = true;
    switch (st) {
      case PduReader::State::reading: return true;  // `in` is used up
      case PduReader::State::need_buffer: ok = buffer_needed(); break;
      case PduReader::State::pdu_ready: ok = pdu_ready(); break;
      case PduReader::State::rejected:
        log::info("iscsi: {}: rejected {}: {}", peer_, opcode_name(reader_.bhs()[0] & 0x3f), reader_.error().message);
        if (!full_feature_) {
          close("bad PDU during login");
          return false;
        }
        send_reject(reader_.error().reason, reader_.bhs());
        break;
      case PduReader::State::data_digest_error:
        // ErrorRecoveryLevel 0 cannot recover lost data: reject it, then drop the connection.
        log::info("iscsi: {}: data digest error: closing", peer_);
        draining_ = true;
        send_reject(RejectReason::data_digest, reader_.bhs(), /*close_after=*/true);
        break;
      case PduReader::State::failed: close(reader_.error().message.c_str()); return false;
    }
    if (!ok || closing_) return false;
    if (draining_) {  // a final response is queued; the connection closes once it is out
      conn_.set_reading(false);
      return false;
    }
    if (st != PduReader::State::need_buffer && in.empty()) return true;
  }
}

bool Connection::buffer_needed() {
  const Pdu& pdu = reader_.pdu();
  if (full_feature_ && pdu.opcode == Opcode::scsi_command) return begin_command(pdu);
  if (full_feature_ && pdu.opcode == Opcode::data_out) return data_out_buffer(pdu);
  if (!reader_.use_internal_buffer()) {
    close("data segment larger than the reader holds");
    return false;
  }
  return true;
}

bool Connection::pdu_ready() {
  const Pdu& pdu = reader_.pdu();
  std::span<const uint8_t> data = reader_.data();
  if (!full_feature_) {
    if (pdu.opcode != Opcode::login_request) {
      close("a PDU other than Login Request before full feature phase");
      return false;
    }
    return login_request(pdu, data);
  }
  switch (pdu.opcode) {
    case Opcode::scsi_command: return command_ready();
    case Opcode::data_out: return data_out_done(pdu);
    case Opcode::nop_out: nop_out(std::get<NopOut>(pdu.header), data); return true;
    case Opcode::text_request: text_request(pdu, data); return true;
    case Opcode::logout_request: logout_request(std::get<LogoutRequest>(pdu.header)); return true;
    case Opcode::task_mgmt_request: task_mgmt(std::get<TaskMgmtRequest>(pdu.header)); return true;
    case Opcode::login_request: close("Login Request in full feature phase"); return false;
    default: send_reject(RejectReason::command_not_supported, reader_.bhs()); return true;
  }
}

uint32_t Connection::max_cmd_sn() const {
  const uint32_t depth = queue_depth_;
  const uint32_t busy = std::min<uint32_t>(uint32_t(commands_.size()), depth - 1);
  return exp_cmd_sn_ + depth - 1 - busy;
}

bool Connection::accept_cmd_sn(bool immediate, uint32_t cmd_sn) {
  if (immediate) return true;
  if (cmd_sn != exp_cmd_sn_ || int32_t(max_cmd_sn() - cmd_sn) < 0) {
    log::info("iscsi: {}: CmdSN {} outside the window [{}, {}]: dropped", peer_, cmd_sn, exp_cmd_sn_, max_cmd_sn());
    return false;
  }
  ++exp_cmd_sn_;
  return true;
}

void Connection::send_reject(RejectReason reason, std::span<const uint8_t> bhs, bool close_after) {
  Reject r;
  r.reason = reason;
  r.stat_sn = next_stat_sn();
  r.exp_cmd_sn = exp_cmd_sn_;
  r.max_cmd_sn = max_cmd_sn();
  send_pdu(r, bhs, nullptr, close_after);
}

void Connection::send_pdu(const Header& h, std::span<const uint8_t> data, Command* cmd, bool close_after) {
  auto* out = new OutPdu();
  out->conn = this;
  out->cmd = cmd;
  out->close_after = close_after;
  if (cmd == nullptr && !data.empty()) {
    out->owned.assign(data.begin(), data.end());
    data = out->owned;
  }
  const size_t hlen = build_header(out->header, tx_, h, uint32_t(data.size()));
  net::SendItem& it = out->item;
  it.iov[it.iovcnt++] = {out->header, hlen};
  if (!data.empty()) {
    it.iov[it.iovcnt++] = {const_cast<uint8_t*>(data.data()), data.size()};
    size_t tail = padding_length(data.size());
    std::memset(out->tail, 0, sizeof(out->tail));
    if (tx_.data_digest) {
      put_digest(out->tail + tail, data_digest(data));
      tail += kDigestSize;
    }
    if (tail > 0) it.iov[it.iovcnt++] = {out->tail, tail};
  }
  it.done = pdu_sent;
  it.arg = out;
  if (cmd != nullptr) ++cmd->sends;
  conn_.send(&it);
}

void Connection::pdu_sent(void* arg, bool ok) {
  auto* out = static_cast<OutPdu*>(arg);
  Connection* self = out->conn;
  if (Command* c = out->cmd) {
    --c->sends;
    if (c->finished && c->sends == 0) self->free_command(c);
  }
  const bool close_after = out->close_after;
  delete out;
  if (close_after || !ok) {
    self->close(nullptr);
  } else if (self->paused_ && !self->closing_ && !self->draining_ && self->conn_.queued_bytes() < kMaxQueuedBytes / 2) {
    self->paused_ = false;
    self->conn_.set_reading(true);  // level-triggered: what waits in the socket is reported again
  }
}

void Connection::maybe_die() {
  if (!closing_ || dead_ || executing_ > 0) return;
  die();
}

void Connection::die() {
  dead_ = true;
  closing_ = true;
  Connections::retire(this);
}

void Connection::destroy() {
  if (login_timer_ != nullptr) (void)thread::unregister_poller(login_timer_);
  if (ping_timer_ != nullptr) (void)thread::unregister_poller(ping_timer_);
  for (auto& [itt, c] : commands_) free_command(c);  // none executing by now
  commands_.clear();
  channel_.reset();
  if (nexus_ != 0) device_->remove_nexus(nexus_);
  if (attached_) {
    std::lock_guard lock(node_rt_->mu);
    --node_rt_->sessions;
  }
  if (counted_) state_->sessions.fetch_sub(1);
  auto state = state_;
  delete this;
  state->live.fetch_sub(1);
}

void start_connection(std::shared_ptr<Target::State> state, int fd, const std::string& peer, uint16_t pg_tag,
                      const std::string& portal) {
  state->live.fetch_add(1);
  auto* c = new Connection(std::move(state), peer, pg_tag, portal);
  Connections::add(c);
  c->open(fd);
}

void close_connections(Target::State* state, const NodeRuntime* node) {
  for (Connection* c : Connections::snapshot())
    if (c->state() == state && (node == nullptr || c->node() == node))
      c->close(node == nullptr ? "the target stops" : "its target node is deleted");
}

void close_port(Target::State* state, const NodeRuntime* node, const std::string& initiator,
                const std::array<uint8_t, 6>& isid, uint16_t tsih) {
  for (Connection* c : Connections::snapshot())
    if (c->state() == state && c->same_port(node, initiator, isid.data(), tsih))
      c->close("reinstated by a new login with its ISID");
}

std::vector<ConnectionInfo> list_connections(Target::State* state) {
  std::vector<ConnectionInfo> out;
  for (Connection* c : Connections::live())
    if (c->state() == state) out.push_back(c->info());
  return out;
}

}  // namespace sluice::iscsi::detail
