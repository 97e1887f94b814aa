#include "blobtool/format_guard.h"

#include <fmt/format.h>

#include "base/size.h"
#include "blobtool/scan.h"

namespace sluice::blobtool {

Result<uint32_t> parse_cluster_size(const std::string& text) {
  auto cs = parse_size(text);
  if (!cs.ok()) return Status(Errc::invalid_argument, fmt::format("--cluster-size: {}", cs.status().message()));
  if (*cs < 4096 || *cs % 4096 != 0 || *cs > (1u << 30))
    return Status(Errc::invalid_argument, fmt::format("--cluster-size: {} is not a multiple of 4096 in [4K, 1G]", text));
  return static_cast<uint32_t>(*cs);
}

Status refuse_existing_store(const Device& dev) {
  auto scan = scan_metadata(dev);
  if (!scan.ok()) return scan.status();
  if (const auto* sb = scan->super())
    return Status(Errc::exists, fmt::format("{} already holds blobstore {} ({} clusters of {}); --force formats it "
                                            "anyway, destroying it",
                                            dev.spec(), blob::uuid_string(sb->uuid), sb->num_clusters,
                                            format_size(sb->cluster_size)));
  if (scan->copies[0].has_magic || scan->copies[1].has_magic)
    return Status(Errc::exists, fmt::format("{} holds a damaged or newer blobstore ({}); --force formats it anyway, "
                                            "destroying it",
                                            dev.spec(), scan->unusable().message()));
  return Status::Ok();
}

}  // namespace sluice::blobtool
