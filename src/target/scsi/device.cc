// Device: LUNs, I_T nexuses and their unit attentions, resets; the LUN's wire encoding.
#include <algorithm>

#include <fmt/format.h>

#include "base/crc32c.h"
#include "target/scsi/scsi_impl.h"

namespace sluice::scsi {

std::array<uint8_t, 8> lun_to_wire(uint64_t lun) {
  std::array<uint8_t, 8> w{};
  if (lun < 256) {
    w[1] = static_cast<uint8_t>(lun);  // peripheral device addressing, bus 0
  } else {
    w[0] = static_cast<uint8_t>(0x40 | ((lun >> 8) & 0x3f));  // flat space addressing
    w[1] = static_cast<uint8_t>(lun);
  }
  return w;
}

uint64_t lun_from_wire(const uint8_t* w) {
  for (int i = 2; i < 8; ++i)
    if (w[i] != 0) return kMaxLun + 1;  // second-level addressing: no such LUN here
  switch (w[0] >> 6) {
    case 0: return w[0] == 0 ? w[1] : kMaxLun + 1;  // peripheral; a nonzero bus is not ours
    case 1: return uint64_t{w[0] & 0x3fu} << 8 | w[1];
    default: return kMaxLun + 1;
  }
}

Lun* Device::Shared::find(uint64_t lun) const {
  auto it = std::lower_bound(luns.begin(), luns.end(), lun,
                             [](const std::shared_ptr<Lun>& l, uint64_t id) { return l->id < id; });
  return it != luns.end() && (*it)->id == lun ? it->get() : nullptr;
}

namespace {

// One of a kind is enough: the initiator rereads what changed once.
void queue_attention(Nexus& n, uint64_t lun, uint16_t code, std::atomic<uint32_t>& count) {
  const bool queued = std::any_of(n.attentions.begin(), n.attentions.end(),
                                  [&](const UnitAttention& u) { return u.lun == lun && u.asc == code; });
  if (queued) return;
  n.attentions.push_back({lun, code});
  count.fetch_add(1, std::memory_order_release);
}

}  // namespace

void Device::Shared::raise_locked(uint64_t lun, uint16_t code, uint64_t except) {
  for (auto& [id, n] : nexuses)
    if (id != except) queue_attention(n, lun, code, attentions);
}

void Device::Shared::raise_registrant_locked(const Registrant& r, uint64_t lun, uint16_t code) {
  for (auto& [id, n] : nexuses)
    if (n.initiator_port == r.initiator_port && n.relative_target_port == r.relative_target_port)
      queue_attention(n, lun, code, attentions);
}

void Device::Shared::raise(uint64_t lun, uint16_t code, uint64_t except) {
  std::lock_guard lock(mu);
  raise_locked(lun, code, except);
}

bool Device::Shared::take_attention(uint64_t nexus, uint64_t lun, uint16_t* code) {
  if (attentions.load(std::memory_order_acquire) == 0) return false;
  std::lock_guard lock(mu);
  auto it = nexuses.find(nexus);
  if (it == nexuses.end()) return false;
  auto& q = it->second.attentions;
  for (auto u = q.begin(); u != q.end(); ++u) {
    if (u->lun != lun) continue;
    // A reset supersedes what was queued before it (SAM-5 5.14: it is the highest priority).
    *code = u->asc;
    q.erase(u);
    attentions.fetch_sub(1, std::memory_order_release);
    return true;
  }
  return false;
}

Device::Device(DeviceOptions options) : options_(std::move(options)), shared_(std::make_unique<Shared>()) {}

Device::~Device() = default;

Status Device::add_lun(uint64_t lun, std::string_view bdev_name, bool read_only, std::function<void()> on_remove) {
  if (lun > kMaxLun) return Status(Errc::invalid_argument, "LUN " + std::to_string(lun) + " is above 16383");
  if (shared_->channels.load() != 0) return Status(Errc::busy, "LUNs are fixed once a channel exists");
  if (shared_->find(lun) != nullptr) return Status(Errc::exists, "LUN " + std::to_string(lun) + " exists");
  auto desc = bdev::open(bdev_name, {.write = !read_only, .on_remove = std::move(on_remove)});
  if (!desc.ok()) return desc.status();
  auto l = std::make_shared<Lun>();
  l->id = lun;
  l->bdev_name = std::string(bdev_name);
  l->desc = std::move(desc.value());
  l->read_only = read_only;
  l->known_blocks = l->num_blocks();
  // Without a volatile cache (no FLUSH) a completed write is on the medium: WCE says so, and
  // initiators then skip SYNCHRONIZE CACHE.
  l->write_cache = l->geometry().supports(bdev::IoType::flush);
  const std::string ident = options_.name + "/" + l->bdev_name + "/" + std::to_string(lun);
  const uint32_t a = crc32c(ident.data(), ident.size());
  const uint32_t b = crc32c(ident.data(), ident.size(), 0x5c5a5c5a);
  l->naa = (uint64_t{a} << 32 | b) & ((uint64_t{1} << 60) - 1);
  l->serial = !options_.serial.empty() ? options_.serial + (lun != 0 ? "-" + std::to_string(lun) : "")
                                       : fmt::format("{:015X}", l->naa);
  auto& luns = shared_->luns;
  luns.insert(std::upper_bound(luns.begin(), luns.end(), lun,
                               [](uint64_t id, const std::shared_ptr<Lun>& x) { return id < x->id; }),
              std::move(l));
  for (size_t i = 0; i < luns.size(); ++i) luns[i]->index = i;
  return Status::Ok();
}

std::vector<uint64_t> Device::luns() const {
  std::vector<uint64_t> ids;
  for (const auto& l : shared_->luns) ids.push_back(l->id);
  return ids;
}

uint64_t Device::add_nexus(std::string initiator_port, uint16_t relative_target_port) {
  std::lock_guard lock(shared_->mu);
  const uint64_t id = shared_->next_nexus++;
  Nexus& n = shared_->nexuses[id];
  n.initiator_port = std::move(initiator_port);
  n.relative_target_port = relative_target_port;
  return id;
}

void Device::remove_nexus(uint64_t nexus) {
  std::lock_guard lock(shared_->mu);
  auto it = shared_->nexuses.find(nexus);
  if (it == shared_->nexuses.end()) return;
  shared_->attentions.fetch_sub(static_cast<uint32_t>(it->second.attentions.size()));
  for (uint64_t id : it->second.prevented)
    if (Lun* l = shared_->find(id)) l->prevent.fetch_sub(1);
  for (auto& l : shared_->luns) {
    uint64_t holder = nexus;
    l->reserved_by.compare_exchange_strong(holder, 0);
  }
  shared_->nexuses.erase(it);
}

void Device::reset_lun(uint64_t lun, uint64_t from) {
  Lun* l = shared_->find(lun);
  if (l == nullptr) return;
  std::lock_guard lock(shared_->mu);
  l->reserved_by = 0;
  l->stopped = false;
  shared_->raise_locked(lun, asc::kPowerOnReset, from);
}

void Device::reset(uint64_t from) {
  for (const auto& l : shared_->luns) reset_lun(l->id, from);
}

}  // namespace sluice::scsi
