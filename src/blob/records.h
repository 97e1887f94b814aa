// Metadata records: the one language of the journal and the checkpoint
// (docs/format/blobstore.md, "Records"). Live operations, recovery and checkpoints all
// speak it, so there is exactly one way state changes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sluice::blob {

enum class RecordType : uint16_t {
  create = 1,
  remove = 2,
  resize = 3,
  extent = 4,
  xattr_set = 5,
  xattr_remove = 6,
  set_parent = 7,
  set_flags = 8,
  next_id = 9,
  dirty = 10,
  clean = 11,
  super_blob = 12,
};

inline constexpr uint32_t kFlagThin = 1;
inline constexpr uint32_t kFlagReadOnly = 2;
inline constexpr uint32_t kFlagSnapshot = 4;
inline constexpr uint32_t kKnownFlags = kFlagThin | kFlagReadOnly | kFlagSnapshot;

inline constexpr size_t kMaxXattrName = 255;
inline constexpr size_t kMaxXattrValue = 3584;
inline constexpr size_t kMaxClustersPerRecord = 960;  // keeps DIRTY/CLEAN within a page

struct Record {
  RecordType type = RecordType::create;
  uint64_t id = 0;     // the blob (create..set_flags, super_blob) or the next id (next_id)
  uint64_t value = 0;  // create/resize: size in clusters; extent: first blob cluster; set_parent/create: parent
  uint64_t parent = 0;
  uint32_t flags = 0;     // create, set_flags
  uint32_t count = 0;     // extent: run length
  uint32_t cluster = 0;   // extent: first device cluster + 1, 0 = unallocated
  bool internal = false;  // xattr_*
  std::string name, data;         // xattr_*
  std::vector<uint32_t> clusters;  // dirty, clean

  static Record make_create(uint64_t id, uint32_t flags, uint64_t parent, uint64_t size);
  static Record make_remove(uint64_t id);
  static Record make_resize(uint64_t id, uint64_t size);
  static Record make_extent(uint64_t id, uint64_t first, uint32_t count, uint32_t cluster_plus1);
  static Record make_xattr_set(uint64_t id, bool internal, std::string_view name, std::string_view value);
  static Record make_xattr_remove(uint64_t id, bool internal, std::string_view name);
  static Record make_set_parent(uint64_t id, uint64_t parent);
  static Record make_set_flags(uint64_t id, uint32_t flags);
  static Record make_next_id(uint64_t next);
  static Record make_super_blob(uint64_t id);
  static Record make_clusters(RecordType dirty_or_clean, std::vector<uint32_t> clusters);
};

// Appends the record's encoding (type, length, body). Its size is at most a page payload.
void encode_record(const Record& r, std::string& out);
size_t encoded_size(const Record& r);
// Packs records, in order, into page payloads of at most `payload_max` bytes each.
std::vector<std::string> pack_records(const std::vector<Record>& records, size_t payload_max);
// Decodes every record of a page payload. Any malformation is Errc::corrupt.
Status decode_records(std::string_view payload, std::vector<Record>& out);

}  // namespace sluice::blob
