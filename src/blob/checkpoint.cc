// Checkpoints: the whole metadata state written to the inactive slot, then made current by
// a super block write (docs/format/blobstore.md, "Ordering").
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "blob/store.h"

namespace sluice::blob {

Status Store::write_checkpoint() {
  auto payloads = pack_records(model_->checkpoint_records(), kPagePayload);
  if (payloads.empty()) payloads.emplace_back();
  const uint64_t n = payloads.size();
  if (n > sb_.ckpt_pages)
    return Status(Errc::no_space, fmt::format("blobstore metadata area full: the state needs {} pages, a checkpoint "
                                              "holds {}; delete blobs or attributes",
                                              n, sb_.ckpt_pages));
  const uint32_t slot = 1 - sb_.active_ckpt;
  const uint64_t seq = sb_.ckpt_seq + 1;
  std::unique_ptr<char, void (*)(void*)> buf(static_cast<char*>(std::aligned_alloc(kPageSize, n * kPageSize)), free);
  for (uint64_t i = 0; i < n; ++i) {
    char* page = buf.get() + i * kPageSize;
    std::memcpy(page + kPageHeaderSize, payloads[i].data(), payloads[i].size());
    PageHeader h;
    h.kind = PageKind::checkpoint;
    h.uuid = sb_.uuid;
    h.seq = seq;
    h.aux = i;
    h.count = static_cast<uint32_t>(n);
    h.payload_len = static_cast<uint32_t>(payloads[i].size());
    seal_page(h, page);
  }
  SLUICE_RETURN_IF_ERROR(io_pages(true, sb_.ckpt_start(slot), buf.get(), n));
  // The checkpoint (and any data its extents point at) is durable before anything names it.
  SLUICE_RETURN_IF_ERROR(flush());
  const SuperBlock before = sb_;
  sb_.active_ckpt = slot;
  sb_.ckpt_seq = seq;
  sb_.journal_head_pos = (sb_.journal_head_pos + journal_used()) % sb_.journal_pages;
  sb_.journal_head_seq = next_seq_;
  Status st = write_super();
  if (st.ok()) st = flush();
  if (!st.ok()) {
    sb_ = before;  // the old checkpoint and journal stay authoritative
    return st;
  }
  sb_.clean = false;  // the flag describes the image just written, not what follows
  pending_.clear();
  pending_copies_ = false;
  unflushed_ = false;
  return clean_freed();
}

}  // namespace sluice::blob
