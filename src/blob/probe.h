// What a device holds, told before anything formats it: Blobstore::init (and so SluiceFS's
// format and the lvol store's create) refuses a device that is not blank unless forced, so no
// caller (the CLI, the RocksDB plugin's format=1, migrate, an RPC) destroys data by accident.
//
//   auto p = blob::probe_device("uring:/dev/sdb");       // a registered bdev's name
//   if (p.ok() && p->content == blob::Content::blank) ...
//   Status st = blob::check_blank("uring:/dev/sdb");     // Errc::exists naming what is there
//
// What a probe looks at, reading only (it writes nothing and takes no lock):
//  - Sluice's own labels: either super block copy, or the first checkpoint page (which
//    survives a zeroed super block). A store that loads (read-only, in memory) is a
//    `blobstore`, and its registered owners say whose it is; one that does not is `damaged`.
//  - Other formats' signatures, found by libblkid (filesystems, partition tables, RAID, LVM
//    and crypto members, swap, ...) where each keeps them, within the first 4 MiB and the
//    last 1 MiB: every common format keeps its primary label there.
//  - The same two windows for any non-zero byte: data of an unknown kind.
// `blank` means none of these. A probe cannot read a whole device (terabytes), so data that
// sits only between the two windows, under no label, is not seen.
//
// Threading: any thread. The device must not be claimed exclusively (a loaded store), or the
// probe fails with Errc::busy.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "blob/blob.h"

namespace sluice::blob {

enum class Content : uint8_t {
  blank,      // nothing found: safe to format
  blobstore,  // a Sluice blobstore that loads; Probe::owner says whose
  damaged,    // Sluice blobstore metadata that does not load (damaged, or a newer version)
  foreign,    // another format's signature (Probe::signatures)
  data,       // non-zero bytes under no label anyone recognizes
};
std::string_view content_name(Content c);  // "blank", "blobstore", ...

struct Probe {
  Content content = Content::blank;
  // blobstore: the registered owner that recognized its super blob ("sluicefs", "lvol"), or
  // empty when none did.
  std::string owner;
  // What is there, to finish "DEVICE holds ...": "lvol store 'pool' with 1 volume (db) in
  // blobstore 5e0c..., 1.0 GiB of 3.9 GiB used", "an ext4 filesystem (UUID ...)".
  std::string description;
  std::vector<std::string> signatures;  // libblkid's finds, one description each
};

// Reads and judges `bdev_name`. Fails only when the device cannot be opened or read.
Result<Probe> probe_device(std::string_view bdev_name);

// Ok if `bdev_name` is blank; otherwise Errc::exists, "DEVICE already holds <description>;
// formatting it would destroy that", or the probe's own error.
Status check_blank(std::string_view bdev_name);

// Users of the blobstore (SluiceFS, lvol stores) register an owner probe so that a probe can
// name what a store holds. Given the store, loaded read-only, and its super blob, it returns a
// description ("lvol store 'pool' with 2 volumes (a, b)") if the super blob is its own, or
// nothing. A store no owner claims is described by its super blob's attribute names.
using OwnerProbe = std::function<std::optional<std::string>(Blobstore& bs, BlobId super_blob)>;
void register_owner(std::string_view name, OwnerProbe probe);  // a second call for a name is ignored

// What the registered owner that claims `bs` says it is ("a SluiceFS image (...)"), or
// nothing when no owner claims the store (or it has no super blob).
std::optional<std::string> owner_description(Blobstore& bs);

// An internal attribute of the super blob: the ids of blobs removed with `sluice blob rm
// --force` from a store an owner claims, comma separated, so that the owner's fsck can say
// what went missing behind its back (docs/format/blobstore.md).
inline constexpr std::string_view kXattrForcedRemovals = "sluice.forced_rm";

}  // namespace sluice::blob
