// Volume operations. Each runs under the store's mutex, maps the volume to its blob, and ends
// with a metadata sync so that it is durable when it returns.
#include <fmt/format.h>

#include "base/log.h"

#include "lvol/store_impl.h"

namespace sluice::lvol {
namespace {

using Impl = LvolStore::Impl;

Status in_volume(const Impl& s, std::string_view volume, const Status& st) {
  return Status(st.code(), fmt::format("lvol store {}: volume {}: {}", s.name, volume, st.message()));
}

Result<uint64_t> to_clusters(const Impl& s, std::string_view volume, uint64_t size_bytes) {
  if (size_bytes == 0)
    return Status(Errc::invalid_argument, fmt::format("lvol store {}: volume {}: size must be at least one byte", s.name, volume));
  return size_bytes / s.cluster_size + (size_bytes % s.cluster_size != 0);
}

Status check_new_name(Impl& s, std::string_view name) {
  SLUICE_RETURN_IF_ERROR(check_name(name, "volume name"));
  if (s.volumes.contains(name))
    return Status(Errc::exists, fmt::format("lvol store {} already has a volume named {}", s.name, name));
  return Status::Ok();
}

// Keeps everyone else out of a volume's bdev for the length of an operation that changes its
// name or geometry, or deletes it. Null (and fine) when the bdev was unregistered from outside
// and has no channels left.
Result<std::unique_ptr<bdev::BdevDesc>> claim(const Impl& s, std::string_view name, const Volume& v,
                                              std::string_view op) {
  bdev::OpenOptions o;
  o.claim = bdev::Claim::exclusive;
  auto d = bdev::open(v.bdev->name(), o);
  if (d.ok()) return std::move(d.value());
  if (d.status().code() == Errc::not_found && v.bdev->channel_count() == 0) return std::unique_ptr<bdev::BdevDesc>();
  return Status(Errc::busy, fmt::format("lvol store {}: cannot {} volume {} while its bdev {} is open; close it first",
                                        s.name, op, name, v.bdev->name()));
}

// Names a new blob and gives it a bdev; on failure the blob is removed again (for a snapshot
// that merges it back into its volume, which is where its clusters came from).
Result<VolumeInfo> adopt_new_blob(Impl& s, std::string_view name, blob::BlobId id, std::string_view what) {
  auto undo = [&](const Status& why) {
    Status st = s.bs->remove(id);
    if (!st.ok()) log::error("lvol store {}: blob {} stays behind unnamed: {}", s.name, id, st.to_string());
    return in_volume(s, name, why);
  };
  Status st = s.bs->set_xattr(id, kVolumeNameXattr, name, true);
  if (!st.ok()) return undo(st);
  auto bdev = s.make_bdev(name, id);
  if (!bdev.ok()) return undo(bdev.status());
  auto [it, inserted] = s.volumes.emplace(std::string(name), Volume{id, std::move(bdev.value())});
  SLUICE_RETURN_IF_ERROR(s.sync(fmt::format("{} {}", what, name)));
  return s.describe(it->first, it->second);
}

}  // namespace

Result<VolumeInfo> LvolStore::create_volume(std::string_view name, uint64_t size_bytes, bool thin) {
  Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  SLUICE_RETURN_IF_ERROR(s.check_open());
  SLUICE_RETURN_IF_ERROR(check_new_name(s, name));
  auto clusters = to_clusters(s, name, size_bytes);
  if (!clusters.ok()) return clusters.status();
  blob::CreateOptions co;
  co.size_clusters = *clusters;
  co.thin = thin;
  auto id = s.bs->create(co);
  if (!id.ok()) return in_volume(s, name, id.status());
  return adopt_new_blob(s, name, *id, "creating volume");
}

Status LvolStore::resize_volume(std::string_view name, uint64_t size_bytes) {
  Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  SLUICE_RETURN_IF_ERROR(s.check_open());
  auto v = s.find(name);
  if (!v.ok()) return v.status();
  auto clusters = to_clusters(s, name, size_bytes);
  if (!clusters.ok()) return clusters.status();
  auto bi = s.bs->info((*v)->id);
  if (!bi.ok()) return in_volume(s, name, bi.status());
  if (bi->read_only)
    return Status(Errc::permission, fmt::format("lvol store {}: volume {} is a snapshot, which cannot be resized", s.name, name));
  if (bi->size_clusters == *clusters) return Status::Ok();
  auto held = claim(s, name, **v, "resize");
  if (!held.ok()) return held.status();
  Status st = s.bs->resize((*v)->id, *clusters);
  if (!st.ok()) return in_volume(s, name, st);
  (*v)->bdev->set_num_blocks(*clusters * (s.cluster_size / s.io_unit));
  held->reset();
  return s.sync(fmt::format("resizing volume {}", name));
}

Status LvolStore::delete_volume(std::string_view name) {
  Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  SLUICE_RETURN_IF_ERROR(s.check_open());
  auto v = s.find(name);
  if (!v.ok()) return v.status();
  auto info = s.describe(std::string(name), **v);
  if (!info.ok()) return info.status();
  if (info->clones.size() > 1) {
    std::string list;
    for (auto& c : info->clones) list += (list.empty() ? "" : ", ") + c;
    return Status(Errc::busy, fmt::format("lvol store {}: snapshot {} has {} clones ({}); delete or inflate all but "
                                          "one of them first", s.name, name, info->clones.size(), list));
  }
  if (info->clones.size() == 1) {
    // The snapshot merges into its only clone, which must have no I/O going on.
    auto c = s.find(info->clones.front());
    if (c.ok() && (*c)->bdev->channel_count() != 0)
      return Status(Errc::busy, fmt::format("lvol store {}: snapshot {} merges into its clone {} when deleted, and {} "
                                            "is in use; close it first", s.name, name, info->clones.front(),
                                            (*c)->bdev->name()));
  }
  auto held = claim(s, name, **v, "delete");
  if (!held.ok()) return held.status();
  Status st = s.bs->remove((*v)->id);
  if (!st.ok()) return in_volume(s, name, st);
  (void)bdev::unregister((*v)->bdev->name());
  held->reset();
  s.volumes.erase(s.volumes.find(name));
  return s.sync(fmt::format("deleting volume {}", name));
}

Status LvolStore::rename_volume(std::string_view name, std::string_view new_name) {
  Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  SLUICE_RETURN_IF_ERROR(s.check_open());
  auto v = s.find(name);
  if (!v.ok()) return v.status();
  if (name == new_name) return Status::Ok();
  SLUICE_RETURN_IF_ERROR(check_new_name(s, new_name));
  auto held = claim(s, name, **v, "rename");
  if (!held.ok()) return held.status();
  const blob::BlobId id = (*v)->id;
  Status st = s.bs->set_xattr(id, kVolumeNameXattr, new_name, true);
  if (!st.ok()) return in_volume(s, name, st);
  auto bdev = s.make_bdev(new_name, id);
  if (!bdev.ok()) {
    (void)s.bs->set_xattr(id, kVolumeNameXattr, name, true);
    return in_volume(s, name, bdev.status());
  }
  (void)bdev::unregister((*v)->bdev->name());
  held->reset();
  s.volumes.erase(s.volumes.find(name));
  s.volumes.emplace(std::string(new_name), Volume{id, std::move(bdev.value())});
  return s.sync(fmt::format("renaming volume {} to {}", name, new_name));
}

Result<VolumeInfo> LvolStore::snapshot_volume(std::string_view volume, std::string_view snapshot_name) {
  Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  SLUICE_RETURN_IF_ERROR(s.check_open());
  auto v = s.find(volume);
  if (!v.ok()) return v.status();
  SLUICE_RETURN_IF_ERROR(check_new_name(s, snapshot_name));
  auto bi = s.bs->info((*v)->id);
  if (!bi.ok()) return in_volume(s, volume, bi.status());
  if (bi->read_only)
    return Status(Errc::invalid_argument,
                  fmt::format("lvol store {}: volume {} is already a snapshot; clone it instead", s.name, volume));
  auto sid = s.bs->snapshot((*v)->id);
  if (!sid.ok()) return in_volume(s, volume, sid.status());
  return adopt_new_blob(s, snapshot_name, *sid, "creating snapshot");
}

Result<VolumeInfo> LvolStore::clone_volume(std::string_view snapshot, std::string_view clone_name) {
  Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  SLUICE_RETURN_IF_ERROR(s.check_open());
  auto v = s.find(snapshot);
  if (!v.ok()) return v.status();
  SLUICE_RETURN_IF_ERROR(check_new_name(s, clone_name));
  auto bi = s.bs->info((*v)->id);
  if (!bi.ok()) return in_volume(s, snapshot, bi.status());
  if (!bi->read_only)
    return Status(Errc::invalid_argument,
                  fmt::format("lvol store {}: volume {} is not a snapshot; snapshot it and clone the snapshot", s.name,
                              snapshot));
  auto cid = s.bs->clone((*v)->id);
  if (!cid.ok()) return in_volume(s, snapshot, cid.status());
  return adopt_new_blob(s, clone_name, *cid, "creating clone");
}

Status LvolStore::inflate_volume(std::string_view name) {
  Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  SLUICE_RETURN_IF_ERROR(s.check_open());
  auto v = s.find(name);
  if (!v.ok()) return v.status();
  auto bi = s.bs->info((*v)->id);
  if (!bi.ok()) return in_volume(s, name, bi.status());
  if (bi->read_only)
    return Status(Errc::permission, fmt::format("lvol store {}: volume {} is a snapshot, which cannot be inflated", s.name, name));
  Status st = s.bs->inflate((*v)->id);
  if (!st.ok()) return in_volume(s, name, st);
  return s.sync(fmt::format("inflating volume {}", name));
}

Status LvolStore::decouple_volume(std::string_view name) {
  Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  SLUICE_RETURN_IF_ERROR(s.check_open());
  auto v = s.find(name);
  if (!v.ok()) return v.status();
  auto bi = s.bs->info((*v)->id);
  if (!bi.ok()) return in_volume(s, name, bi.status());
  if (bi->parent == 0)
    return Status(Errc::invalid_argument, fmt::format("lvol store {}: volume {} is not a clone; there is no parent to "
                                                      "decouple from", s.name, name));
  if (bi->read_only)
    return Status(Errc::permission, fmt::format("lvol store {}: volume {} is a snapshot, which cannot be decoupled", s.name, name));
  Status st = s.bs->decouple((*v)->id);
  if (!st.ok()) return in_volume(s, name, st);
  return s.sync(fmt::format("decoupling volume {}", name));
}

Result<VolumeInfo> LvolStore::volume(std::string_view name) const {
  Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  SLUICE_RETURN_IF_ERROR(s.check_open());
  auto v = s.find(name);
  if (!v.ok()) return v.status();
  return s.describe(std::string(name), **v);
}

std::vector<VolumeInfo> LvolStore::list_volumes() const {
  Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  std::vector<VolumeInfo> out;
  if (s.closed) return out;
  for (auto& [name, v] : s.volumes) {
    auto i = s.describe(name, v);
    if (i.ok()) out.push_back(std::move(i.value()));
  }
  return out;
}

}  // namespace sluice::lvol
