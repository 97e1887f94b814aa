// `sluice blob ls` and `show`: the blobs of a loaded store, as tables or JSON.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "blob/blob.h"

namespace sluice::blobtool {

// The store and a one-line-per-blob listing.
std::string list_text(blob::Blobstore& bs, const std::string& spec);
nlohmann::json list_json(blob::Blobstore& bs, const std::string& spec);

// One blob in full: extents (runs of device clusters), attributes, clones. Errc::not_found
// for an unknown id.
Result<std::string> show_text(blob::Blobstore& bs, blob::BlobId id);
Result<nlohmann::json> show_json(blob::Blobstore& bs, blob::BlobId id);

}  // namespace sluice::blobtool
