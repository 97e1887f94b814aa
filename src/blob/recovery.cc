// Load-time recovery: the active checkpoint, then every complete journal batch after it
// (docs/format/blobstore.md, "Pages of the checkpoint and the journal"). What is whole and
// where replay stops is the metadata walker's verdict (metadata_scan.h); this applies it.
#include <fmt/format.h>

#include "base/log.h"
#include "blob/metadata_scan.h"
#include "blob/store.h"

namespace sluice::blob {

Status Store::recover(const MetadataScan& scan, bool read_only) {
  // 1. The checkpoint named by the super block must be whole.
  const CheckpointReport& ck = *scan.checkpoint;
  for (const PageReport& p : ck.pages) {
    if (!p.valid)
      return Status(Errc::corrupt, fmt::format("checkpoint {} (slot {}) page {} is damaged", ck.seq, ck.slot, p.position));
    if (!p.records_ok) return Status(Errc::corrupt, fmt::format("checkpoint page {}: {}", p.position, p.records_error));
  }
  for (const PageReport& p : ck.pages)
    for (const Record& r : p.records) {
      Status st = model_->apply(r);
      if (!st.ok()) return Status(Errc::corrupt, fmt::format("checkpoint: {}", st.message()));
    }

  // 2. Journal batches, in sequence, while whole: the walker's pages begin with theirs.
  const JournalReport& j = *scan.journal;
  size_t at = 0;
  for (const JournalBatch& b : j.batches)
    for (uint32_t i = 0; i < b.pages; ++i, ++at)
      for (const Record& r : j.pages[at].records) {
        Status st = model_->apply(r);
        if (!st.ok()) return Status(Errc::corrupt, fmt::format("journal page {}: {}", b.seq, st.message()));
      }
  next_seq_ = j.stop_seq;
  recovered_ = !j.batches.empty();
  if (read_only) return Status::Ok();
  next_seq_ = j.resume_seq;  // past the pages replay did not take (metadata_scan.cc says why)

  // 3. Clusters that may hold data nobody owns are zeroed before anything can allocate them,
  //    and a fresh checkpoint retires the journal (and whatever torn tail it had).
  auto dirty = model_->dirty_unowned_list();
  if (!dirty.empty()) SLUICE_RETURN_IF_ERROR(clean_clusters(dirty));
  if (recovered_ || !dirty.empty() || next_seq_ != j.stop_seq) {
    log::info("blobstore: recovered {} journal batch(es), zeroed {} cluster(s)", j.batches.size(), dirty.size());
    SLUICE_RETURN_IF_ERROR(write_checkpoint());
  }
  return Status::Ok();
}

}  // namespace sluice::blob
