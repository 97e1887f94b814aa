// Group commit of pending metadata, the reserved-cluster pool, and zeroing of freed clusters
// (docs/format/blobstore.md, "Ordering").
#include <algorithm>
#include <functional>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "base/log.h"
#include "blob/store.h"

namespace sluice::blob {
namespace {

// How many clusters one reservation commit sets aside beyond the immediate need: one extra
// journal write and FLUSH per this many first writes.
constexpr uint64_t kReserveBatch = 64;

}  // namespace

Status Store::apply(const Record& r) {
  if (read_only_) return Status(Errc::permission, "the blobstore was loaded read-only");
  if (!desc_) return Status(Errc::aborted, "the blobstore is closed");
  // Clusters this record frees must be zeroed once it is durable.
  std::vector<uint32_t> owned_before;
  if (BlobMeta* b = model_->find(r.id)) {
    if (r.type == RecordType::remove || r.type == RecordType::resize) {
      b->extents.for_each([&](uint64_t, uint32_t v) { owned_before.push_back(v - 1); });
    } else if (r.type == RecordType::extent && r.value < b->size) {
      for (uint64_t i = r.value; i < std::min<uint64_t>(b->size, r.value + r.count); ++i)
        if (uint32_t v = b->extents.get(i)) owned_before.push_back(v - 1);
    }
  }
  SLUICE_RETURN_IF_ERROR(model_->apply(r));
  for (uint32_t c : owned_before)
    if (model_->owner(c) == 0) freed_.push_back(c);
  pending_.push_back(r);
  return Status::Ok();
}

Status Store::commit(bool durable) {
  if (pending_.empty()) {
    if (!durable || !unflushed_) return Status::Ok();
    // Batches written by push_md() become durable with this FLUSH; what they freed may now be
    // zeroed and handed out again.
    SLUICE_RETURN_IF_ERROR(flush());
    unflushed_ = false;
    return clean_freed();
  }
  auto payloads = pack_records(pending_, kPagePayload);
  const uint64_t n = payloads.size();
  if (journal_used() + n > sb_.journal_pages) return write_checkpoint();  // it subsumes the pending records

  // Extents that point at copied data must not become durable before that data.
  if (pending_copies_) SLUICE_RETURN_IF_ERROR(flush());
  std::unique_ptr<char, void (*)(void*)> buf(static_cast<char*>(std::aligned_alloc(kPageSize, n * kPageSize)), free);
  for (uint64_t i = 0; i < n; ++i) {
    char* page = buf.get() + i * kPageSize;
    std::memcpy(page + kPageHeaderSize, payloads[i].data(), payloads[i].size());
    PageHeader h;
    h.kind = PageKind::journal;
    h.uuid = sb_.uuid;
    h.seq = next_seq_ + i;
    h.aux = next_seq_;
    h.count = static_cast<uint32_t>(n);
    h.payload_len = static_cast<uint32_t>(payloads[i].size());
    seal_page(h, page);
  }
  // The batch may wrap around the ring: at most two writes, issued back to back.
  uint64_t pos = (sb_.journal_head_pos + journal_used()) % sb_.journal_pages;
  uint64_t first = std::min(n, sb_.journal_pages - pos);
  SLUICE_RETURN_IF_ERROR(io_pages(true, sb_.journal_start + pos, buf.get(), first));
  if (first < n) SLUICE_RETURN_IF_ERROR(io_pages(true, sb_.journal_start, buf.get() + first * kPageSize, n - first));
  // A pushed batch is on the device once the write completes, so it outlives the process;
  // until a FLUSH it may be lost to a power cut, and then replay stops before it (its pages
  // are missing or torn) and never applies a later batch either.
  if (durable) SLUICE_RETURN_IF_ERROR(flush());
  next_seq_ += n;
  pending_.clear();
  pending_copies_ = false;
  unflushed_ = !durable;
  if (durable) SLUICE_RETURN_IF_ERROR(clean_freed());
  if (journal_used() * 4 > sb_.journal_pages * 3) return write_checkpoint();
  return Status::Ok();
}

Status Store::clean_freed() {
  if (freed_.empty()) return Status::Ok();
  auto freed = std::move(freed_);
  freed_.clear();
  return clean_clusters(freed);
}

Status Store::zero_clusters(const std::vector<uint32_t>& clusters) {
  if (clusters.empty()) return Status::Ok();
  auto sorted = clusters;
  std::sort(sorted.begin(), sorted.end());
  const auto& g = desc_->geometry();
  const bool use_unmap = g.supports(bdev::IoType::unmap) && g.unmap_zeroes;
  const uint64_t per_cluster = sb_.cluster_size / g.block_size;
  auto ch = desc_->get_channel();
  if (!ch.ok()) return ch.status();
  bdev::SyncIo io{*desc_, *ch};
  Status st;
  for (size_t i = 0; i < sorted.size() && st.ok();) {
    size_t j = i + 1;
    while (j < sorted.size() && sorted[j] == sorted[j - 1] + 1) ++j;  // a run of adjacent clusters
    uint64_t lba = cluster_lba(sorted[i]), blocks = (j - i) * per_cluster;
    if (use_unmap) {
      st = io.unmap(lba, blocks);
    } else if (g.supports(bdev::IoType::write_zeroes)) {
      st = io.write_zeroes(lba, blocks);
    } else {
      std::memset(scratch_.get(), 0, sb_.cluster_size);
      for (uint64_t k = 0; k < (j - i) && st.ok(); ++k) st = io.write(scratch_.get(), lba + k * per_cluster, per_cluster);
    }
    i = j;
  }
  if (st.ok()) st = io.flush();
  (void)desc_->put_channel(*ch);
  return st;
}

Status Store::clean_clusters(const std::vector<uint32_t>& clusters) {
  SLUICE_RETURN_IF_ERROR(zero_clusters(clusters));
  for (size_t i = 0; i < clusters.size(); i += kMaxClustersPerRecord) {
    size_t end = std::min(clusters.size(), i + kMaxClustersPerRecord);
    SLUICE_RETURN_IF_ERROR(apply(Record::make_clusters(RecordType::clean, {clusters.begin() + i, clusters.begin() + end})));
  }
  return Status::Ok();
}

Status Store::reserve_clusters(uint64_t want) {
  if (reserved_.size() >= want) return Status::Ok();
  const uint64_t need = want - reserved_.size();
  // Freed clusters become usable only once their release is durable and they are zeroed.
  if (model_->free_clusters() - model_->dirty_unowned() < need && !freed_.empty()) SLUICE_RETURN_IF_ERROR(commit());
  const uint64_t clean_free = model_->free_clusters() - model_->dirty_unowned();
  if (clean_free < need)
    return Status(Errc::no_space, fmt::format("blobstore full: {} more cluster(s) needed, {} free", need, clean_free));
  std::vector<uint32_t> picked;
  const uint64_t target = std::min(clean_free, need + kReserveBatch);
  // Next fit from the cursor; target <= clean_free, so the search never wraps onto a pick.
  while (picked.size() < target) {
    uint32_t c = model_->find_clean_free(alloc_cursor_);
    if (c == UINT32_MAX || (!picked.empty() && c == picked.front())) break;
    picked.push_back(c);
    alloc_cursor_ = c + 1 == model_->num_clusters() ? 0 : c + 1;
  }
  for (size_t i = 0; i < picked.size(); i += kMaxClustersPerRecord) {
    size_t end = std::min(picked.size(), i + kMaxClustersPerRecord);
    SLUICE_RETURN_IF_ERROR(apply(Record::make_clusters(RecordType::dirty, {picked.begin() + i, picked.begin() + end})));
  }
  // A cluster is handed out only after the record saying it may hold data is durable, so a
  // crash can never leave a written cluster looking clean.
  SLUICE_RETURN_IF_ERROR(commit());
  reserved_.insert(reserved_.end(), picked.begin(), picked.end());
  // Kept descending, so pop_back hands out ascending clusters and a thick blob's clusters
  // form runs: one extent record per run, not per cluster.
  std::sort(reserved_.begin(), reserved_.end(), std::greater<>());
  return Status::Ok();
}

Result<uint32_t> Store::take_cluster() {
  if (reserved_.empty()) SLUICE_RETURN_IF_ERROR(reserve_clusters(1));
  uint32_t c = reserved_.back();
  reserved_.pop_back();
  return c;
}

Status Store::sync_md() {
  std::lock_guard lock(mu_);
  if (read_only_) return Status::Ok();
  return commit();
}

Status Store::push_md() {
  std::lock_guard lock(mu_);
  if (read_only_) return Status::Ok();
  return commit(/*durable=*/false);
}

}  // namespace sluice::blob
