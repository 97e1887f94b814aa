// Logical volume RPC methods, with SPDK's names and parameters. Stores and volumes live on
// their devices, so save_config writes no lvol calls: when a config recreates the base
// device, the store on it is found and loaded (the examine step, as in SPDK).
#include <fmt/format.h>

#include "base/size.h"
#include "blob/probe.h"
#include "daemon/daemon.h"
#include "lvol/lvol.h"

namespace sluice::daemon {
namespace {

using rpc::Json;
using rpc::Params;

std::shared_ptr<lvol::LvolStore> store_param(const Params& p) {
  const std::string uuid = p.str("uuid", ""), name = p.str("lvs_name", "");
  if (uuid.empty() == name.empty()) throw rpc::Error{rpc::kInvalidParams, "give exactly one of uuid and lvs_name"};
  if (!name.empty()) {
    if (auto s = lvol::LvolStore::find(name)) return s;
    throw rpc::Error{-19, fmt::format("no lvol store named {}", name)};
  }
  for (const std::string& n : lvol::LvolStore::list_stores())
    if (auto s = lvol::LvolStore::find(n); s && s->info().uuid == uuid) return s;
  throw rpc::Error{-19, fmt::format("no lvol store with uuid {}", uuid)};
}

// "store/volume" (the volume's bdev name) into its store and the volume name.
std::pair<std::shared_ptr<lvol::LvolStore>, std::string> volume_param(const std::string& bdev_name) {
  const auto slash = bdev_name.find('/');
  if (slash == std::string::npos)
    throw rpc::Error{rpc::kInvalidParams, fmt::format("'{}' is not a volume's bdev name (STORE/VOLUME)", bdev_name)};
  auto store = lvol::LvolStore::find(bdev_name.substr(0, slash));
  if (!store) throw rpc::Error{-19, fmt::format("no lvol store named {}", bdev_name.substr(0, slash))};
  return {store, bdev_name.substr(slash + 1)};
}

uint64_t size_param(const Params& p) {
  const Json* mib = p.raw("size_in_mib");
  const Json* bytes = p.raw("size");
  if ((mib == nullptr) == (bytes == nullptr)) throw rpc::Error{rpc::kInvalidParams, "give exactly one of size_in_mib and size"};
  const uint64_t v = mib != nullptr ? p.u64("size_in_mib") : p.u64("size");
  if (v == 0 || (mib != nullptr && v > (uint64_t{1} << 44))) throw rpc::Error{rpc::kInvalidParams, "size out of range"};
  return mib != nullptr ? v * kMiB : v;
}

Json store_json(const lvol::LvolStore& s) {
  const lvol::StoreInfo i = s.info();
  return Json{{"uuid", i.uuid},
              {"name", i.name},
              {"base_bdev", i.bdev_name},
              {"total_data_clusters", i.total_bytes / i.cluster_size},
              {"free_clusters", i.free_bytes / i.cluster_size},
              {"block_size", i.block_size},
              {"cluster_size", i.cluster_size},
              {"volumes", i.volumes}};
}

void add_lvol_methods(rpc::Registry& r) {
  auto add = [&r](const char* name, rpc::Handler h) { (void)r.add(name, std::move(h)); };
  add("bdev_lvol_create_lvstore", [](const Params& p) {
    const std::string bdev_name = p.str("bdev_name"), lvs_name = p.str("lvs_name");
    const uint64_t cluster = p.u64("cluster_sz", 4u << 20);  // SPDK's default cluster size
    p.raw("clear_method");                                   // Sluice clears the data area when formatting
    p.raw("num_md_pages_per_cluster_ratio");                 // Sluice sizes its metadata itself
    p.done();
    if (cluster < 4096 || cluster % 4096 != 0 || cluster > (1u << 30))
      throw rpc::Error{rpc::kInvalidParams, fmt::format("cluster_sz {} is not a multiple of 4096 up to 1 GiB", cluster)};
    auto store = lvol::LvolStore::create(bdev_name, lvs_name, static_cast<uint32_t>(cluster));
    rpc::throw_if_error(store.status());
    return Json((*store)->info().uuid);
  });
  add("bdev_lvol_get_lvstores", [](const Params& p) {
    Json out = Json::array();
    if (p.raw("uuid") != nullptr || p.raw("lvs_name") != nullptr) {
      out.push_back(store_json(*store_param(p)));
    } else {
      for (const std::string& n : lvol::LvolStore::list_stores())
        if (auto s = lvol::LvolStore::find(n)) out.push_back(store_json(*s));
    }
    p.done();
    return out;
  });
  add("bdev_lvol_create", [](const Params& p) {
    const std::string name = p.str("lvol_name");
    const uint64_t size = size_param(p);
    const bool thin = p.flag("thin_provision", false);
    p.raw("clear_method");
    auto store = store_param(p);
    p.done();
    auto v = store->create_volume(name, size, thin);
    rpc::throw_if_error(v.status());
    return Json(v->bdev_name);
  });
  add("bdev_lvol_snapshot", [](const Params& p) {
    auto [store, volume] = volume_param(p.str("lvol_name"));
    const std::string snapshot = p.str("snapshot_name");
    p.done();
    auto v = store->snapshot_volume(volume, snapshot);
    rpc::throw_if_error(v.status());
    return Json(v->bdev_name);
  });
  add("bdev_lvol_clone", [](const Params& p) {
    auto [store, snapshot] = volume_param(p.str("snapshot_name"));
    const std::string clone = p.str("clone_name");
    p.done();
    auto v = store->clone_volume(snapshot, clone);
    rpc::throw_if_error(v.status());
    return Json(v->bdev_name);
  });
  add("bdev_lvol_resize", [](const Params& p) {
    auto [store, volume] = volume_param(p.str("name"));
    const uint64_t size = size_param(p);
    p.done();
    rpc::throw_if_error(store->resize_volume(volume, size));
    return Json(true);
  });
  add("bdev_lvol_delete", [](const Params& p) {
    auto [store, volume] = volume_param(p.str("name"));
    p.done();
    rpc::throw_if_error(store->delete_volume(volume));
    return Json(true);
  });
}

// A device the daemon just made may hold an lvol store: load it, as SPDK's examine does.
void examine_lvol_store(const std::string& bdev_name) {
  lvol::register_probe_owner();
  auto probe = blob::probe_device(bdev_name);
  if (!probe.ok() || probe->content != blob::Content::blobstore || probe->owner != lvol::kProbeOwner) return;
  auto store = lvol::LvolStore::load(bdev_name);
  if (!store.ok()) throw rpc::Error{rpc::kInternalError, fmt::format("{} holds an lvol store that does not load: {}",
                                                                     bdev_name, store.status().message())};
}

void unload_stores() {
  for (const std::string& n : lvol::LvolStore::list_stores())
    if (auto s = lvol::LvolStore::find(n)) {
      if (Status st = s->unload(); !st.ok()) s->abandon();  // still open: the next load recovers
    }
}

}  // namespace

Module lvol_module() {
  return Module{"lvol",
                [](rpc::Registry& r) {
                  add_lvol_methods(r);
                  add_examiner(examine_lvol_store);
                },
                unload_stores};
}

}  // namespace sluice::daemon
