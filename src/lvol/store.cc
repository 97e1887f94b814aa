// LvolStore: create, load, unload and abandon a store, and what every operation shares.
#include <algorithm>
#include <random>

#include <fmt/format.h>

#include "base/log.h"
#include "lvol/store_impl.h"

namespace sluice::lvol {
namespace {

std::string new_uuid() {
  std::random_device rd;
  uint8_t b[16];
  for (int i = 0; i < 16; i += 4) {
    uint32_t r = rd();
    for (int j = 0; j < 4; ++j) b[i + j] = static_cast<uint8_t>(r >> (8 * j));
  }
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4 (random)
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += fmt::format("{:02x}", b[i]);
  }
  return s;
}

Result<std::unique_ptr<LvolStore::Impl>> open_impl(std::shared_ptr<blob::Blobstore> bs, std::string_view bdev_name,
                                                   const Identity& id) {
  auto base = bdev::find(bdev_name);
  if (!base) return Status(Errc::not_found, fmt::format("no bdev named {}", bdev_name));
  auto impl = std::make_unique<LvolStore::Impl>();
  blob::StoreInfo si = bs->store_info();
  impl->name = id.name;
  impl->uuid = id.uuid;
  impl->bdev_name = std::string(bdev_name);
  impl->bs = std::move(bs);
  impl->super_id = id.super_id;
  impl->cluster_size = si.cluster_size;
  impl->io_unit = si.io_unit;
  impl->base_geometry = base->geometry();
  return impl;
}

// Registers a bdev for every volume. A volume whose name is missing or unusable (a crash
// between creating a blob and naming it, or a foreign tool) gets "unnamed-<blob id>".
Status adopt_volumes(LvolStore::Impl& s) {
  for (blob::BlobId id : s.bs->list()) {
    if (id == s.super_id) continue;
    auto info = s.bs->info(id);
    if (!info.ok()) return info.status();
    std::string name;
    if (auto it = info->internal_xattrs.find(std::string(kVolumeNameXattr)); it != info->internal_xattrs.end())
      name = it->second;
    if (!check_name(name).ok() || s.volumes.contains(name)) {
      std::string fallback = fmt::format("unnamed-{}", id);
      for (int i = 1; s.volumes.contains(fallback); ++i) fallback = fmt::format("unnamed-{}-{}", id, i);
      log::warn("lvol store {}: blob {} has {} name '{}'; calling it {}", s.name, id, name.empty() ? "no" : "an unusable",
                name, fallback);
      name = fallback;
    }
    auto bdev = s.make_bdev(name, id);
    if (!bdev.ok()) return bdev.status();
    s.volumes[name] = Volume{id, std::move(bdev.value())};
  }
  return Status::Ok();
}

void unregister_volumes(LvolStore::Impl& s) {
  for (auto& [name, v] : s.volumes) (void)bdev::unregister(v.bdev->name());
  s.volumes.clear();
}

}  // namespace

// ---- Impl -------------------------------------------------------------------------------

Status LvolStore::Impl::check_open() const {
  if (closed) return Status(Errc::aborted, fmt::format("lvol store {} is unloaded", name));
  return Status::Ok();
}

Result<Volume*> LvolStore::Impl::find(std::string_view volume) {
  auto it = volumes.find(volume);
  if (it == volumes.end()) return Status(Errc::not_found, fmt::format("lvol store {} has no volume '{}'", name, volume));
  return &it->second;
}

Result<VolumeInfo> LvolStore::Impl::describe(const std::string& volume_name, const Volume& v) const {
  auto bi = bs->info(v.id);
  if (!bi.ok()) return bi.status();
  auto name_of = [&](blob::BlobId id) -> std::string {
    for (auto& [n, other] : volumes)
      if (other.id == id) return n;
    return fmt::format("blob-{}", id);
  };
  VolumeInfo i;
  i.name = volume_name;
  i.bdev_name = v.bdev->name();
  i.size_bytes = bi->size_clusters * cluster_size;
  i.allocated_bytes = bi->allocated_clusters * cluster_size;
  i.thin = bi->thin;
  i.snapshot = bi->snapshot;
  if (bi->parent != 0) i.parent = name_of(bi->parent);
  for (blob::BlobId c : bi->clones) i.clones.push_back(name_of(c));
  std::sort(i.clones.begin(), i.clones.end());
  return i;
}

Result<std::shared_ptr<LvolBdev>> LvolStore::Impl::make_bdev(std::string_view volume, blob::BlobId id) {
  auto bi = bs->info(id);
  if (!bi.ok()) return bi.status();
  std::string bdev_name = volume_bdev_name(volume);
  auto bdev = std::make_shared<LvolBdev>(
      bdev_name, "lvol:" + bdev_name,
      volume_geometry(base_geometry, cluster_size, io_unit, bi->size_clusters, bi->read_only), bs, id);
  Status st = bdev::register_bdev(bdev);
  if (!st.ok())
    return Status(st.code(), fmt::format("volume {} of lvol store {}: {}", volume, name, st.message()));
  return bdev;
}

Status LvolStore::Impl::sync(std::string_view what) {
  Status st = bs->sync_md();
  if (st.ok()) return st;
  return Status(st.code(), fmt::format("lvol store {}: {} is done in memory but not durable: metadata sync failed: {}",
                                       name, what, st.message()));
}

// ---- LvolStore ------------------------------------------------------------------------

LvolStore::LvolStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LvolStore::~LvolStore() = default;

const std::string& LvolStore::name() const { return impl_->name; }

Result<std::shared_ptr<LvolStore>> LvolStore::create(std::string_view bdev_name, std::string_view store_name,
                                                     uint32_t cluster_size, bool force) {
  (void)register_spec_scheme();
  register_probe_owner();
  SLUICE_RETURN_IF_ERROR(check_name(store_name, "store name"));
  if (store_name_taken(store_name))
    return Status(Errc::exists, fmt::format("an lvol store named {} is already loaded", store_name));
  if (cluster_size == 0 || cluster_size % 4096 != 0)
    return Status(Errc::invalid_argument, fmt::format("cluster size {} is not a multiple of 4096", cluster_size));
  blob::InitOptions opts;
  opts.cluster_size = cluster_size;
  opts.force = force;
  auto init = blob::Blobstore::init(bdev_name, opts);
  if (!init.ok() && init.status().code() == Errc::exists) return init.status();  // the refusal names the device
  if (!init.ok())
    return Status(init.status().code(), fmt::format("lvol store {} on {}: {}", store_name, bdev_name, init.status().message()));
  std::shared_ptr<blob::Blobstore> bs = std::move(init.value());

  Identity id;
  id.name = std::string(store_name);
  id.uuid = new_uuid();
  blob::CreateOptions co;
  co.thin = true;  // holds attributes only
  auto sb = bs->create(co);
  if (!sb.ok()) return sb.status();
  id.super_id = *sb;
  SLUICE_RETURN_IF_ERROR(bs->set_xattr(id.super_id, kStoreNameXattr, id.name, true));
  SLUICE_RETURN_IF_ERROR(bs->set_xattr(id.super_id, kStoreUuidXattr, id.uuid, true));
  SLUICE_RETURN_IF_ERROR(bs->set_xattr(id.super_id, kStoreVersionXattr, kStoreVersion, true));
  SLUICE_RETURN_IF_ERROR(bs->set_super_blob(id.super_id));
  SLUICE_RETURN_IF_ERROR(bs->sync_md());

  auto impl = open_impl(bs, bdev_name, id);
  if (!impl.ok()) return impl.status();
  auto store = StoreAccess::make(std::move(impl.value()));
  SLUICE_RETURN_IF_ERROR(add_store(store));  // lost a race for the name: the store unloads as `bs` goes
  log::info("lvol store {} ({}) created on {}", id.name, id.uuid, bdev_name);
  return store;
}

Result<std::shared_ptr<LvolStore>> LvolStore::load(std::string_view bdev_name) {
  (void)register_spec_scheme();
  register_probe_owner();
  {
    // Look first without changing anything: a store of another kind is left exactly as it was
    // (a read-write load would recover it and write a checkpoint).
    blob::LoadOptions ro;
    ro.read_only = true;
    auto peek = blob::Blobstore::load(bdev_name, ro);
    if (!peek.ok()) return Status(peek.status().code(), fmt::format("lvol store on {}: {}", bdev_name, peek.status().message()));
    auto id = read_identity(**peek, bdev_name);
    (void)(*peek)->unload();
    if (!id.ok()) return id.status();
    if (store_name_taken(id->name))
      return Status(Errc::exists, fmt::format("bdev {} holds lvol store {}, and a store of that name is already loaded",
                                              bdev_name, id->name));
  }
  auto loaded = blob::Blobstore::load(bdev_name);
  if (!loaded.ok())
    return Status(loaded.status().code(), fmt::format("lvol store on {}: {}", bdev_name, loaded.status().message()));
  std::shared_ptr<blob::Blobstore> bs = std::move(loaded.value());
  auto id = read_identity(*bs, bdev_name);
  if (!id.ok()) return id.status();
  auto impl = open_impl(bs, bdev_name, *id);
  if (!impl.ok()) return impl.status();
  Impl& s = **impl;
  {
    std::lock_guard lock(s.mu);
    Status st = adopt_volumes(s);
    if (!st.ok()) {
      unregister_volumes(s);
      return st;
    }
  }
  auto store = StoreAccess::make(std::move(impl.value()));
  Status st = add_store(store);
  if (!st.ok()) {
    std::lock_guard lock(s.mu);
    unregister_volumes(s);
    return st;
  }
  log::info("lvol store {} loaded from {}: {} volume(s)", id->name, bdev_name, s.volumes.size());
  return store;
}

Status LvolStore::unload() {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mu);
    SLUICE_RETURN_IF_ERROR(s.check_open());
    // Claim every volume first, so none can be opened while the store goes away.
    std::vector<std::unique_ptr<bdev::BdevDesc>> claims;
    for (auto& [name, v] : s.volumes) {
      bdev::OpenOptions o;
      o.claim = bdev::Claim::exclusive;
      auto d = bdev::open(v.bdev->name(), o);
      if (d.ok()) {
        claims.push_back(std::move(d.value()));
      } else if (d.status().code() != Errc::not_found || v.bdev->channel_count() != 0) {
        return Status(Errc::busy, fmt::format("lvol store {}: volume {} is open; close it first", s.name, name));
      }
    }
    unregister_volumes(s);
    claims.clear();
    Status st = s.bs->unload();
    if (!st.ok()) {
      // Nothing was released: put the volumes back so the store stays usable.
      Status again = adopt_volumes(s);
      if (!again.ok()) log::error("lvol store {}: re-registering volumes failed: {}", s.name, again.to_string());
      return Status(st.code(), fmt::format("lvol store {}: unload failed: {}", s.name, st.message()));
    }
    s.closed = true;
  }
  log::info("lvol store {} unloaded", s.name);
  remove_store(std::string(s.name));  // may drop the last reference to this object
  return Status::Ok();
}

void LvolStore::abandon() {
  Impl& s = *impl_;
  std::vector<std::string> names;
  {
    std::lock_guard lock(s.mu);
    if (s.closed) return;
    s.closed = true;
    for (auto& [name, v] : s.volumes) names.push_back(v.bdev->name());
    s.volumes.clear();
  }
  // Outside the lock: hot-remove callbacks may take aliases down, and they come back here.
  for (auto& n : names) (void)bdev::unregister(n);
  s.bs->abandon();
  log::info("lvol store {} abandoned", s.name);
  remove_store(std::string(s.name));  // may drop the last reference to this object
}

StoreInfo LvolStore::info() const {
  Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  StoreInfo i;
  i.name = s.name;
  i.uuid = s.uuid;
  i.bdev_name = s.bdev_name;
  i.cluster_size = s.cluster_size;
  i.block_size = s.io_unit;
  if (!s.closed) {
    blob::StoreInfo bi = s.bs->store_info();
    i.total_bytes = bi.total_clusters * s.cluster_size;
    i.free_bytes = bi.free_clusters * s.cluster_size;
  }
  i.volumes = s.volumes.size();
  return i;
}

}  // namespace sluice::lvol
