// FileSystem::format: an empty SluiceFS on a device (docs/format/sluicefs.md).
#include <fmt/format.h>

#include "base/clock.h"
#include "bdev/bdev.h"
#include "blob/blob.h"
#include "fs/device.h"
#include "fs/format.h"
#include "fs/fs.h"

namespace sluice::fs {

Status FileSystem::format(std::string_view device, const FormatOptions& opts) {
  register_probe_owner();  // so that a refusal names a SluiceFS image as one
  auto dev = resolve_device(device);
  if (!dev.ok()) return dev.status();
  const std::string name = dev->first;  // (clang 14 cannot capture structured bindings)
  const bool owned = dev->second;
  Status st = [&]() -> Status {
    blob::InitOptions io;
    io.cluster_size = opts.cluster_size;
    io.force = opts.force;
    auto bs = blob::Blobstore::init(name, io);
    if (!bs.ok() && bs.status().code() == Errc::exists) return bs.status();  // the refusal names the device
    if (!bs.ok()) return Status(bs.status().code(), fmt::format("format {}: {}", device, bs.status().message()));
    blob::CreateOptions co;
    co.thin = true;
    auto root = (*bs)->create(co);
    if (!root.ok()) return root.status();
    InodeState state;
    state.mtime_ns = clock::wall_ns();
    SLUICE_RETURN_IF_ERROR((*bs)->set_xattr(*root, kXattrIdentity, encode_identity(), true));
    SLUICE_RETURN_IF_ERROR((*bs)->set_xattr(*root, kXattrEntry, encode_entry({Kind::dir, 0, ""}), true));
    SLUICE_RETURN_IF_ERROR((*bs)->set_xattr(*root, kXattrState, encode_state(state), true));
    SLUICE_RETURN_IF_ERROR((*bs)->set_super_blob(*root));
    SLUICE_RETURN_IF_ERROR((*bs)->sync_md());
    return (*bs)->unload();
  }();
  if (owned) (void)bdev::unregister(name);
  return st;
}

}  // namespace sluice::fs
