// Rebuilding a lost super block from what survives: the checkpoint slots and the journal ring
// sit where init put them, which the device size and the cluster size determine
// (docs/format/blobstore.md, "Layout"), and every page names its store's UUID.
#include <cstdlib>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "base/size.h"
#include "blob/metadata_scan.h"
#include "blob/model.h"
#include "blob/page_buffer.h"
#include "blob/records.h"
#include "blob/store.h"
#include "blob/super_rebuild.h"

namespace sluice::blob {
namespace {

// The UUID a page claims, and its header if it is a valid page of that kind for it.
std::optional<PageHeader> open_any(const char* page, PageKind kind) {
  Uuid uuid;
  std::memcpy(uuid.data(), page + 8, uuid.size());
  PageHeader h;
  if (!open_page(page, kind, uuid, &h)) return std::nullopt;
  return h;
}

}  // namespace

bool Store::checkpoint_survives() {
  if (desc_->geometry().size_bytes() / kPageSize < 3) return false;
  PageBuffer page(1);
  if (!io_pages(false, 2, page.p, 1).ok()) return false;
  auto h = open_any(page.p, PageKind::checkpoint);
  return h && h->aux == 0;
}

bool Store::checkpoint_survives(std::string_view bdev_name) {
  Store s;
  return s.open_device(bdev_name, false).ok() && s.checkpoint_survives();
}

Result<SuperBlock> Store::plan_super_rebuild(std::string_view bdev_name, uint32_t cluster_size) {
  Store s;
  SLUICE_RETURN_IF_ERROR(s.open_device(bdev_name, false));
  const auto& g = s.desc_->geometry();
  const uint64_t device_pages = g.size_bytes() / kPageSize;
  PageBuffer first(1);
  if (device_pages < 3 || !s.io_pages(false, 2, first.p, 1).ok())
    return Status(Errc::not_found, fmt::format("bdev {}: no checkpoint survives", bdev_name));
  auto h0 = open_any(first.p, PageKind::checkpoint);
  if (!h0 || h0->aux != 0) return Status(Errc::not_found, fmt::format("bdev {}: no checkpoint survives", bdev_name));
  const Uuid uuid = h0->uuid;

  // A whole checkpoint in `slot` of layout `sb` (the sequence its first page names), or
  // nothing: judged by the metadata walker, as load judges the one a super block names.
  auto read = [&s](uint64_t page, char* buf, uint64_t n) { return s.io_pages(false, page, buf, n); };
  auto read_checkpoint = [&](const SuperBlock& sb, uint32_t slot) -> std::optional<CheckpointReport> {
    PageBuffer p(1);
    CheckpointReport ck;
    ck.slot = slot;
    ck.first_page = sb.ckpt_start(slot);
    ck.slot_pages = sb.ckpt_pages;
    PageHeader h;
    if (ck.first_page >= device_pages || !read(ck.first_page, p.p, 1).ok() ||
        !open_page(p.p, PageKind::checkpoint, uuid, &h) || h.aux != 0)
      return std::nullopt;
    ck.seq = h.seq;
    if (!scan_checkpoint(read, uuid, ck).ok() || !ck.valid) return std::nullopt;
    return ck;
  };

  // Every cluster size whose layout puts a whole checkpoint of this store at slot 1's start
  // (slot 0 starts at page 2 whatever the size, so only slot 1 tells sizes apart).
  std::vector<uint32_t> sizes;
  if (cluster_size) sizes.push_back(cluster_size);
  else
    for (uint64_t cs = kPageSize; cs <= (1u << 30) && cs <= g.size_bytes(); cs *= 2) sizes.push_back(static_cast<uint32_t>(cs));
  std::vector<SuperBlock> fits;
  for (uint32_t cs : sizes) {
    SuperBlock sb;
    sb.uuid = uuid;
    sb.io_unit = g.block_size;
    sb.cluster_size = cs;
    sb.device_pages = device_pages;
    if (!compute_layout(sb, g.size_bytes(), 0, 0, bdev_name).ok()) continue;
    auto slot0 = read_checkpoint(sb, 0);
    auto slot1 = read_checkpoint(sb, 1);
    if (!slot0 && !slot1) continue;
    if (!slot1 && !cluster_size) continue;  // slot 1 never written: the size cannot be told
    const bool use1 = slot1 && (!slot0 || slot1->seq > slot0->seq);
    std::optional<CheckpointReport>& ck = use1 ? slot1 : slot0;
    // Its extents must lie on the device this layout describes.
    Model m(static_cast<uint32_t>(sb.num_clusters));
    bool applies = true;
    for (const PageReport& page : ck->pages)
      for (const Record& r : page.records) applies = applies && m.apply(r).ok();
    if (!applies) continue;
    sb.active_ckpt = use1 ? 1 : 0;
    sb.ckpt_seq = ck->seq;
    fits.push_back(sb);
  }
  if (fits.empty())
    return Status(Errc::corrupt,
                  cluster_size ? fmt::format("bdev {}: no whole checkpoint of store {} fits a layout with {} clusters",
                                             bdev_name, uuid_string(uuid), format_size(cluster_size))
                               : fmt::format("bdev {}: no cluster size gives a layout that holds a whole checkpoint of "
                                             "store {} in both slots; give the cluster size (--cluster-size)",
                                             bdev_name, uuid_string(uuid)));
  if (fits.size() > 1) {
    std::string list;
    for (const auto& f : fits) list += (list.empty() ? "" : ", ") + format_size(f.cluster_size);
    return Status(Errc::invalid_argument,
                  fmt::format("bdev {}: several cluster sizes fit the surviving checkpoints ({}); give the one the "
                              "store was made with (--cluster-size)",
                              bdev_name, list));
  }
  SuperBlock sb = fits.front();

  // The journal: pages may be older or newer than the checkpoint, and only the lost super
  // block told which. Start past all of them: no stale page can ever be replayed.
  uint64_t max_seq = 0, max_pos = 0;
  bool any = false;
  constexpr uint64_t kWindow = 256;
  PageBuffer ring(kWindow);
  for (uint64_t at = 0; at < sb.journal_pages; at += kWindow) {
    const uint64_t n = std::min(kWindow, sb.journal_pages - at);
    SLUICE_RETURN_IF_ERROR(s.io_pages(false, sb.journal_start + at, ring.p, n));
    for (uint64_t i = 0; i < n; ++i) {
      PageHeader h;
      if (!open_page(ring.p + i * kPageSize, PageKind::journal, uuid, &h)) continue;
      if (!any || h.seq > max_seq) max_seq = h.seq, max_pos = at + i;
      any = true;
    }
  }
  sb.journal_head_seq = any ? max_seq + 1 : 1;
  sb.journal_head_pos = any ? (max_pos + 1) % sb.journal_pages : 0;
  sb.generation = 1;
  sb.clean = false;  // the next read-write load recovers and writes a fresh checkpoint
  return sb;
}

Status Store::write_rebuilt_super(std::string_view bdev_name, const SuperBlock& sb) {
  Store s;
  SLUICE_RETURN_IF_ERROR(s.open_device(bdev_name, true));
  PageBuffer pages(2);
  SuperBlock copy = sb;
  encode_super(copy, pages.p);
  copy.generation = sb.generation + 1;
  encode_super(copy, pages.p + kPageSize);
  SLUICE_RETURN_IF_ERROR(s.io_pages(true, 0, pages.p, 2));
  return s.flush();
}

bool checkpoint_survives(std::string_view bdev_name) { return Store::checkpoint_survives(bdev_name); }
Result<SuperBlock> plan_super_rebuild(std::string_view bdev_name, uint32_t cluster_size) {
  return Store::plan_super_rebuild(bdev_name, cluster_size);
}
Status write_rebuilt_super(std::string_view bdev_name, const SuperBlock& sb) {
  return Store::write_rebuilt_super(bdev_name, sb);
}

}  // namespace sluice::blob
