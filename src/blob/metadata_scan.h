// The metadata walker: a read-only scan of a blobstore's metadata (docs/format/blobstore.md)
// that reads both super block copies, the active checkpoint and the journal from its head,
// decodes every page and judges it, with the reason whenever a page is rejected. It is the
// one place that decides which super block copy is in use, whether the checkpoint is whole
// and where journal replay stops: load and recovery act on its verdicts (recovery.cc), and
// `sluice blob dump`, `check` and `repair` report them.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "bdev/bdev.h"
#include "blob/format.h"
#include "blob/records.h"

namespace sluice::blob {

// One super block copy as found on the device.
struct SuperCopy {
  int copy = 0;  // 0 = A (page 0), 1 = B (page 1)
  bool has_magic = false;
  bool valid = false;  // decode_super() accepted it
  Status verdict;       // decode_super()'s, when not valid (what load reports)
  Errc error_code = Errc::ok;
  std::string error;   // why not valid (for people)
  uint32_t version = 0;
  uint32_t crc_stored = 0, crc_computed = 0;
  uint32_t raw_flags = 0;
  SuperBlock fields;  // decoded from the raw bytes whether valid or not (when has_magic)
  bool in_use = false;      // the copy a load uses: the valid one with the highest generation
};

// The header of a checkpoint or journal page, decoded raw, and the verdict on it.
struct PageReport {
  uint64_t page = 0;      // device page index
  uint64_t position = 0;  // journal: index within the ring; checkpoint: index within the slot
  bool has_magic = false;
  bool valid = false;     // accepted where it is (page check + the sequence rules of its place)
  std::string error;      // why not
  uint32_t crc_stored = 0, crc_computed = 0;
  Uuid uuid{};
  uint64_t seq = 0, aux = 0;
  uint32_t count = 0, payload_len = 0;
  bool records_ok = false;  // the payload decoded (only tried when the checksum matched)
  std::string records_error;
  std::vector<Record> records;
};

struct CheckpointReport {
  uint32_t slot = 0;
  uint64_t seq = 0;          // expected on every page (from the super block in use)
  uint64_t first_page = 0;   // of the slot
  uint32_t slot_pages = 0;
  uint64_t pages_expected = 0;  // from the first page's header (or a guess when it is damaged)
  std::vector<PageReport> pages;
  bool valid = false;  // every page valid and every payload decoded
  uint64_t records = 0;
};

// What is in the other checkpoint slot (one page looked at; informational).
struct OtherSlotReport {
  uint32_t slot = 0;
  uint64_t first_page = 0;
  PageReport first;  // judged only as a checkpoint page of this store
};

struct JournalBatch {
  uint64_t seq = 0;  // of its first page
  uint32_t pages = 0;
  uint64_t records = 0;
};

enum class StopKind {
  end,      // the page after the last batch was never written, or is from an earlier lap: normal
  torn,     // a batch was cut short or a page at the tail fails its checksum: normal after a crash
  damaged,  // replay stops somewhere that no crash explains (see JournalReport::damage)
};

struct JournalReport {
  uint64_t start_page = 0, ring_pages = 0;
  uint64_t head_seq = 0, head_pos = 0;
  std::vector<PageReport> pages;  // from the head up to and including the page where replay stops
  std::vector<JournalBatch> batches;  // replayable, in order
  uint64_t replay_pages = 0;
  uint64_t stop_seq = 0;       // the sequence replay expected when it stopped
  uint64_t stop_position = 0;  // its ring position
  StopKind stop_kind = StopKind::end;
  std::string stop_reason;
  std::vector<std::string> damage;  // why the stop is damage, e.g. intact later batches
  // Beyond the stop point (the rest of the ring): a census (ScanOptions::census).
  uint64_t valid_ahead = 0;  // valid pages at or past the stop sequence: recovery moves the journal past them
  uint64_t resume_seq = 0;   // past every one of them: where the journal resumes after recovery
  uint64_t later_intact_pages = 0;  // valid pages of batches after the stop: acknowledged, lost on replay
  std::vector<JournalBatch> later_batches;
  uint64_t stale_pages = 0;          // this store's pages from earlier laps
  uint64_t blank_pages = 0;          // never written (no journal magic)
  uint64_t bad_pages = 0;            // journal magic but rejected (checksum, other store, ...)
  std::vector<PageReport> ring;      // every ring page, in ring order (filled when asked for)
};

struct ScanOptions {
  bool whole_ring = false;  // keep a report of every journal ring page (dump --all)
  // Read the rest of the ring past the stop point (JournalReport's census, resume_seq and
  // the damage it finds). Off, the walk reads no further than the stop point: what a
  // read-only load needs, whatever size the journal claims.
  bool census = true;
};

struct MetadataScan {
  std::string spec;  // the device, for messages
  bdev::Geometry geometry;
  uint64_t device_pages = 0;
  SuperCopy copies[2];
  int in_use = -1;  // index of the copy in use, -1 when none is valid
  // Set only with a copy in use:
  std::optional<CheckpointReport> checkpoint;
  std::optional<OtherSlotReport> other_slot;
  std::optional<JournalReport> journal;

  const SuperBlock* super() const { return in_use < 0 ? nullptr : &copies[in_use].fields; }
  // Why no copy can be used, in the order Store::load reports it: a newer version, then
  // corruption, then "not a blobstore". Ok when a copy is in use.
  Status unusable() const;
};

// Reads `pages` 4096-byte pages from `page` on into `buf` (4096-aligned).
using PageReader = std::function<Status(uint64_t page, char* buf, uint64_t pages)>;

// Judges the checkpoint `c` names (its slot, seq, first_page and slot_pages set) of store
// `uuid`, page by page: how many pages it has is what its first page says. Fails only when
// the device cannot be read. Also for a store without a super block (super_rebuild.cc).
Status scan_checkpoint(const PageReader& read, const Uuid& uuid, CheckpointReport& c);

// Reads and judges the metadata of a device of geometry `g` through `read`; fails only when
// the device cannot be read or is too small to hold a store.
Result<MetadataScan> scan_metadata(const bdev::Geometry& g, const PageReader& read, const ScanOptions& opts = {});
// The same for a bdev no store has open: opened read-only (a shared claim), nothing written.
// MetadataScan::spec is `bdev_name`.
Result<MetadataScan> scan_metadata(std::string_view bdev_name, const ScanOptions& opts = {});

}  // namespace sluice::blob
