// The process-wide table of mounted SluiceFS devices: one mount per device, shared by every
// plugin FileSystem (and every file) that uses it, unmounted when the last user lets go.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "fs/fs.h"
#include "rocksdb/sluice_uri.h"

namespace sluice::rocksdb_plugin {

class Mount {
 public:
  fs::FileSystem& fs() const { return *fs_; }
  const std::string& device() const { return device_; }  // the spec or name from the URI
  uint32_t block_size() const { return block_size_; }

 private:
  friend class MountTable;
  std::string device_;
  std::string owned_bdev_;  // registered by the plugin: unregistered after unmount
  std::unique_ptr<fs::FileSystem> fs_;
  uint32_t block_size_ = 4096;
  int users_ = 0;
};

// Mounts uri.device (creating the bdev from its spec unless a bdev of that name is already
// registered), or shares the existing mount. The pointer's deleter releases the mount.
Result<std::shared_ptr<Mount>> acquire_mount(const PluginUri& uri);

}  // namespace sluice::rocksdb_plugin
