#include "rocksdb/sluice_mounts.h"

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "base/log.h"
#include "bdev/bdev.h"
#include "blob/probe.h"
#include "lvol/lvol.h"

namespace sluice::rocksdb_plugin {

class MountTable {
 public:
  static MountTable& instance() {
    static MountTable* table = [] {
      std::atexit([] { exiting.store(true); });  // runs before the exit-time destructors of
      return new MountTable();                   // whoever holds a mount (made after this)
    }();
    return *table;
  }

  Result<std::shared_ptr<Mount>> acquire(const PluginUri& uri) {
    std::lock_guard lock(mu_);
    auto it = mounts_.find(uri.device);
    if (it == mounts_.end()) {
      auto made = mount(uri);
      if (!made.ok()) return made.status();
      it = mounts_.emplace(uri.device, std::move(made.value())).first;
    }
    Mount* m = it->second.get();
    ++m->users_;
    return std::shared_ptr<Mount>(m, [this](Mount* p) { release(p); });
  }

 private:
  // Unmounting under the lock: a concurrent acquire of the same device waits for it, so the
  // device is never claimed twice.
  void release(Mount* m) {
    std::lock_guard lock(mu_);
    if (--m->users_ > 0) return;
    // At exit the calling thread's thread_local state (its SluiceFS and blobstore channels) is
    // already destroyed: unmount from a fresh thread instead.
    if (exiting.load()) {
      std::thread([this, m] { unmount(m); }).join();
    } else {
      unmount(m);
    }
  }

  void unmount(Mount* m) {
    Status st = m->fs_->unmount();
    if (!st.ok()) {
      // A failed device (or a simulated power cut): let go of it; the next mount recovers.
      log::warn("SluiceFS: unmounting {}: {}", m->device_, st.to_string());
      m->fs_->abandon();
    }
    m->fs_.reset();
    if (!m->owned_bdev_.empty()) (void)bdev::unregister(m->owned_bdev_);
    mounts_.erase(m->device_);
  }

  static bool is_malloc(std::string_view device) { return device.substr(0, 7) == "malloc:"; }

  static Status cannot_mount(const PluginUri& uri, const Status& st) {
    return Status(st.code(), fmt::format("SluiceFS: cannot mount '{}': {}", uri.device, st.message()));
  }

  // The device holds no SluiceFS (`mount_error` says so). format=1 formats a blank device and
  // nothing else (FileSystem::format refuses anything else too): a store, a filesystem or data
  // is someone's, and stays as it is. Ok: formatted.
  static Status format_if_blank(const PluginUri& uri, const std::string& name, const Status& mount_error) {
    auto probe = blob::probe_device(name);
    if (!probe.ok()) return cannot_mount(uri, mount_error);
    if (probe->content != blob::Content::blank)
      return Status(Errc::wrong_format,
                    fmt::format("SluiceFS: cannot mount '{}': not a SluiceFS image: it holds {}{}", uri.device,
                                probe->description,
                                uri.format ? "; format=1 formats only a blank device, and will not destroy it" : ""));
    if (!uri.format)
      return Status(Errc::wrong_format, fmt::format("SluiceFS: cannot mount '{}': not a SluiceFS image: the device "
                                                    "is blank (add ?format=1 to the URI to format it)",
                                                    uri.device));
    log::notice("SluiceFS: formatting {} (format=1, and the device is blank)", uri.device);
    Status st = fs::FileSystem::format(name);
    if (!st.ok()) return Status(st.code(), fmt::format("SluiceFS: formatting {}: {}", uri.device, st.message()));
    return st;
  }

  static Result<std::unique_ptr<Mount>> mount(const PluginUri& uri) {
    (void)lvol::register_spec_scheme();  // lvol:STORE/VOLUME specs
    lvol::register_probe_owner();        // a refused format=1 names an lvol store as one
    auto m = std::make_unique<Mount>();
    m->device_ = uri.device;
    std::string name = uri.device;
    if (!bdev::find(uri.device)) {
      auto created = bdev::create(uri.device);
      if (!created.ok())
        return Status(created.status().code(),
                      fmt::format("SluiceFS: cannot open device '{}': {}", uri.device, created.status().message()));
      name = m->owned_bdev_ = *created;
    }
    auto fail = [&](Status st) -> Status {
      if (!m->owned_bdev_.empty()) (void)bdev::unregister(m->owned_bdev_);
      return st;
    };
    if (is_malloc(uri.device)) {
      Status st = fs::FileSystem::format(name);
      if (!st.ok()) return fail(Status(st.code(), fmt::format("SluiceFS: formatting {}: {}", uri.device, st.message())));
    }
    fs::MountOptions mo;
    mo.read_cache_bytes = uri.cache_bytes;
    mo.reserve_bytes = uri.reserve_bytes;
    auto mounted = fs::FileSystem::mount(name, mo);
    if (!mounted.ok() && mounted.status().code() == Errc::wrong_format) {
      if (Status st = format_if_blank(uri, name, mounted.status()); !st.ok()) return fail(st);
      mounted = fs::FileSystem::mount(name, mo);
    }
    if (!mounted.ok()) return fail(cannot_mount(uri, mounted.status()));
    m->fs_ = std::move(mounted.value());
    m->block_size_ = m->fs_->statfs().block_size;
    if (m->block_size_ == 0) m->block_size_ = 4096;
    return m;
  }

  static inline std::atomic<bool> exiting{false};
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Mount>, std::less<>> mounts_;
};

Result<std::shared_ptr<Mount>> acquire_mount(const PluginUri& uri) { return MountTable::instance().acquire(uri); }

}  // namespace sluice::rocksdb_plugin
