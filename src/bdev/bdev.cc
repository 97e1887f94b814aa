#include <fmt/format.h>

#include "base/clock.h"
#include "bdev/backend.h"
#include "bdev/channel.h"
#include "bdev/qos.h"

namespace sluice::bdev {

std::string_view io_type_name(IoType type) {
  switch (type) {
    case IoType::read: return "read";
    case IoType::write: return "write";
    case IoType::flush: return "flush";
    case IoType::unmap: return "unmap";
    case IoType::write_zeroes: return "write_zeroes";
    case IoType::reset: return "reset";
  }
  return "unknown";
}

Bdev::Bdev(std::string name, Geometry geometry)
    : name_(std::move(name)), geometry_(geometry), qos_(std::make_unique<Qos>()) {}

Bdev::~Bdev() = default;

QosLimits Bdev::qos_limits() const { return qos_->limits(); }

void Bdev::set_qos_limits(const QosLimits& limits) {
  qos_->set_limits(limits, clock::ticks(), clock::ticks_per_second());
}

Status set_qos_limits(std::string_view name, const QosLimits& limits) {
  auto dev = find(name);
  if (!dev) return Status(Errc::not_found, fmt::format("no bdev named {}", name));
  dev->set_qos_limits(limits);
  return Status::Ok();
}

Result<std::unique_ptr<thread::IoChannel>> Bdev::create_channel() {
  auto queue = create_queue();
  if (!queue.ok()) return queue.status();
  return std::unique_ptr<thread::IoChannel>(new BdevChannel(*this, std::move(queue.value())));
}

IoStats Bdev::stats() const {
  std::lock_guard lock(channels_mu_);
  IoStats total;
  total.merge(retired_);
  for (const BdevChannel* ch : live_channels_) total.merge(ch->stats());
  return total;
}

Status wait_for_room(BdevChannel* ch, IoWaitEntry* entry) {
  if (ch == nullptr || entry == nullptr || entry->fn == nullptr)
    return Status(Errc::invalid_argument, "wait_for_room needs a channel and a callback");
  ch->wait_for_room(entry);
  return Status::Ok();
}

int poll(BdevChannel* ch) { return ch->poll(); }

}  // namespace sluice::bdev
