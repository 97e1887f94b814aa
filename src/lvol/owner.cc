// lvol stores as a blobstore owner (blob/probe.h): how a probe names an lvol store when a
// format refuses to destroy it.
#include <algorithm>

#include <fmt/format.h>

#include "blob/probe.h"
#include "lvol/store_impl.h"

namespace sluice::lvol {
namespace {

std::optional<std::string> describe(blob::Blobstore& bs, blob::BlobId super) {
  auto id = read_identity(bs, "the probed device");
  if (!id.ok() && id.status().code() == Errc::not_found) return std::nullopt;
  if (!id.ok()) return fmt::format("an lvol store this Sluice cannot read ({})", id.status().message());
  std::vector<std::string> volumes;
  for (blob::BlobId b : bs.list()) {
    if (b == super) continue;
    auto name = bs.get_xattr(b, kVolumeNameXattr, true);
    volumes.push_back(name.ok() ? *name : fmt::format("unnamed-{}", b));
  }
  std::sort(volumes.begin(), volumes.end());
  std::string names;
  for (size_t i = 0; i < volumes.size() && i < 8; ++i) names += (i ? ", " : "") + volumes[i];
  if (volumes.size() > 8) names += ", ...";
  return fmt::format("lvol store '{}' with {} volume(s){}", id->name, volumes.size(),
                     volumes.empty() ? "" : " (" + names + ")");
}

// Modules register themselves (docs/design.md); register_probe_owner() covers programs that
// link this library without touching anything else in this file first.
[[maybe_unused]] const bool kRegistered = (register_probe_owner(), true);

}  // namespace

void register_probe_owner() { blob::register_owner(kProbeOwner, describe); }

}  // namespace sluice::lvol
