// Load-time recovery: the active checkpoint, then every complete journal batch after it
// (docs/format/blobstore.md, "Pages of the checkpoint and the journal").
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "base/log.h"
#include "blob/store.h"

namespace sluice::blob {
namespace {

using Buffer = std::unique_ptr<char, void (*)(void*)>;
Buffer alloc_pages(uint64_t n) { return Buffer(static_cast<char*>(std::aligned_alloc(kPageSize, n * kPageSize)), free); }

}  // namespace

Status Store::recover(bool read_only) {
  // 1. The checkpoint named by the super block must be whole.
  const uint64_t cstart = sb_.ckpt_start(sb_.active_ckpt);
  auto first = alloc_pages(1);
  SLUICE_RETURN_IF_ERROR(io_pages(false, cstart, first.get(), 1));
  PageHeader h;
  if (!open_page(first.get(), PageKind::checkpoint, sb_.uuid, &h) || h.seq != sb_.ckpt_seq || h.aux != 0 ||
      h.count > sb_.ckpt_pages)
    return Status(Errc::corrupt, fmt::format("checkpoint {} (slot {}) is damaged", sb_.ckpt_seq, sb_.active_ckpt));
  const uint64_t n = h.count;
  auto ckpt = alloc_pages(n);
  SLUICE_RETURN_IF_ERROR(io_pages(false, cstart, ckpt.get(), n));
  std::vector<Record> records;
  for (uint64_t i = 0; i < n; ++i) {
    const char* page = ckpt.get() + i * kPageSize;
    if (!open_page(page, PageKind::checkpoint, sb_.uuid, &h) || h.seq != sb_.ckpt_seq || h.aux != i || h.count != n)
      return Status(Errc::corrupt, fmt::format("checkpoint {} page {} of {} is damaged", sb_.ckpt_seq, i, n));
    Status st = decode_records({page + kPageHeaderSize, h.payload_len}, records);
    if (!st.ok()) return Status(Errc::corrupt, fmt::format("checkpoint page {}: {}", i, st.message()));
  }
  for (const Record& r : records) {
    Status st = model_->apply(r);
    if (!st.ok()) return Status(Errc::corrupt, fmt::format("checkpoint: {}", st.message()));
  }

  // 2. Journal batches, in sequence, while whole.
  const uint64_t jp = sb_.journal_pages;
  auto ring = alloc_pages(jp);
  SLUICE_RETURN_IF_ERROR(io_pages(false, sb_.journal_start, ring.get(), jp));
  uint64_t seq = sb_.journal_head_seq, replayed = 0;
  for (;;) {
    auto page_at = [&](uint64_t s) { return ring.get() + ((sb_.journal_head_pos + (s - sb_.journal_head_seq)) % jp) * kPageSize; };
    if (seq - sb_.journal_head_seq >= jp) break;  // a full lap: nothing newer can follow
    if (!open_page(page_at(seq), PageKind::journal, sb_.uuid, &h) || h.seq != seq || h.aux != seq) break;
    const uint64_t count = h.count;
    if (count == 0 || seq - sb_.journal_head_seq + count > jp) break;
    std::vector<Record> batch;
    bool whole = true;
    for (uint64_t i = 0; i < count && whole; ++i) {
      PageHeader ph;
      const char* page = page_at(seq + i);
      whole = open_page(page, PageKind::journal, sb_.uuid, &ph) && ph.seq == seq + i && ph.aux == seq &&
              ph.count == count && decode_records({page + kPageHeaderSize, ph.payload_len}, batch).ok();
    }
    if (!whole) break;  // a torn batch was never acknowledged
    for (const Record& r : batch) {
      Status st = model_->apply(r);
      if (!st.ok()) return Status(Errc::corrupt, fmt::format("journal page {}: {}", seq, st.message()));
    }
    seq += count;
    ++replayed;
  }
  next_seq_ = seq;
  recovered_ = replayed > 0;
  if (read_only) return Status::Ok();

  // 3. Clusters that may hold data nobody owns are zeroed before anything can allocate them,
  //    and a fresh checkpoint retires the journal (and whatever torn tail it had).
  auto dirty = model_->dirty_unowned_list();
  if (!dirty.empty()) SLUICE_RETURN_IF_ERROR(clean_clusters(dirty));
  if (replayed > 0 || !dirty.empty()) {
    log::info("blobstore: recovered {} journal batch(es), zeroed {} cluster(s)", replayed, dirty.size());
    SLUICE_RETURN_IF_ERROR(write_checkpoint());
  }
  return Status::Ok();
}

}  // namespace sluice::blob
