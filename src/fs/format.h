// SluiceFS on-disk encodings (docs/format/sluicefs.md): the blob attributes that hold the
// namespace and the tail marker that makes appends self-describing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace sluice::fs {

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr char kFsMagic[8] = {'S', 'L', 'U', 'I', 'C', 'E', 'F', 'S'};

// Internal blob attributes (Blobstore::set_xattr(..., internal = true)).
inline constexpr std::string_view kXattrIdentity = "sfs.fs";  // root only: magic + version
inline constexpr std::string_view kXattrEntry = "sfs.n";      // every inode: kind, parent, name
inline constexpr std::string_view kXattrState = "sfs.s";      // every inode: size, gen, mtime, flags

enum class Kind : uint8_t { file = 1, dir = 2 };

// The root's identity attribute.
std::string encode_identity();
// Ok, or why the attribute does not describe a SluiceFS this code can mount.
Status check_identity(std::string_view value);

// The directory entry of an inode. parent == 0: the root (name empty) or an orphan
// (unlinked while open; collected at mount).
struct Entry {
  Kind kind = Kind::file;
  uint64_t parent = 0;
  std::string name;
};
std::string encode_entry(const Entry& e);
Result<Entry> decode_entry(std::string_view value);

// The committed state of an inode. `size` is the committed size: the length is at least this,
// and the tail markers of generation >= `gen` may extend it (recovery).
inline constexpr uint32_t kStateWriting = 1;  // open for writing: recovery scans its tail
struct InodeState {
  uint64_t size = 0;
  uint64_t gen = 1;
  int64_t mtime_ns = 0;
  uint32_t flags = 0;
};
std::string encode_state(const InodeState& s);
Result<InodeState> decode_state(std::string_view value);

// The tail marker: the last kMarkerSize bytes of the block after the end of the data a
// sync wrote (or of the block after that, when fewer than kMarkerSize bytes remain).
inline constexpr uint32_t kMarkerSize = 48;
struct TailMarker {
  uint64_t blob = 0;     // the file's blob id (a marker of another file never matches)
  uint64_t length = 0;   // the file length this write made durable
  uint64_t base = 0;     // data_crc covers file bytes [base, length)
  uint64_t gen = 0;      // the size generation it extends
  uint32_t data_crc = 0;
};
void encode_marker(const TailMarker& m, char* dst);  // kMarkerSize bytes
std::optional<TailMarker> decode_marker(const char* src);

// The block index holding the marker for a file of `length` bytes.
inline uint64_t marker_block(uint64_t length, uint32_t block) {
  const uint64_t b = length / block;
  return block - length % block >= kMarkerSize ? b : b + 1;
}

}  // namespace sluice::fs
