// The state behind an LvolStore (internal to src/lvol).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "bdev/bdev.h"
#include "blob/blob.h"
#include "lvol/lvol.h"
#include "lvol/lvol_bdev.h"

namespace sluice::lvol {

// Internal xattrs (docs/format/lvol.md).
inline constexpr std::string_view kStoreNameXattr = "lvs.name";
inline constexpr std::string_view kStoreUuidXattr = "lvs.uuid";
inline constexpr std::string_view kStoreVersionXattr = "lvs.version";
inline constexpr std::string_view kStoreVersion = "1";
inline constexpr std::string_view kVolumeNameXattr = "lvol.name";

struct Volume {
  blob::BlobId id = 0;
  std::shared_ptr<LvolBdev> bdev;  // registered as "<store>/<name>"
};

struct LvolStore::Impl {
  mutable std::mutex mu;  // serializes every operation on the store
  std::string name;
  std::string uuid;
  std::string bdev_name;
  std::shared_ptr<blob::Blobstore> bs;
  blob::BlobId super_id = 0;
  uint32_t cluster_size = 0;
  uint32_t io_unit = 0;
  bdev::Geometry base_geometry;
  std::map<std::string, Volume, std::less<>> volumes;
  bool closed = false;

  // Aliases made from a nested spec ("lvol:uring:/img/vol") that loaded this store: the last
  // one to go unloads it and removes `owned_base`.
  int spec_users = 0;
  std::string owned_base;

  std::string volume_bdev_name(std::string_view volume) const { return name + "/" + std::string(volume); }
  // Expects mu held.
  Status check_open() const;
  Result<Volume*> find(std::string_view volume);
  Result<VolumeInfo> describe(const std::string& volume_name, const Volume& v) const;
  // Makes and registers the bdev of a volume.
  Result<std::shared_ptr<LvolBdev>> make_bdev(std::string_view volume, blob::BlobId id);
  Status sync(std::string_view what);
};

struct StoreAccess {
  static LvolStore::Impl& impl(LvolStore& s) { return *s.impl_; }
  static std::shared_ptr<LvolStore> make(std::unique_ptr<LvolStore::Impl> impl) {
    return std::shared_ptr<LvolStore>(new LvolStore(std::move(impl)));
  }
};

// What the super blob says (identity.cc).
struct Identity {
  blob::BlobId super_id = 0;
  std::string name;
  std::string uuid;
};
// The store's identity: Errc::not_found when the blobstore is not an lvol store (no super
// blob, or one without lvs.name and lvs.version), not_supported for another store version,
// corrupt for a bad name. `bdev_name` is for messages.
Result<Identity> read_identity(blob::Blobstore& bs, std::string_view bdev_name);

// The process-wide table of loaded stores (registry.cc).
Status add_store(std::shared_ptr<LvolStore> store);
void remove_store(std::string_view name);
bool store_name_taken(std::string_view name);

// Both halves of "<store>/<volume>"-style names; the volume follows the last '/'.
inline std::pair<std::string_view, std::string_view> split_last_slash(std::string_view s) {
  auto slash = s.rfind('/');
  if (slash == std::string_view::npos) return {s, {}};
  return {s.substr(0, slash), s.substr(slash + 1)};
}

}  // namespace sluice::lvol
