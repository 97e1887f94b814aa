#include "bdev/registry.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/log.h"

namespace sluice::bdev {

Registry& Registry::instance() {
  static Registry* r = new Registry();  // never destroyed: handles may close during exit
  return *r;
}

Status Registry::add(std::shared_ptr<Bdev> bdev) {
  if (!bdev || bdev->name().empty()) return Status(Errc::invalid_argument, "a bdev needs a name");
  std::lock_guard lock(mu_);
  auto [it, inserted] = bdevs_.try_emplace(bdev->name(), Entry{bdev, {}});
  if (!inserted) return Status(Errc::exists, fmt::format("a bdev named {} already exists", bdev->name()));
  return Status::Ok();
}

Status Registry::remove(std::string_view name) {
  std::vector<std::function<void()>> notify;
  std::shared_ptr<Bdev> bdev;
  {
    std::lock_guard lock(mu_);
    auto it = bdevs_.find(name);
    if (it == bdevs_.end()) return Status(Errc::not_found, fmt::format("no bdev named {}", name));
    bdev = it->second.bdev;
    bdev->removed_.store(true, std::memory_order_relaxed);
    for (BdevDesc* d : it->second.descs)
      if (d->on_remove_) notify.push_back(d->on_remove_);
    if (!it->second.descs.empty()) removed_.push_back(std::move(it->second));
    bdevs_.erase(it);
  }
  // Outside the lock: a callback may close its handle or remove a stacked device.
  bdev->on_unregistered();
  for (auto& fn : notify) fn();
  return Status::Ok();
}

Result<std::unique_ptr<BdevDesc>> Registry::open(std::string_view name, const OpenOptions& opts) {
  std::lock_guard lock(mu_);
  auto it = bdevs_.find(name);
  if (it == bdevs_.end()) return Status(Errc::not_found, fmt::format("no bdev named {}", name));
  Entry& e = it->second;
  for (BdevDesc* d : e.descs) {
    if (d->claim_ == Claim::exclusive)
      return Status(Errc::busy, fmt::format("bdev {} is claimed exclusively by another user in this process", name));
  }
  if (opts.claim == Claim::exclusive && !e.descs.empty())
    return Status(Errc::busy, fmt::format("bdev {} is open elsewhere in this process; cannot claim it exclusively", name));
  // A device that cannot write (a read-only file) never needs more than a read lock.
  SLUICE_RETURN_IF_ERROR(claim_backing(e, opts.write && e.bdev->geometry().supports(IoType::write)));
  std::unique_ptr<BdevDesc> desc(new BdevDesc(e.bdev, opts));
  e.descs.push_back(desc.get());
  return desc;
}

// The host-file lock follows the handles: taken with the first, made a write lock by the
// first writer, dropped with the last (Bdev::lock_backing).
Status Registry::claim_backing(Entry& e, bool write) {
  if (!e.descs.empty() && (e.locked_for_write || !write)) return Status::Ok();
  SLUICE_RETURN_IF_ERROR(e.bdev->lock_backing(write));
  e.locked_for_write = write;
  return Status::Ok();
}

void Registry::release_backing_if_unused(Entry& e) {
  if (!e.descs.empty()) return;
  e.bdev->unlock_backing();
  e.locked_for_write = false;
}

void Registry::close(BdevDesc* desc) {
  if (int held = desc->channels_.load(); held != 0)
    log::error("bdev {}: handle closed with {} channel(s) still held", desc->name(), held);
  std::lock_guard lock(mu_);
  auto drop = [&](Entry& e) {
    auto& v = e.descs;
    auto before = v.size();
    v.erase(std::remove(v.begin(), v.end(), desc), v.end());
    if (v.size() == before) return false;
    release_backing_if_unused(e);
    return true;
  };
  if (auto it = bdevs_.find(desc->name()); it != bdevs_.end() && drop(it->second)) return;
  for (auto it = removed_.begin(); it != removed_.end(); ++it) {
    if (drop(*it)) {
      if (it->descs.empty()) removed_.erase(it);
      return;
    }
  }
}

std::vector<std::string> Registry::names() {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (auto& [name, e] : bdevs_) out.push_back(name);
  return out;
}

std::shared_ptr<Bdev> Registry::find(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = bdevs_.find(name);
  return it == bdevs_.end() ? nullptr : it->second.bdev;
}

Status register_bdev(std::shared_ptr<Bdev> bdev) { return Registry::instance().add(std::move(bdev)); }
Status unregister(std::string_view name) { return Registry::instance().remove(name); }
Result<std::unique_ptr<BdevDesc>> open(std::string_view name, const OpenOptions& opts) {
  return Registry::instance().open(name, opts);
}
std::vector<std::string> list() { return Registry::instance().names(); }
std::shared_ptr<Bdev> find(std::string_view name) { return Registry::instance().find(name); }

}  // namespace sluice::bdev
