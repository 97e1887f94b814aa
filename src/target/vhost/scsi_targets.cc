// A vhost-scsi controller's target slots (scsi_targets.h).
#include "target/vhost/scsi_targets.h"

#include <fmt/format.h>

#include "base/log.h"

namespace sluice::vhost {

Result<uint32_t> ScsiTargets::add(int64_t slot, std::string_view bdev) {
  if (slot < -1 || slot >= static_cast<int64_t>(kMaxTargets))
    return Status(Errc::invalid_argument, fmt::format("vhost-scsi {}: target {} (0 to {}, or -1 for the first free)",
                                                      controller_, slot, kMaxTargets - 1));
  std::lock_guard lock(mu_);
  if (slot == -1) {
    for (uint32_t i = 0; i < kMaxTargets && slot == -1; ++i)
      if (!table_[i]) slot = i;
    if (slot == -1) return Status(Errc::no_space, fmt::format("vhost-scsi {}: all {} targets are in use", controller_, kMaxTargets));
  }
  const auto id = static_cast<uint32_t>(slot);
  if (table_[id]) return Status(Errc::exists, fmt::format("vhost-scsi {}: target {} is in use", controller_, id));
  scsi::DeviceOptions options;
  options.name = fmt::format("{}.Target{}", controller_, id);
  auto target = std::make_shared<ScsiTarget>(id, std::string(bdev), std::move(options));
  std::weak_ptr<ScsiTargets> self = weak_from_this();
  std::weak_ptr<ScsiTarget> which = target;
  SLUICE_RETURN_IF_ERROR(target->device.add_lun(0, bdev, false, [self, which, id] {
    if (auto targets = self.lock()) targets->bdev_removed(id, which);
  }));
  table_[id] = std::move(target);
  log_event_locked(id, true);
  return id;
}

Result<std::weak_ptr<ScsiTarget>> ScsiTargets::remove(int64_t slot) {
  if (slot < 0 || slot >= static_cast<int64_t>(kMaxTargets))
    return Status(Errc::invalid_argument, fmt::format("vhost-scsi {}: target {} (0 to {})", controller_, slot, kMaxTargets - 1));
  std::lock_guard lock(mu_);
  std::shared_ptr<ScsiTarget> gone = std::move(table_[slot]);
  if (!gone) return Status(Errc::not_found, fmt::format("vhost-scsi {}: no target {}", controller_, slot));
  log_event_locked(static_cast<uint32_t>(slot), false);
  return std::weak_ptr<ScsiTarget>(gone);
}

// Runs on the thread that removed the bdev: it unpublishes and returns, never waits. The
// queues drop the target on their reactors as after remove().
void ScsiTargets::bdev_removed(uint32_t slot, const std::weak_ptr<ScsiTarget>& which) {
  std::shared_ptr<ScsiTarget> gone;
  {
    std::lock_guard lock(mu_);
    if (!table_[slot] || table_[slot] != which.lock()) return;  // removed or replaced already
    gone = std::move(table_[slot]);
    log_event_locked(slot, false);
  }
  log::notice("vhost-scsi {}: bdev {} was removed: target {} goes", controller_, gone->bdev, slot);
  if (changed_) changed_();
}

void ScsiTargets::log_event_locked(uint32_t target, bool added) {
  events_.push_back({next_seq_++, target, added});
  if (events_.size() > kMaxEvents) events_.pop_front();
  generation_.fetch_add(1, std::memory_order_release);
}

std::vector<std::pair<uint32_t, std::string>> ScsiTargets::list() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<uint32_t, std::string>> out;
  for (const auto& t : table_)
    if (t) out.emplace_back(t->id, t->bdev);
  return out;
}

ScsiTargets::Table ScsiTargets::snapshot(uint64_t* generation) const {
  std::lock_guard lock(mu_);
  *generation = generation_.load(std::memory_order_relaxed);
  return table_;
}

std::vector<ScsiTargets::Event> ScsiTargets::events_after(uint64_t seq, uint64_t* last) const {
  std::lock_guard lock(mu_);
  std::vector<Event> out;
  for (const Event& e : events_)
    if (e.seq > seq) out.push_back(e);
  *last = next_seq_ - 1;
  return out;
}

}  // namespace sluice::vhost
