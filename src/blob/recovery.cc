// Load-time recovery: the active checkpoint, then every complete journal batch after it
// (docs/format/blobstore.md, "Pages of the checkpoint and the journal").
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>

#include <fmt/format.h>

#include "base/log.h"
#include "blob/store.h"

namespace sluice::blob {
namespace {

// Reads a region of pages through a bounded window, so that sizes taken from the disk (a
// checkpoint's page count, the journal's length) never size an allocation.
class PageWindow {
 public:
  static constexpr uint64_t kWindow = 256;  // pages: 1 MiB

  using ReadFn = std::function<Status(uint64_t page, char* buf, uint64_t pages)>;
  PageWindow(ReadFn read, uint64_t region_start, uint64_t region_pages)
      : read_(std::move(read)), start_(region_start), pages_(region_pages),
        buf_(static_cast<char*>(std::aligned_alloc(kPageSize, kWindow * kPageSize)), free) {}

  // The page at `index` within the region (index < region_pages), or an I/O error.
  Result<const char*> page(uint64_t index) {
    if (!buf_) return Status(Errc::no_space, "out of memory for a metadata read window");
    if (index < first_ || index >= first_ + loaded_) {
      first_ = index;
      loaded_ = std::min(kWindow, pages_ - index);
      Status st = read_(start_ + first_, buf_.get(), loaded_);
      if (!st.ok()) {
        loaded_ = 0;
        return st;
      }
    }
    return static_cast<const char*>(buf_.get() + (index - first_) * kPageSize);
  }

 private:
  ReadFn read_;
  uint64_t start_, pages_;
  uint64_t first_ = 0, loaded_ = 0;
  std::unique_ptr<char, void (*)(void*)> buf_;
};

}  // namespace

Status Store::recover(bool read_only) {
  auto reader = [this](uint64_t page, char* buf, uint64_t n) { return io_pages(false, page, buf, n); };

  // 1. The checkpoint named by the super block must be whole.
  PageWindow ckpt(reader, sb_.ckpt_start(sb_.active_ckpt), sb_.ckpt_pages);
  std::vector<Record> records;
  uint64_t n = 1;
  for (uint64_t i = 0; i < n; ++i) {
    auto page = ckpt.page(i);
    if (!page.ok()) return page.status();
    PageHeader h;
    if (!open_page(*page, PageKind::checkpoint, sb_.uuid, &h) || h.seq != sb_.ckpt_seq || h.aux != i ||
        h.count > sb_.ckpt_pages || (i > 0 && h.count != n))
      return Status(Errc::corrupt, fmt::format("checkpoint {} (slot {}) page {} is damaged", sb_.ckpt_seq,
                                               sb_.active_ckpt, i));
    n = h.count;
    Status st = decode_records({*page + kPageHeaderSize, h.payload_len}, records);
    if (!st.ok()) return Status(Errc::corrupt, fmt::format("checkpoint page {}: {}", i, st.message()));
  }
  for (const Record& r : records) {
    Status st = model_->apply(r);
    if (!st.ok()) return Status(Errc::corrupt, fmt::format("checkpoint: {}", st.message()));
  }

  // 2. Journal batches, in sequence, while whole.
  const uint64_t jp = sb_.journal_pages;
  PageWindow ring(reader, sb_.journal_start, jp);
  auto position = [&](uint64_t s) { return (sb_.journal_head_pos + (s - sb_.journal_head_seq)) % jp; };
  uint64_t seq = sb_.journal_head_seq, replayed = 0;
  PageHeader h;
  for (;;) {
    if (seq - sb_.journal_head_seq >= jp) break;  // a full lap: nothing newer can follow
    auto first = ring.page(position(seq));
    if (!first.ok()) return first.status();
    if (!open_page(*first, PageKind::journal, sb_.uuid, &h) || h.seq != seq || h.aux != seq) break;
    const uint64_t count = h.count;
    if (count == 0 || seq - sb_.journal_head_seq + count > jp) break;
    std::vector<Record> batch;
    bool whole = true;
    for (uint64_t i = 0; i < count && whole; ++i) {
      auto page = ring.page(position(seq + i));
      if (!page.ok()) return page.status();
      PageHeader ph;
      whole = open_page(*page, PageKind::journal, sb_.uuid, &ph) && ph.seq == seq + i && ph.aux == seq &&
              ph.count == count && decode_records({*page + kPageHeaderSize, ph.payload_len}, batch).ok();
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

  // Valid pages at or past the stop point were not replayed (a torn batch's pages, or whole
  // batches hidden behind a damaged page). Left in the ring, one of them could later sit
  // exactly where the journal head's sequence is expected and be replayed onto a state it
  // was never part of; so the journal resumes past every sequence the ring holds.
  for (uint64_t i = 0; i < jp; ++i) {
    auto page = ring.page(i);
    if (!page.ok()) return page.status();
    PageHeader ph;
    if (open_page(*page, PageKind::journal, sb_.uuid, &ph) && ph.seq >= next_seq_ && ph.seq != UINT64_MAX)
      next_seq_ = ph.seq + 1;
  }

  // 3. Clusters that may hold data nobody owns are zeroed before anything can allocate them,
  //    and a fresh checkpoint retires the journal (and whatever torn tail it had).
  auto dirty = model_->dirty_unowned_list();
  if (!dirty.empty()) SLUICE_RETURN_IF_ERROR(clean_clusters(dirty));
  if (replayed > 0 || !dirty.empty() || next_seq_ != seq) {
    log::info("blobstore: recovered {} journal batch(es), zeroed {} cluster(s)", replayed, dirty.size());
    SLUICE_RETURN_IF_ERROR(write_checkpoint());
  }
  return Status::Ok();
}

}  // namespace sluice::blob
