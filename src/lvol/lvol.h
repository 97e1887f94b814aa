// Logical volumes: named, resizable, thin or thick block devices carved out of one
// blobstore, with snapshots and copy-on-write clones.
//
//   auto lvs = lvol::LvolStore::create("nvme0n1", "pool", 1 << 20);  // or ::load("nvme0n1")
//   (*lvs)->create_volume("db", 64ull << 30, /*thin=*/true);          // bdev "pool/db"
//   auto desc = bdev::open("pool/db");                               // ordinary bdev I/O
//
// - A store is one blobstore on one bdev, plus a super blob naming it (docs/format/lvol.md).
//   Loaded stores are registered process-wide by name; names are unique.
// - Every volume (snapshots included) is a bdev registered as "<store>/<volume>" while its
//   store is loaded. Snapshots are read-only devices.
// - The spec scheme "lvol" (bdev::create("lvol:pool/db")) makes an alias device of a volume
//   under the name create() chooses; "lvol:SPEC/VOLUME", where SPEC names a device
//   ("lvol:uring:/tmp/img/db"), creates that device and loads its store first (unless a store
//   on a device of that spec is loaded), and the last alias that loaded them unloads both.
//   An alias holds the volume open.
// - Metadata operations are synchronous and durable when they return (each ends with a
//   metadata sync). If only that final sync fails, the change is in effect in memory but may
//   not survive a crash; the error says so.
// - A volume whose bdev has open handles (aliases included) cannot be deleted, resized or
//   renamed (Errc::busy): the bdev's geometry and name are fixed while it is open. Snapshots,
//   clones, inflate and decouple work on open volumes (the blobstore pauses their I/O briefly;
//   do not call them from the only thread polling that volume's channels).
// - Volume bdevs: block size = the store's io unit, max transfer = one cluster, the base's
//   queue depth and buffer alignment; snapshots support only read, flush and reset. A FLUSH
//   first commits metadata when the channel wrote since its last flush (first writes to thin
//   or cloned clusters allocate them in memory only), synchronously on the submitting thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sluice::lvol {

inline constexpr size_t kMaxNameLength = 63;
// Store and volume names: 1 to 63 characters of [A-Za-z0-9._-]. `what` names the thing in
// the error ("volume name", "store name").
Status check_name(std::string_view name, std::string_view what = "name");

struct VolumeInfo {
  std::string name;
  std::string bdev_name;  // "<store>/<name>"
  uint64_t size_bytes = 0;
  uint64_t allocated_bytes = 0;  // clusters this volume owns (not those it reads from a snapshot)
  bool thin = false;
  bool snapshot = false;            // read-only, made by snapshot()
  std::string parent;               // the snapshot this volume reads unwritten clusters from
  std::vector<std::string> clones;  // snapshots: the volumes that read from it
};

struct StoreInfo {
  std::string name;
  std::string uuid;  // 8-4-4-4-12 hex, fixed at create()
  std::string bdev_name;
  uint32_t cluster_size = 0;
  uint32_t block_size = 0;  // of every volume: the store's io unit
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t volumes = 0;
};

class LvolStore {
 public:
  // Formats `bdev_name` as a new store. cluster_size: a multiple of 4096 (bytes). Only a
  // blank device unless `force` (blob/probe.h): anything else is refused with Errc::exists
  // and a message that names it.
  static Result<std::shared_ptr<LvolStore>> create(std::string_view bdev_name, std::string_view store_name,
                                                   uint32_t cluster_size = 1u << 20, bool force = false);
  // Opens the store on `bdev_name` (recovering its blobstore after a crash) and registers its
  // volumes' bdevs. A blobstore that is not an lvol store is refused untouched.
  static Result<std::shared_ptr<LvolStore>> load(std::string_view bdev_name);
  // A loaded store by name, or null.
  static std::shared_ptr<LvolStore> find(std::string_view store_name);
  static std::vector<std::string> list_stores();

  ~LvolStore();  // does not unload: a loaded store stays registered until unload()/abandon()
  LvolStore(const LvolStore&) = delete;
  LvolStore& operator=(const LvolStore&) = delete;

  // Unregisters the volumes' bdevs and unloads the blobstore cleanly. Refused (Errc::busy)
  // while any volume is open. Afterwards every operation fails with Errc::aborted.
  Status unload();
  // As if the process died here: volume bdevs are hot-removed (open handles see
  // Errc::aborted) and the blobstore is released without writing anything; the next load()
  // recovers. For crash tests and for giving up on a failed device.
  void abandon();

  StoreInfo info() const;
  const std::string& name() const;

  // size_bytes is rounded up to whole clusters. Thin volumes allocate on first write.
  Result<VolumeInfo> create_volume(std::string_view name, uint64_t size_bytes, bool thin = false);
  Status resize_volume(std::string_view name, uint64_t size_bytes);
  // Refused while open, and for a snapshot with more than one clone (a snapshot with one
  // clone is merged into it).
  Status delete_volume(std::string_view name);
  Status rename_volume(std::string_view name, std::string_view new_name);
  // A read-only snapshot of `volume` named `snapshot_name`; the volume becomes its clone.
  Result<VolumeInfo> snapshot_volume(std::string_view volume, std::string_view snapshot_name);
  // A writable thin clone of a snapshot.
  Result<VolumeInfo> clone_volume(std::string_view snapshot, std::string_view clone_name);
  // Copies every cluster the volume reads from its snapshots: it no longer has a parent.
  Status inflate_volume(std::string_view name);
  // Copies the clusters the volume reads from its parent; its parent becomes the parent's.
  Status decouple_volume(std::string_view name);

  Result<VolumeInfo> volume(std::string_view name) const;
  std::vector<VolumeInfo> list_volumes() const;  // sorted by name

  struct Impl;  // src/lvol/store_impl.h

 private:
  friend struct StoreAccess;  // src/lvol internals
  explicit LvolStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The name under which lvol stores are recognized in a device probe (blob/probe.h:
// Probe::owner), and the registration that makes probes name them (create() and load() do it;
// programs that probe devices without either call it themselves).
inline constexpr std::string_view kProbeOwner = "lvol";
void register_probe_owner();

// Registers the "lvol" device spec scheme with the bdev layer. Idempotent; create() and
// load() call it, and programs that accept device specs call it at startup.
Status register_spec_scheme();

}  // namespace sluice::lvol
