// Formatting shared by the blob tool's reports: records, cluster lists and attribute values,
// as one line of text or as JSON.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "blob/metadata_scan.h"
#include "blob/records.h"

namespace sluice::blobtool {

// The metadata walker's report (blob/metadata_scan.h), as every report here names it.
using blob::CheckpointReport;
using blob::JournalBatch;
using blob::JournalReport;
using blob::MetadataScan;
using blob::PageReport;
using blob::StopKind;
using blob::SuperCopy;

// "A"/"B".
inline char copy_letter(int copy) { return copy == 0 ? 'A' : 'B'; }

// A quoted string with anything unprintable (and '"', '\\') escaped as \xNN, \", \\.
std::string escaped(std::string_view bytes);
// A JSON string when the bytes are valid UTF-8 without control characters, else {"hex": "..."}.
nlohmann::json json_bytes(std::string_view bytes);
// "0-5,9,12-20" for a list of cluster numbers (sorted and collapsed into runs).
std::string cluster_ranges(std::vector<uint32_t> clusters);
// "thin|read-only|snapshot", or "-" for none; unknown bits as "0x..".
std::string blob_flags(uint32_t flags);

// "CREATE", "EXTENT", ...
std::string record_type_name(blob::RecordType t);
// One record on one line, e.g. "EXTENT blob=3 clusters=[0,+4) -> device 17..20".
std::string record_text(const blob::Record& r);
nlohmann::json record_json(const blob::Record& r);

}  // namespace sluice::blobtool
