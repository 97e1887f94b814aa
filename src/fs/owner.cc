// SluiceFS as a blobstore owner (blob/probe.h): how a probe tells a SluiceFS image from other
// stores, and names it when a format refuses to destroy it.
#include <fmt/format.h>

#include "blob/probe.h"
#include "fs/format.h"
#include "fs/fs.h"

namespace sluice::fs {
namespace {

std::optional<std::string> describe(blob::Blobstore& bs, blob::BlobId super) {
  auto ident = bs.get_xattr(super, kXattrIdentity, true);
  if (!ident.ok()) return std::nullopt;
  Status st = check_identity(*ident);
  if (st.code() == Errc::wrong_format) return std::nullopt;
  if (!st.ok()) return fmt::format("a SluiceFS image this Sluice cannot read ({})", st.message());
  return fmt::format("a SluiceFS image ({} files and directories)", bs.list().size());
}

// Modules register themselves (docs/design.md); register_probe_owner() covers programs that
// link this library without touching anything else in this file first.
[[maybe_unused]] const bool kRegistered = (register_probe_owner(), true);

}  // namespace

void register_probe_owner() { blob::register_owner(kProbeOwner, describe); }

}  // namespace sluice::fs
