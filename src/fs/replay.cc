// Replay of write buffers left behind by a process that died (write_buffer.h): the second
// half of the process-death crash model. Runs at a read-write mount, after the namespace and
// the files' tails are recovered, and before anything else can open a file.
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "base/log.h"
#include "fs/file.h"
#include "fs/fs_core.h"

namespace sluice::fs {

Status FsCore::attach_write_buffers() {
  if (read_only() || opts_.write_buffer_dir.empty()) return Status::Ok();
  auto dir = BufferDir::open(opts_.write_buffer_dir, bs_->store_info().uuid);
  if (!dir.ok()) {
    log::warn("sluicefs {}: {}; unsynced appends will not survive a crash of this process", device_,
              dir.status().message());
    return Status::Ok();
  }
  for (uint64_t blob : (*dir)->leftovers()) {
    replaying_ = true;
    Status st = replay_write_buffer(**dir, blob);
    replaying_ = false;
    if (!st.ok())
      return Status(st.code(), fmt::format("{}: replaying the write buffer {} left by a process that died: {}", device_,
                                           (*dir)->file_of(blob), st.message()));
    // Replayed and synced (or nothing to replay): the copy in the file system is the one now.
    (void)::unlink((*dir)->file_of(blob).c_str());
  }
  bufdir_ = std::move(dir.value());
  write_buffers_ = std::make_unique<WriteBufferPool>(bufdir_.get(), block_, buf_align_);
  return Status::Ok();
}

void FsCore::detach_write_buffers() {
  // Idle buffers are removed before their directory; a straggler handle (abandon) gets one in memory.
  write_buffers_ = std::make_unique<WriteBufferPool>(nullptr, block_, buf_align_);
  bufdir_.reset();
}

Status FsCore::replay_write_buffer(const BufferDir& dir, uint64_t blob) {
  const std::string file = dir.file_of(blob);
  auto img = read_leftover(dir, blob);
  if (!img.ok()) {
    if (img.status().code() != Errc::corrupt) return img.status();
    log::warn("sluicefs {}: discarding {}", device_, img.status().message());
    return Status::Ok();
  }
  if (img->data.empty()) return Status::Ok();
  std::shared_ptr<Inode> ino;
  {
    std::lock_guard lock(md_mu_);
    auto it = inodes_.find(blob);
    if (it == inodes_.end() || it->second->orphan || it->second->is_dir()) {
      log::info("sluicefs {}: blob {} is gone; its write buffer ({} bytes) is dropped with it", device_, blob,
                img->data.size());
      return Status::Ok();
    }
    ino = it->second;
    const uint64_t len = ino->len;
    if (img->block_size != block_ || img->start > len) {
      // The device lost bytes the buffer's header says were synced (or the buffer is of another
      // geometry): its bytes cannot be placed. Keep them aside for a human to look at.
      const std::string aside = file + ".unreplayed";
      log::error("sluicefs {}: {}: {} bytes from offset {} do not fit file {} of {} bytes; kept as {}", device_, file,
                 img->data.size(), img->start, path_locked(*ino), len, aside);
      (void)std::rename(file.c_str(), aside.c_str());
      return Status::Ok();
    }
    SLUICE_RETURN_IF_ERROR(add_handle_locked(*ino));
  }
  // The handle gets a buffer in memory: bufdir_ is attached only after every replay.
  FileHandle h(*this, ino, /*writable=*/true);
  SLUICE_RETURN_IF_ERROR(h.begin_write());
  const uint64_t start = img->start, end = start + img->data.size();
  const uint64_t len = h.size();
  // [start, len) is on the device; the buffer is newer where they differ (an overwrite of the
  // last block that never reached the device).
  const uint64_t overlap = std::min(end, len) - start;
  std::string on_device(overlap, '\0');
  auto got = h.pread(on_device.data(), overlap, start);
  if (!got.ok()) return got.status();
  if (*got != overlap || std::memcmp(on_device.data(), img->data.data(), overlap) != 0)
    SLUICE_RETURN_IF_ERROR(h.pwrite(img->data.data(), overlap, start));
  if (end > len) SLUICE_RETURN_IF_ERROR(h.append(img->data.data() + (len - start), end - len));
  SLUICE_RETURN_IF_ERROR(h.sync());
  SLUICE_RETURN_IF_ERROR(h.close());
  log::info("sluicefs {}: file {}: {} bytes a process wrote before it died were replayed from its write buffer", device_,
            path_of(*ino), end > len ? end - len : 0);
  return Status::Ok();
}

}  // namespace sluice::fs
