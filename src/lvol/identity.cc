// What makes a blobstore an lvol store (docs/format/lvol.md, "The super blob").
#include <fmt/format.h>

#include "lvol/store_impl.h"

namespace sluice::lvol {

Result<Identity> read_identity(blob::Blobstore& bs, std::string_view bdev_name) {
  auto sb = bs.super_blob();
  if (!sb.ok())
    return Status(Errc::not_found,
                  fmt::format("bdev {} holds a blobstore but not an lvol store (no super blob)", bdev_name));
  auto info = bs.info(*sb);
  if (!info.ok()) return info.status();
  auto& x = info->internal_xattrs;
  auto name = x.find(std::string(kStoreNameXattr));
  auto version = x.find(std::string(kStoreVersionXattr));
  if (name == x.end() || version == x.end())
    return Status(Errc::not_found, fmt::format("bdev {} holds a blobstore but not an lvol store (its super blob "
                                               "belongs to another user)",
                                               bdev_name));
  if (version->second != kStoreVersion)
    return Status(Errc::not_supported, fmt::format("the lvol store on {} has format version {}; this Sluice reads {}",
                                                   bdev_name, version->second, kStoreVersion));
  Status st = check_name(name->second, "store name");
  if (!st.ok()) return Status(Errc::corrupt, fmt::format("the lvol store on {}: {}", bdev_name, st.message()));
  Identity id;
  id.super_id = *sb;
  id.name = name->second;
  if (auto u = x.find(std::string(kStoreUuidXattr)); u != x.end()) id.uuid = u->second;
  return id;
}

}  // namespace sluice::lvol
