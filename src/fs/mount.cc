// mount (with recovery: orphan collection and tail-marker replay) and unmount.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

#include "base/crc32c.h"
#include "base/log.h"
#include "bdev/bdev.h"
#include "fs/device.h"
#include "fs/fs_core.h"
#include "fs/reserve.h"

namespace sluice::fs {
namespace {

Status image_error(std::string_view device, const Status& st) {
  if (st.code() == Errc::not_found)  // the blobstore found no super block magic
    return Status(Errc::wrong_format, fmt::format("{} is not a SluiceFS image: {}", device, st.message()));
  return Status(st.code(), fmt::format("{}: {}", device, st.message()));
}

// Threads that are still alive at unmount hold a channel each; only they may put it back,
// and they may never run our code again. Their per-thread tables (blob and thread layers) key
// channels by the store's and the device's address, so both objects are kept (unloaded,
// small) for the life of the process: a later mount can never be handed a stale channel.
void keep_for_stragglers(std::unique_ptr<blob::Blobstore> bs, const std::string& device, uint64_t threads) {
  log::info("sluicefs {}: {} other thread(s) still hold a channel at unmount; it stays theirs", device, threads);
  struct Kept {
    std::unique_ptr<blob::Blobstore> store;
    std::shared_ptr<bdev::Bdev> dev;
  };
  static std::mutex mu;
  static auto* kept = new std::vector<Kept>();  // never destroyed: the threads may outlive main
  std::lock_guard lock(mu);
  kept->push_back({std::move(bs), bdev::find(device)});
}

}  // namespace

Result<std::unique_ptr<FileSystem>> FileSystem::mount(std::string_view device, const MountOptions& opts) {
  return FsCore::mount_device(device, opts);
}

// Loads the namespace from the blobs' attributes and recovers it after a crash.
class MountTask {
 public:
  MountTask(FsCore& fs) : fs_(fs) {}

  Status run() {
    blob::Blobstore& bs = *fs_.bs_;
    auto root = bs.super_blob();
    if (!root.ok())
      return Status(Errc::wrong_format,
                    fmt::format("{} is not a SluiceFS image (a blobstore without a SluiceFS root)", fs_.device_));
    auto ident = bs.get_xattr(*root, kXattrIdentity, true);
    if (!ident.ok())
      return Status(Errc::wrong_format, fmt::format("{} is not a SluiceFS image (its root blob is not SluiceFS's)",
                                                        fs_.device_));
    Status st = check_identity(*ident);
    if (!st.ok()) return Status(st.code(), fmt::format("{}: {}", fs_.device_, st.message()));
    fs_.root_ = *root;

    std::vector<uint64_t> orphans;
    std::vector<std::pair<std::shared_ptr<Inode>, InodeState>> writing;
    for (uint64_t id : bs.list()) {
      auto info = bs.info(id);
      if (!info.ok()) return info.status();
      auto& x = info->internal_xattrs;
      auto e = x.find(std::string(kXattrEntry));
      auto s = x.find(std::string(kXattrState));
      if (e == x.end() || s == x.end()) {
        if (id == *root) return corrupt("the root has no directory entry");
        orphans.push_back(id);  // created and never named: an interrupted create
        continue;
      }
      auto entry = decode_entry(e->second);
      auto state = decode_state(s->second);
      if (!entry.ok() || !state.ok()) return corrupt(fmt::format("blob {}: {}", id, (entry.ok() ? state.status() : entry.status()).message()));
      if (entry->parent == 0 && id != *root) {
        orphans.push_back(id);  // unlinked while open
        continue;
      }
      auto ino = std::make_shared<Inode>(id, entry->kind);
      ino->parent = entry->parent;
      ino->name = entry->name;
      ino->persisted = *state;
      ino->committed_size = state->size;
      ino->len = state->size;
      ino->mtime_ns = state->mtime_ns;
      ino->allocated = info->size_clusters * fs_.cluster_;
      if (!ino->is_dir() && (state->flags & kStateWriting)) writing.emplace_back(ino, *state);
      fs_.inodes_[id] = ino;
    }
    if (!fs_.inodes_.contains(*root) || !fs_.inodes_.at(*root)->is_dir()) return corrupt("the root is not a directory");
    for (auto& [id, ino] : fs_.inodes_) {
      if (id == *root) continue;
      auto p = fs_.inodes_.find(ino->parent);
      if (p == fs_.inodes_.end() || !p->second->is_dir())
        return corrupt(fmt::format("blob {} ('{}') names a parent {} that is not a directory", id, ino->name, ino->parent));
      auto [it, fresh] = p->second->children.emplace(ino->name, id);
      if (!fresh) return corrupt(fmt::format("two entries named '{}' in directory blob {}", ino->name, ino->parent));
    }
    if (!fs_.read_only()) {
      for (uint64_t id : orphans) {
        Status rm = bs.remove(id);
        if (!rm.ok()) return rm;
        ++fs_.md_dirty_;
      }
      if (!orphans.empty()) log::info("sluicefs {}: collected {} orphan(s)", fs_.device_, orphans.size());
    }
    if (!writing.empty()) SLUICE_RETURN_IF_ERROR(recover_tails(writing));
    return fs_.commit_locked();
  }

 private:
  Status corrupt(std::string why) {
    return Status(Errc::corrupt, fmt::format("{}: corrupt SluiceFS image: {}", fs_.device_, why));
  }

  // Files open for writing at the crash: their length is the committed size extended by the
  // newest valid tail marker (docs/format/sluicefs.md, "Recovery").
  Status recover_tails(std::vector<std::pair<std::shared_ptr<Inode>, InodeState>>& files) {
    blob::Blobstore& bs = *fs_.bs_;
    const uint32_t bsz = fs_.block_;
    const uint64_t window_cap = (kSizeCommitEvery + 4 * uint64_t{bsz} + 4095) / 4096 * 4096;
    std::unique_ptr<char, void (*)(void*)> win(static_cast<char*>(std::aligned_alloc(4096, window_cap)), free);
    if (!win) return Status(Errc::no_space, "out of memory for the recovery window");
    auto ch = fs_.channels_->get();
    if (!ch.ok()) return ch.status();
    for (auto& [ino, st] : files) {
      auto blob = bs.open(ino->id);
      if (!blob.ok()) return blob.status();
      const uint64_t alloc = ino->allocated.load();
      const uint64_t start_blk = st.size / bsz;
      // An acknowledged sync reached at most kSizeCommitEvery past the size; its marker is in
      // the block after the data at the latest.
      const uint64_t end = std::min(alloc, ((st.size + kSizeCommitEvery + bsz - 1) / bsz + 2) * bsz);
      uint64_t length = st.size, best_gen = st.gen;
      if (start_blk * bsz < end) {
        const uint64_t blocks = end / bsz - start_blk;
        IoWait w;
        Status io = submit_io(bs, *ch, w, [&](bdev::IoCallback cb, void* arg) {
          return bs.read(*ch, **blob, win.get(), start_blk, blocks, cb, arg);
        });
        if (io.ok()) io = wait_io(bs, *ch, w);
        if (!io.ok()) {
          (void)bs.close(*blob);
          return io;
        }
        std::vector<TailMarker> found;
        for (uint64_t b = 0; b < blocks; ++b) {
          auto m = decode_marker(win.get() + (b + 1) * bsz - kMarkerSize);
          if (!m || m->blob != ino->id || m->gen < st.gen || m->base < start_blk * bsz || m->base % bsz != 0 ||
              m->length > end || marker_block(m->length, bsz) != start_blk + b)
            continue;
          found.push_back(*m);
        }
        log::debug("sluicefs: blob {} scan state size {} gen {} window [{}, {}) alloc {}: {} candidate(s)", ino->id, st.size,
                   st.gen, start_blk * bsz, end, alloc, found.size());
        std::sort(found.begin(), found.end(), [](const TailMarker& a, const TailMarker& b) {
          return a.gen != b.gen ? a.gen > b.gen : a.length > b.length;
        });
        for (auto& m : found) {
          const char* p = win.get() + (m.base - start_blk * bsz);
          log::debug("sluicefs: blob {} state size {} gen {}: marker length {} base {} gen {} crc {}", ino->id, st.size,
                     st.gen, m.length, m.base, m.gen, crc32c(p, m.length - m.base) == m.data_crc ? "ok" : "bad");
          if (crc32c(p, m.length - m.base) != m.data_crc) continue;
          length = std::max(length, m.length);
          best_gen = std::max(best_gen, m.gen);
          break;
        }
      }
      (void)bs.close(*blob);
      ino->len = length;
      if (length != st.size) log::info("sluicefs {}: blob {} recovered {} synced bytes past its committed size", fs_.device_, ino->id, length - st.size);
      if (!fs_.read_only()) {
        InodeState ns = st;
        ns.size = length;
        ns.gen = best_gen + 1;  // retires every marker written so far
        ns.flags &= ~kStateWriting;
        SLUICE_RETURN_IF_ERROR(fs_.set_state_locked(*ino, ns));
      }
    }
    return Status::Ok();
  }

  FsCore& fs_;
};

Result<std::unique_ptr<FileSystem>> FsCore::mount_device(std::string_view device, const MountOptions& opts) {
  auto dev = resolve_device(device);
  if (!dev.ok()) return dev.status();
  std::unique_ptr<FsCore> fs(new FsCore());
  fs->device_ = dev->first;
  fs->owns_bdev_ = dev->second;
  fs->opts_ = opts;
  // The blobstore's handle takes the device's host-file lock (bdev::open): a writer alone,
  // or readers only, so that no other process or mount sees a torn namespace.
  blob::LoadOptions lo;
  lo.read_only = opts.read_only;
  auto bs = blob::Blobstore::load(fs->device_, lo);
  if (!bs.ok()) {
    fs->release_device();
    fs->unmounted_ = true;
    return image_error(device, bs.status());
  }
  fs->bs_ = std::move(bs.value());
  auto info = fs->bs_->store_info();
  fs->block_ = info.io_unit;
  fs->cluster_ = info.cluster_size;
  fs->reserve_ = opts.reserve_bytes ? reserve_clusters_for(*opts.reserve_bytes, info.total_clusters, info.cluster_size)
                                    : default_reserve_clusters(info.total_clusters, info.cluster_size);
  if (auto b = bdev::find(fs->device_)) fs->buf_align_ = std::max<uint32_t>(b->geometry().buf_align, 1);
  fs->channels_ = std::make_unique<ChannelSource>(*fs->bs_);
  if (opts.read_cache_bytes > 0) fs->cache_ = std::make_unique<ReadCache>(opts.read_cache_bytes);
  fs->write_buffers_ = std::make_unique<WriteBufferPool>(nullptr, fs->block_, fs->buf_align_);
  Status st;
  {
    std::lock_guard lock(fs->md_mu_);
    st = MountTask(*fs).run();
  }
  fs->reopening_ = !opts.read_only;
  if (st.ok()) st = fs->attach_write_buffers();
  if (!st.ok()) {
    fs->channels_->retire();
    fs->bs_->abandon();
    fs->bs_.reset();
    fs->release_device();
    fs->unmounted_ = true;
    return st;
  }
  return std::unique_ptr<FileSystem>(std::move(fs));
}

Status FsCore::unmount() {
  std::lock_guard lock(md_mu_);
  if (unmounted_) return Status::Ok();
  if (handles_.load() > 0)
    return Status(Errc::busy, fmt::format("unmount {}: {} file handle(s) still open", device_, handles_.load()));
  Status st = commit_locked();
  const uint64_t left = channels_->retire();
  Status ul = bs_->unload();
  if (st.ok()) st = ul;
  if (left > 0) keep_for_stragglers(std::move(bs_), device_, left);
  bs_.reset();
  inodes_.clear();
  detach_write_buffers();
  unmounted_ = true;
  release_device();
  return st;
}

void FsCore::abandon() {
  std::lock_guard lock(md_mu_);
  if (unmounted_) return;
  const uint64_t left = channels_->retire();
  bs_->abandon();
  if (left > 0) keep_for_stragglers(std::move(bs_), device_, left);
  bs_.reset();
  inodes_.clear();
  detach_write_buffers();
  unmounted_ = true;
  release_device();
}

void FsCore::release_device() {
  if (owns_bdev_) (void)bdev::unregister(device_);
}

FsCore::~FsCore() {
  if (unmounted_) return;
  if (handles_.load() > 0) log::error("sluicefs {}: destroyed with {} handle(s) open", device_, handles_.load());
  Status st = unmount();
  if (!st.ok()) log::error("sluicefs {}: unmount at destruction: {}", device_, st.to_string());
}

}  // namespace sluice::fs
