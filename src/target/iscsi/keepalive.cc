// NOP-In pings (RFC 7143 11.19): how the target tells an idle initiator from a dead one. A
// peer that vanished without a FIN or RST (a crashed host, a cut network) leaves the socket
// open for hours of TCP retransmission timeouts, holding its session's place among
// max_sessions and its reservations; a ping it cannot answer frees them after
// nop_in_interval + nop_timeout instead.
//
// Liveness is "the socket became readable since the last tick", counted by on_readable: no
// clock read on the data path, and a busy initiator is never pinged. The answer itself (a
// NOP-Out echoing the ping's Target Transfer Tag) is one more readable event.
#include "base/log.h"
#include "target/iscsi/connection.h"

namespace sluice::iscsi::detail {

void Connection::start_pings() {
  const auto interval = state_->options.nop_in_interval;
  if (interval.count() <= 0) return;
  readable_at_tick_ = readable_calls_;
  auto p = thread::register_poller(
      [this] {
        ping_tick();
        return thread::PollStatus::idle;
      },
      std::chrono::duration_cast<std::chrono::microseconds>(interval).count(), "iscsi_nop_in");
  if (p.ok()) {
    ping_timer_ = p.value();
  } else {
    log::warn("iscsi: {}: no NOP-In pings on this connection: {}", peer_, p.status().message());
  }
}

void Connection::ping_tick() {
  if (closing_ || draining_) return;
  if (readable_calls_ != readable_at_tick_) {  // the initiator spoke: alive
    readable_at_tick_ = readable_calls_;
    ping_outstanding_ = false;
    return;
  }
  const auto interval = state_->options.nop_in_interval;
  if (ping_outstanding_) {
    ping_waited_ += interval;
    if (ping_waited_ >= state_->options.nop_timeout) {
      const std::string why =
          fmt::format("no answer to a NOP-In ping for {} ms: the initiator is gone", ping_waited_.count());
      close(why.c_str());
    }
    return;
  }
  // A ping asks for an answer (a Target Transfer Tag that is not 0xffffffff); it carries the
  // current StatSN without taking a new one, and no LUN.
  NopIn ping;
  ping.ttt = next_ttt_++;
  if (ping.ttt == kReservedTag) ping.ttt = next_ttt_++;
  ping.stat_sn = stat_sn_;
  ping.exp_cmd_sn = exp_cmd_sn_;
  ping.max_cmd_sn = max_cmd_sn();
  send_pdu(ping, {});
  ping_outstanding_ = true;
  ping_waited_ = std::chrono::milliseconds{0};
}

}  // namespace sluice::iscsi::detail
