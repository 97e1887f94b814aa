// Store lifecycle: init (format), load, unload, and the device I/O helpers.
#include "blob/store.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "base/log.h"
#include "base/size.h"
#include "blob/metadata_scan.h"
#include "blob/page_buffer.h"

namespace sluice::blob {
namespace {

uint64_t div_up(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

}  // namespace

Store::~Store() = default;

Status Store::open_device(std::string_view bdev_name, bool write) {
  bdev::OpenOptions o;
  o.write = write;
  o.claim = bdev::Claim::exclusive;
  auto d = bdev::open(bdev_name, o);
  if (!d.ok()) return d.status();
  desc_ = std::move(d.value());
  const auto& g = desc_->geometry();
  if (g.block_size > kPageSize || kPageSize % g.block_size != 0)
    return Status(Errc::not_supported, fmt::format("bdev {} has {}-byte blocks; the blobstore needs blocks that divide 4096",
                                                   bdev_name, g.block_size));
  blocks_per_page_ = kPageSize / g.block_size;
  return Status::Ok();
}

Status Store::io_pages(bool write, uint64_t page, char* buf, uint64_t pages) {
  if (!desc_) return Status(Errc::aborted, "the blobstore is closed");
  auto ch = desc_->get_channel();
  if (!ch.ok()) return ch.status();
  bdev::SyncIo io{*desc_, *ch};
  Status st = write ? io.write(buf, page * blocks_per_page_, pages * blocks_per_page_)
                    : io.read(buf, page * blocks_per_page_, pages * blocks_per_page_);
  (void)desc_->put_channel(*ch);
  return st;
}

Status Store::flush() {
  if (!desc_) return Status(Errc::aborted, "the blobstore is closed");
  auto ch = desc_->get_channel();
  if (!ch.ok()) return ch.status();
  Status st = bdev::SyncIo{*desc_, *ch}.flush();
  (void)desc_->put_channel(*ch);
  return st;
}

uint64_t Store::cluster_lba(uint32_t cluster) const {
  return (sb_.data_start + uint64_t{cluster} * sb_.pages_per_cluster()) * blocks_per_page_;
}

Status Store::write_super() {
  PageBuffer page(1);
  sb_.generation++;
  encode_super(sb_, page.p);
  int copy = 1 - super_copy_;  // never overwrite the newest good copy
  SLUICE_RETURN_IF_ERROR(io_pages(true, static_cast<uint64_t>(copy), page.p, 1));
  super_copy_ = copy;
  return Status::Ok();
}

Status Store::compute_layout(SuperBlock& sb, uint64_t device_bytes, uint64_t checkpoint_bytes, uint64_t journal_bytes,
                             std::string_view bdev_name) {
  const uint64_t est_clusters = device_bytes / sb.cluster_size;
  // 32 bytes per cluster: a fully fragmented extent map costs 28 per cluster.
  uint64_t ckpt_bytes = checkpoint_bytes ? checkpoint_bytes : 32 * est_clusters + (1u << 20);
  uint64_t ring_bytes = journal_bytes ? journal_bytes : std::clamp<uint64_t>(device_bytes / 64, 256u << 10, 16u << 20);
  // Payload per page is less than a page; size regions by payload so the budget holds.
  sb.ckpt_pages = static_cast<uint32_t>(std::max<uint64_t>(4, div_up(ckpt_bytes, kPagePayload)));
  sb.journal_pages = std::max<uint64_t>(16, div_up(ring_bytes, kPageSize));
  sb.journal_start = 2 + 2 * uint64_t{sb.ckpt_pages};
  const uint64_t ppc = sb.pages_per_cluster();
  sb.data_start = div_up(sb.journal_start + sb.journal_pages, ppc) * ppc;
  if (sb.data_start >= sb.device_pages || (sb.device_pages - sb.data_start) / ppc == 0)
    return Status(Errc::no_space, fmt::format("bdev {} ({}) is too small for a blobstore with {} clusters and {} of metadata",
                                              bdev_name, format_size(device_bytes), format_size(sb.cluster_size),
                                              format_size(sb.data_start * kPageSize)));
  sb.num_clusters = (sb.device_pages - sb.data_start) / ppc;
  if (sb.num_clusters >= UINT32_MAX) return Status(Errc::invalid_argument, "too many clusters; use a larger cluster size");
  return Status::Ok();
}

Result<std::unique_ptr<Store>> Store::init(std::string_view bdev_name, const InitOptions& opts) {
  std::unique_ptr<Store> s(new Store());
  std::lock_guard lock(s->mu_);
  SLUICE_RETURN_IF_ERROR(s->open_device(bdev_name, true));
  const auto& g = s->desc_->geometry();
  if (opts.cluster_size < kPageSize || opts.cluster_size % kPageSize != 0 || opts.cluster_size > (1u << 30))
    return Status(Errc::invalid_argument,
                  fmt::format("cluster size {} must be a multiple of 4096 up to 1 GiB", opts.cluster_size));
  SuperBlock& sb = s->sb_;
  sb.uuid = random_uuid();
  sb.io_unit = g.block_size;
  sb.cluster_size = opts.cluster_size;
  sb.device_pages = g.size_bytes() / kPageSize;
  SLUICE_RETURN_IF_ERROR(compute_layout(sb, g.size_bytes(), opts.checkpoint_bytes, opts.journal_bytes, bdev_name));
  sb.active_ckpt = 1;  // so the first checkpoint lands in slot 0
  sb.journal_head_seq = 1;
  s->next_seq_ = 1;
  s->model_ = std::make_unique<Model>(static_cast<uint32_t>(sb.num_clusters));
  s->scratch_.reset(static_cast<char*>(std::aligned_alloc(kPageSize, sb.cluster_size)));

  if (opts.clear_data) {
    std::vector<uint32_t> all(sb.num_clusters);
    for (uint32_t c = 0; c < all.size(); ++c) all[c] = c;
    log::info("blobstore: clearing {} clusters of {}", all.size(), bdev_name);
    SLUICE_RETURN_IF_ERROR(s->zero_clusters(all));
  }
  SLUICE_RETURN_IF_ERROR(s->write_checkpoint());
  // Both super block copies: a stale copy left by an earlier store must never win.
  SLUICE_RETURN_IF_ERROR(s->write_super());
  SLUICE_RETURN_IF_ERROR(s->flush());
  log::info("blobstore: initialized {} on {}: {} clusters of {}", uuid_string(sb.uuid), bdev_name, sb.num_clusters,
            format_size(sb.cluster_size));
  return s;
}

Result<std::unique_ptr<Store>> Store::load(std::string_view bdev_name, const LoadOptions& opts) {
  std::unique_ptr<Store> s(new Store());
  std::lock_guard lock(s->mu_);
  s->read_only_ = opts.read_only;
  SLUICE_RETURN_IF_ERROR(s->open_device(bdev_name, !opts.read_only));
  const bdev::Geometry& g = s->desc_->geometry();
  if (g.size_bytes() / kPageSize < 2)
    return Status(Errc::not_found, fmt::format("bdev {} is too small to hold a blobstore", bdev_name));
  // Which super block copy is in use, whether the checkpoint is whole and where replay stops:
  // the walker decides, recover() applies.
  Store* store = s.get();
  ScanOptions so;
  so.census = !opts.read_only;  // only a read-write recovery moves the journal past what it finds
  auto scan = scan_metadata(
      g, [store](uint64_t page, char* buf, uint64_t n) { return store->io_pages(false, page, buf, n); }, so);
  if (!scan.ok()) return scan.status();
  const SuperCopy(&copies)[2] = scan->copies;
  const int best = scan->in_use;
  if (best < 0) {
    // Report the most telling reason: newer version, then corruption, then "not a store".
    for (auto& c : copies)
      if (c.error_code == Errc::not_supported)
        return Status(Errc::not_supported, fmt::format("bdev {}: {}", bdev_name, c.verdict.message()));
    // Without a super block the store is still there if its checkpoint is: say so, so that
    // nobody takes it for a blank device (and formats it).
    if (s->checkpoint_survives())
      return Status(Errc::corrupt,
                    fmt::format("bdev {}: super block damaged (both copies); a checkpoint survives: run `sluice blob "
                                "repair -d {}`",
                                bdev_name, bdev_name));
    for (Errc want : {Errc::corrupt, Errc::not_found})
      for (auto& c : copies)
        if (c.error_code == want) return Status(want, fmt::format("bdev {}: {}", bdev_name, c.verdict.message()));
  }
  if (!copies[1 - best].valid)
    log::notice("blobstore on {}: super block copy {} is damaged ({}); copy {} is used", bdev_name, 1 - best,
                copies[1 - best].verdict.message(), best);
  s->sb_ = copies[best].fields;
  s->super_copy_ = best;
  if (s->sb_.io_unit != s->desc_->geometry().block_size)
    return Status(Errc::corrupt, fmt::format("bdev {} has {}-byte blocks but the store was made with {}", bdev_name,
                                             s->desc_->geometry().block_size, s->sb_.io_unit));
  s->model_ = std::make_unique<Model>(static_cast<uint32_t>(s->sb_.num_clusters));
  s->scratch_.reset(static_cast<char*>(std::aligned_alloc(kPageSize, s->sb_.cluster_size)));
  SLUICE_RETURN_IF_ERROR(s->recover(*scan, opts.read_only));
  return s;
}

Status Store::unload() {
  std::lock_guard lock(mu_);
  if (!desc_) return Status::Ok();
  for (auto& [id, w] : open_)
    if (!w.expired()) return Status(Errc::busy, fmt::format("blob {} is still open", id));
  if (!read_only_) {
    // Reserved clusters were never handed out, so they hold zeroes: clean, not dirty.
    for (size_t i = 0; i < reserved_.size(); i += kMaxClustersPerRecord) {
      size_t end = std::min(reserved_.size(), i + kMaxClustersPerRecord);
      SLUICE_RETURN_IF_ERROR(apply(Record::make_clusters(RecordType::clean, {reserved_.begin() + i, reserved_.begin() + end})));
    }
    reserved_.clear();
    sb_.clean = true;
    SLUICE_RETURN_IF_ERROR(write_checkpoint());
  }
  release_device();
  return Status::Ok();
}

void Store::abandon() {
  std::lock_guard lock(mu_);
  release_device();
}

void Store::release_device() {
  device_released_.store(true, std::memory_order_release);
  if (desc_) (void)desc_->disown_channels();
  desc_.reset();
}

}  // namespace sluice::blob
