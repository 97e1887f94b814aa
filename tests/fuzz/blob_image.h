// The valid blobstore image the blob_load fuzzer corrupts, and the input language that
// corrupts it (shared by the fuzz target and the seed generator).
//
// The image: a 4 MiB malloc bdev, 64 KiB clusters, 4 checkpoint pages per slot and a
// 16-page journal, holding thick and thin blobs with user and internal xattrs, a snapshot
// with two clones, a super blob, freed (dirty then cleaned) clusters, both checkpoint slots
// written (an unload happened), three synced journal batches after the active checkpoint,
// and changes that were never synced (the store was abandoned, as at a power cut).
//
// Fuzz input: byte 0 is the mode, the rest depends on the mode's kind (bits 0-1):
//   kind 0  image patches: {u32 offset, u8 len, len bytes}*; offsets wrap modulo the
//           metadata region (pages 0 .. data_start). Mode bit 2: re-seal every touched page
//           (recompute its CRC, keeping whatever header the patch left).
//   kind 1  payload patches: byte 1 selects a page (see select_page), then
//           {u16 offset, u8 len, len bytes}* patch its payload (offsets modulo 4032); the
//           page is re-sealed. Mode bit 4: grow payload_len to cover the patches.
//   kind 2  page replacement: byte 1 selects a page; the rest overwrites it from byte 0.
//           Mode bit 2: re-seal it.
//   kind 3  journal append: {u16 len, len bytes}* are the payloads of a new batch sealed
//           right after the last valid one (so its records reach Model::apply on top of
//           the real state).
// Mode bit 3: after a read-write load succeeds, run metadata operations on the state.
// Mode bit 5: load (read-only only) from an 8 GiB sparse device instead, so that corrupt
// geometry may name regions of gigabytes. Off unless SLUICE_FUZZ_BIG is set: it finds an
// open issue (recovery allocates the journal ring and the checkpoint whole, sized by the
// super block; see tests/fuzz/README.md).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "blob/blob.h"
#include "blob/format.h"

namespace sluice::fuzz {

inline constexpr uint8_t kKindPatch = 0, kKindPayload = 1, kKindReplace = 2, kKindAppend = 3;
inline constexpr uint8_t kBitReseal = 1 << 2, kBitOps = 1 << 3, kBitGrowPayload = 1 << 4, kBitBigDevice = 1 << 5;

// Page selector (byte 1 of kinds 1 and 2): bits 0-1 pick a region (0 super block copies,
// 1 active checkpoint slot, 2 inactive slot, 3 journal ring from the head), the other bits
// the page within it (modulo its size).
inline constexpr uint8_t selector(uint8_t region, uint8_t index) { return static_cast<uint8_t>(region | (index << 2)); }

struct BaseImage {
  std::string dev;                 // the malloc bdev every fuzz input is written to
  uint32_t block_size = 0;
  blob::SuperBlock sb;             // the newest super block copy
  int super_copy = 0;              // which page holds it (0 or 1)
  uint64_t meta_pages = 0;         // pages [0, data_start) hold all metadata
  std::shared_ptr<char> bytes;     // meta_pages * 4096, page aligned
  uint64_t journal_next_seq = 0;   // the first sequence after the last valid batch
  uint64_t journal_next_pos = 0;   // where it goes in the ring
  uint64_t journal_batches = 0;    // valid batches after the active checkpoint
};

// A thin blob's first write (one io unit at the start of blob cluster `cluster`) through
// the data path: the store allocates (and, for a clone, copies) the cluster.
Status first_write(blob::Blobstore& bs, blob::Blob& b, uint64_t cluster);

// Built once (the first call), then cached. Aborts if the store cannot be built: that is a
// harness failure, not a finding.
const BaseImage& base_image();

// The page a selector names.
uint64_t select_page(const BaseImage& img, uint8_t sel);

// Recomputes the CRC of metadata page `page` (the super block's at offset 12, a checkpoint
// or journal page's at offset 4), keeping every other byte.
void reseal(uint64_t page, char* p);

// Corrupts `image` (a copy of img.bytes) as the fuzz input says. Returns the mode byte (0
// for an empty input, which leaves the image valid); its other bits are the caller's.
uint8_t corrupt_image(const BaseImage& img, const uint8_t* data, size_t size, char* image);

}  // namespace sluice::fuzz
