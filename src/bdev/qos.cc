#include "bdev/qos.h"

#include <algorithm>

namespace sluice::bdev {

void TokenBucket::set_rate(uint64_t per_second, uint64_t now_ticks, double ticks_per_second) {
  if (per_second != 0) {
    ticks_per_token_.store(ticks_per_second / static_cast<double>(per_second), std::memory_order_relaxed);
    burst_.store(static_cast<int64_t>(std::max<uint64_t>(per_second / 50, 1)), std::memory_order_relaxed);
  }
  balance_.store(0, std::memory_order_relaxed);
  last_refill_.store(now_ticks, std::memory_order_relaxed);
  rate_.store(per_second, std::memory_order_release);
}

bool TokenBucket::ready(uint64_t now_ticks) {
  if (balance_.load(std::memory_order_relaxed) > 0) return true;
  uint64_t last = last_refill_.load(std::memory_order_acquire);
  if (now_ticks <= last) return false;
  const double per_token = ticks_per_token_.load(std::memory_order_relaxed);
  const auto tokens = static_cast<int64_t>(static_cast<double>(now_ticks - last) / per_token);
  if (tokens <= 0) return false;
  // Credit whole tokens only and move the timestamp by exactly their time, so fractions
  // carry over to the next refill instead of being lost (at 1,000 IOPS a refill every few
  // microseconds would otherwise never earn a token).
  const uint64_t credited_to = last + static_cast<uint64_t>(static_cast<double>(tokens) * per_token);
  if (!last_refill_.compare_exchange_strong(last, credited_to, std::memory_order_acq_rel)) {
    return balance_.load(std::memory_order_relaxed) > 0;  // another channel refilled
  }
  const int64_t burst = burst_.load(std::memory_order_relaxed);
  int64_t balance = balance_.load(std::memory_order_relaxed);
  while (!balance_.compare_exchange_weak(balance, std::min(balance + tokens, std::max(balance, burst)),
                                         std::memory_order_relaxed)) {
  }
  return balance_.load(std::memory_order_relaxed) > 0;
}

QosLimits Qos::limits() const {
  return QosLimits{rw_ios_.rate(), rw_bytes_.rate(), r_bytes_.rate(), w_bytes_.rate()};
}

void Qos::set_limits(const QosLimits& l, uint64_t now_ticks, double ticks_per_second) {
  absent_ticks_.store(static_cast<uint64_t>(ticks_per_second * static_cast<double>(kAbsentTurnNs) / 1e9),
                      std::memory_order_relaxed);
  rw_ios_.set_rate(l.rw_ios_per_sec, now_ticks, ticks_per_second);
  rw_bytes_.set_rate(l.rw_bytes_per_sec, now_ticks, ticks_per_second);
  r_bytes_.set_rate(l.r_bytes_per_sec, now_ticks, ticks_per_second);
  w_bytes_.set_rate(l.w_bytes_per_sec, now_ticks, ticks_per_second);
  enabled_.store(l.rw_ios_per_sec != 0 || l.rw_bytes_per_sec != 0 || l.r_bytes_per_sec != 0 || l.w_bytes_per_sec != 0,
                 std::memory_order_release);
}

bool Qos::take_tokens(IoType type, uint64_t bytes, uint64_t now_ticks) {
  TokenBucket* const per_type = type == IoType::read ? &r_bytes_ : &w_bytes_;
  TokenBucket* const applies[] = {&rw_ios_, &rw_bytes_, per_type};
  for (TokenBucket* b : applies)
    if (b->rate() != 0 && !b->ready(now_ticks)) return false;
  if (rw_ios_.rate() != 0) rw_ios_.take(1);
  if (rw_bytes_.rate() != 0) rw_bytes_.take(bytes);
  if (per_type->rate() != 0) per_type->take(bytes);
  return true;
}

bool Qos::admit(IoType type, uint64_t bytes, uint64_t now_ticks, QosTicket& ticket) {
  if (type != IoType::read && type != IoType::write) return true;
  uint64_t served = served_.load(std::memory_order_acquire);
  if (ticket.number != 0 && ticket.number <= served) ticket.number = 0;  // skipped while away: line up again
  if (ticket.number == 0) {
    // Nobody in line: the fast path, no ticket needed.
    if (issued_.load(std::memory_order_acquire) == served && take_tokens(type, bytes, now_ticks)) return true;
    ticket.number = issued_.fetch_add(1, std::memory_order_acq_rel) + 1;
    if (ticket.number == served + 1) turn_seen_.store(now_ticks, std::memory_order_release);
    return false;
  }
  if (ticket.number == served + 1) {  // our turn
    turn_seen_.store(now_ticks, std::memory_order_release);
    if (!take_tokens(type, bytes, now_ticks)) return false;
    served_.store(ticket.number, std::memory_order_release);
    ticket.number = 0;
    return true;
  }
  // Someone ahead holds the turn. If its holder has stopped asking, pass it by.
  const uint64_t seen = turn_seen_.load(std::memory_order_acquire);
  if (now_ticks > seen && now_ticks - seen > absent_ticks_.load(std::memory_order_relaxed) &&
      served_.compare_exchange_strong(served, served + 1, std::memory_order_acq_rel))
    turn_seen_.store(now_ticks, std::memory_order_release);
  return false;
}

}  // namespace sluice::bdev
