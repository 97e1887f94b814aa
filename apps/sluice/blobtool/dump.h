// `sluice blob dump`: a MetadataScan rendered in full, as text or JSON.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "blobtool/text.h"

namespace sluice::blobtool {

// What a read-only load of the store rebuilt from that metadata (the checkpoint plus the
// journal), or why it could not.
struct LoadSummary {
  bool loaded = false;
  std::string error;
  uint64_t blobs = 0, next_id = 0, super_blob = 0;
  uint64_t total_clusters = 0, free_clusters = 0, dirty_clusters = 0;
  uint64_t journal_pages_replayed = 0;
};
LoadSummary load_summary(const std::string& bdev_name);

std::string dump_text(const MetadataScan& s, const LoadSummary* load = nullptr);
nlohmann::json dump_json(const MetadataScan& s, const LoadSummary* load = nullptr);

// Shared with check: "A (page 0)" and the like.
std::string stop_kind_name(StopKind k);

}  // namespace sluice::blobtool
