// The "lvol" device spec scheme: bdev::create("lvol:STORE/VOLUME") or
// bdev::create("lvol:DEVICE/VOLUME") makes an alias of a volume's bdev under the name
// create() chooses. The alias holds the volume open (a shared handle on "<store>/<volume>"),
// so the volume cannot be deleted, resized or renamed under it, and goes away when the volume
// is hot-removed. With a device spec, the device is created and its store loaded first unless
// a loaded store already sits on a device of that spec; the last alias that loaded a store
// this way unloads it and removes the device. DEVICE is what every command takes: a spec, or a
// path meaning uring:PATH (bdev/device_spec.h), so lvol:/tmp/img/vol1 is lvol:uring:/tmp/img/vol1.
// The alias takes one option after the volume, mt=BYTES (a smaller maximum transfer).
#include <atomic>

#include <fmt/format.h>

#include "base/log.h"
#include "bdev/device_spec.h"
#include "bdev/spec.h"
#include "lvol/store_impl.h"

namespace sluice::lvol {
namespace {

void release_spec_user(const std::shared_ptr<LvolStore>& store) {
  LvolStore::Impl& s = StoreAccess::impl(*store);
  std::string base;
  {
    std::lock_guard lock(s.mu);
    if (--s.spec_users > 0) return;
    base = s.owned_base;
  }
  Status st = store->unload();
  if (!st.ok() && st.code() != Errc::aborted) {
    log::notice("lvol store {} stays loaded: {}", store->name(), st.to_string());
    return;
  }
  if (!base.empty()) (void)bdev::unregister(base);
}

class LvolAlias final : public LvolBdev {
 public:
  LvolAlias(std::string name, std::string spec, const bdev::Geometry& g, std::shared_ptr<blob::Blobstore> bs,
            blob::BlobId id, std::unique_ptr<bdev::BdevDesc> pin, std::shared_ptr<std::atomic<bool>> linked,
            std::shared_ptr<LvolStore> loaded_by_spec)
      : LvolBdev(std::move(name), std::move(spec), g, std::move(bs), id),
        pin_(std::move(pin)),
        linked_(std::move(linked)),
        loaded_by_spec_(std::move(loaded_by_spec)) {}

  ~LvolAlias() override {
    linked_->store(false);
    pin_.reset();
    if (loaded_by_spec_) release_spec_user(loaded_by_spec_);
  }

  void on_unregistered() override { linked_->store(false); }

 private:
  std::unique_ptr<bdev::BdevDesc> pin_;  // a shared handle on the volume's own bdev
  std::shared_ptr<std::atomic<bool>> linked_;
  std::shared_ptr<LvolStore> loaded_by_spec_;
};

std::shared_ptr<LvolStore> find_store_on(std::string_view device_spec) {
  for (auto& name : LvolStore::list_stores()) {
    auto store = LvolStore::find(name);
    if (!store) continue;
    auto dev = bdev::find(store->info().bdev_name);
    if (dev && dev->spec() == device_spec) return store;
  }
  return nullptr;
}

Result<std::shared_ptr<bdev::Bdev>> make_alias(const bdev::SpecArgs& args, const std::shared_ptr<LvolStore>& store,
                                               std::string_view volume, bool loaded_by_spec) {
  LvolStore::Impl& s = StoreAccess::impl(*store);
  std::lock_guard lock(s.mu);
  SLUICE_RETURN_IF_ERROR(s.check_open());
  auto v = s.find(volume);
  if (!v.ok()) return v.status();
  bdev::Geometry geometry = (*v)->bdev->geometry();
  SLUICE_RETURN_IF_ERROR(args.apply_common(geometry));  // mt: a smaller maximum transfer
  auto linked = std::make_shared<std::atomic<bool>>(true);
  bdev::OpenOptions o;
  o.on_remove = [linked, alias = args.name] {
    if (linked->exchange(false)) (void)bdev::unregister(alias);
  };
  auto pin = bdev::open((*v)->bdev->name(), o);
  if (!pin.ok())
    return Status(pin.status().code(), fmt::format("lvol: cannot open volume {}: {}", (*v)->bdev->name(),
                                                   pin.status().message()));
  if (loaded_by_spec) ++s.spec_users;
  return std::shared_ptr<bdev::Bdev>(new LvolAlias(args.name, "lvol:" + args.target, geometry, s.bs,
                                                   (*v)->id, std::move(pin.value()), std::move(linked),
                                                   loaded_by_spec ? store : nullptr));
}

Result<std::shared_ptr<bdev::Bdev>> make_lvol_bdev(const bdev::SpecArgs& args) {
  auto [where, volume_and_options] = split_last_slash(args.target);
  // Options follow the volume ("lvol:pool/db?mt=64K"); a device spec's own stay with it.
  auto split = bdev::split_options(volume_and_options);
  if (!split.ok()) return Status(split.status().code(), "lvol: " + split.status().message());
  const std::string_view volume = split->target;
  bdev::SpecArgs alias_args = args;
  alias_args.options.insert(split->options.begin(), split->options.end());
  SLUICE_RETURN_IF_ERROR(alias_args.check_known({"mt"}));
  if (where.empty() || volume.empty())
    return Status(Errc::invalid_argument,
                  fmt::format("lvol: '{}' names no volume; want lvol:STORE/VOLUME or lvol:DEVICE/VOLUME "
                              "(e.g. lvol:/tmp/img/vol1)", args.target));
  const bool plain = where.find(':') == std::string_view::npos;
  if (plain) {
    if (auto store = LvolStore::find(where)) return make_alias(alias_args, store, volume, false);
  }
  const std::string device = bdev::device_spec(where);
  if (auto store = find_store_on(device)) {
    bool shared;
    {
      LvolStore::Impl& s = StoreAccess::impl(*store);
      std::lock_guard lock(s.mu);
      shared = s.spec_users > 0;  // loaded by another spec: that load is shared, not ours to start
    }
    return make_alias(alias_args, store, volume, shared);
  }
  std::string base = args.name + "_base";
  auto created = bdev::create(device, base);
  if (!created.ok() && plain && created.status().code() == Errc::not_found)  // neither a store nor a path
    return Status(Errc::not_found, fmt::format("lvol: '{}' is neither a loaded lvol store nor a device; name the device "
                                               "the store is on: lvol:PATH/{} or lvol:SPEC/{}",
                                               where, volume, volume));
  if (!created.ok())
    return Status(created.status().code(), fmt::format("lvol: device '{}': {}", where, created.status().message()));
  auto loaded = LvolStore::load(base);
  if (!loaded.ok()) {
    (void)bdev::unregister(base);
    return loaded.status();
  }
  std::shared_ptr<LvolStore> store = std::move(loaded.value());
  {
    LvolStore::Impl& s = StoreAccess::impl(*store);
    std::lock_guard lock(s.mu);
    s.owned_base = base;
  }
  auto alias = make_alias(alias_args, store, volume, true);
  if (!alias.ok()) {
    (void)store->unload();
    (void)bdev::unregister(base);
  }
  return alias;
}

// Modules register themselves (docs/design.md); register_spec_scheme() covers programs that link
// this library without touching anything else in this file first.
[[maybe_unused]] const bool kSchemeRegistered = register_spec_scheme().ok();

}  // namespace

Status register_spec_scheme() {
  static const Status registered = [] {
    Status st = bdev::register_scheme("lvol", make_lvol_bdev);
    return st.code() == Errc::exists ? Status::Ok() : st;
  }();
  return registered;
}

}  // namespace sluice::lvol
