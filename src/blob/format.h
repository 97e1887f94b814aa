// The blobstore's on-disk structures (docs/format/blobstore.md, version 1): the super block
// and the header shared by checkpoint and journal pages. Pure encoding; no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace sluice::blob {

inline constexpr uint32_t kPageSize = 4096;
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint32_t kPageHeaderSize = 64;
inline constexpr uint32_t kPagePayload = kPageSize - kPageHeaderSize;

using Uuid = std::array<uint8_t, 16>;
Uuid random_uuid();
std::string uuid_string(const Uuid& u);

struct SuperBlock {
  uint64_t generation = 0;
  Uuid uuid{};
  uint32_t page_size = kPageSize;
  uint32_t io_unit = 0;
  uint32_t cluster_size = 0;
  uint32_t ckpt_pages = 0;
  uint64_t device_pages = 0;
  uint64_t journal_start = 0;
  uint64_t journal_pages = 0;
  uint64_t data_start = 0;
  uint64_t num_clusters = 0;
  uint32_t active_ckpt = 0;
  bool clean = false;
  uint64_t ckpt_seq = 0;
  uint64_t journal_head_seq = 0;
  uint64_t journal_head_pos = 0;

  uint64_t ckpt_start(uint32_t slot) const { return 2 + uint64_t{slot} * ckpt_pages; }
  uint32_t pages_per_cluster() const { return cluster_size / kPageSize; }
};

// Writes the 4096-byte page image.
void encode_super(const SuperBlock& sb, char* page);
// Validates magic, version, CRC and internal consistency (regions inside the device, no
// overlaps): a corrupt or foreign page is an error, never trusted.
Result<SuperBlock> decode_super(const char* page, uint64_t device_pages);
// True when the page at least carries the blobstore magic (to tell "corrupt" from "foreign").
bool has_super_magic(const char* page);
// The fields as stored, unchecked: what a damaged copy says, for inspection (metadata_scan.h).
SuperBlock read_super_fields(const char* page);

enum class PageKind : uint32_t { checkpoint = 0x4b434c53 /* "SLCK" */, journal = 0x4e4a4c53 /* "SLJN" */ };

struct PageHeader {
  PageKind kind = PageKind::journal;
  Uuid uuid{};
  uint64_t seq = 0;
  uint64_t aux = 0;    // checkpoint: page index; journal: first sequence of the batch
  uint32_t count = 0;  // checkpoint: total pages; journal: pages in the batch
  uint32_t payload_len = 0;
};

// Fills header and CRC around a payload already placed at page + kPageHeaderSize.
void seal_page(const PageHeader& h, char* page);
// The header fields as stored, unchecked (kind is not read).
PageHeader read_page_header(const char* page);
// CRC-32C of a page with its 4-byte CRC field (at `crc_offset`) taken as zero.
uint32_t page_crc(const char* page, size_t crc_offset);
// Checks magic, CRC, UUID and payload bounds. Returns false for anything else (a stale,
// torn or foreign page), which callers treat as the end of valid data.
bool open_page(const char* page, PageKind kind, const Uuid& uuid, PageHeader* out);

}  // namespace sluice::blob
