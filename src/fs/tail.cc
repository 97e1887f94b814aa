// The write path: appends collect in the inode's write buffer; a sync writes the dirty tail
// from the last block boundary with a tail marker in the padding and then FLUSHes — one data
// write and one FLUSH, no metadata (docs/format/sluicefs.md, "Appends and sync").
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "base/clock.h"
#include "base/crc32c.h"
#include "base/log.h"
#include "fs/file.h"

namespace sluice::fs {
namespace {

constexpr size_t kZeroChunk = 64u << 10;
const char kZeroes[kZeroChunk] = {};

// Submits writes and FLUSHes on one channel and waits for them.
class Writer {
 public:
  Writer(blob::Blobstore& bs, blob::BlobChannel* ch, blob::Blob& blob) : bs_(bs), ch_(ch), blob_(blob) {}
  void write(const char* src, uint64_t blk, uint64_t count) {
    if (!st_.ok()) return;
    if (src == nullptr) {
      st_ = Status(Errc::no_space, "out of memory for an aligned write buffer");
      return;
    }
    st_ = submit_io(bs_, ch_, w_, [&](bdev::IoCallback cb, void* arg) { return bs_.write(ch_, blob_, src, blk, count, cb, arg); });
  }
  Status wait() {
    Status done = wait_io(bs_, ch_, w_);
    return st_.ok() ? done : st_;
  }
  Status flush() {
    SLUICE_RETURN_IF_ERROR(wait());
    st_ = submit_io(bs_, ch_, w_, [&](bdev::IoCallback cb, void* arg) { return bs_.flush(ch_, cb, arg); });
    return wait();
  }

 private:
  blob::Blobstore& bs_;
  blob::BlobChannel* ch_;
  blob::Blob& blob_;
  IoWait w_;
  Status st_;
};

}  // namespace

Status FileHandle::begin_write() {
  std::lock_guard lock(ino_->mu);
  if (ino_->ws) {
    ++ino_->ws->writers;
    return Status::Ok();
  }
  auto ch = fs_.channels().get();
  if (!ch.ok()) return ch.status();
  auto ws = std::make_unique<WriteState>();
  WriteBufferPool& pool = fs_.write_buffers();
  ws->cap = pool.append_capacity();
  auto buf = pool.take(ino_->id);
  if (!buf.ok()) return buf.status();
  ws->buf = std::move(buf.value());
  const uint64_t len = ino_->len;
  // Recovery scans the tail of files marked as being written.
  auto st = fs_.update_state(*ino_, [&](InodeState& s) {
    if (s.size != len) {
      s.size = len;
      ++s.gen;
    }
    s.flags |= kStateWriting;
  });
  if (!st.ok()) return st.status();
  ws->durable = len;
  ws->gen = st->gen;
  ws->writers = 1;
  ino_->ws = std::move(ws);
  Status loaded = load_tail_block_locked(*ch);
  if (!loaded.ok()) ino_->ws.reset();
  return loaded;
}

Status FileHandle::load_tail_block_locked(blob::BlobChannel* ch) {
  WriteState& ws = *ino_->ws;
  const uint32_t bsz = fs_.block();
  const uint64_t blk = ws.durable / bsz;
  ws.base = blk * bsz;
  const size_t part = ws.durable % bsz;
  ws.buf->rebase(ws.base);
  if (part > 0) {
    IoWait w;
    blob::Blobstore& bs = fs_.bs();
    SLUICE_RETURN_IF_ERROR(submit_io(bs, ch, w, [&](bdev::IoCallback cb, void* arg) {
      return bs.read(ch, *ino_->blob, ws.buf->data(), blk, 1, cb, arg);
    }));
    SLUICE_RETURN_IF_ERROR(wait_io(bs, ch, w));
  }
  ws.buf->set_end(ws.durable);
  ws.crc = crc32c(ws.buf->data(), part);
  return Status::Ok();
}

Status FileHandle::append_locked(const char* data, size_t n, blob::BlobChannel* ch) {
  WriteState& ws = *ino_->ws;
  const uint32_t bsz = fs_.block();
  while (n > 0) {
    const uint64_t bstart = ws.durable / bsz * bsz;
    const uint64_t used = ino_->len - bstart;
    if (used >= ws.cap) {
      // The buffer is full: push it, keeping the size record close enough behind that
      // recovery's window still finds the markers (a sync does the same).
      SLUICE_RETURN_IF_ERROR(write_tail_locked(ch));
      if (ws.durable - ino_->committed_size.load() > kSizeCommitEvery) SLUICE_RETURN_IF_ERROR(rebase_locked(ch));
      continue;
    }
    const size_t take = std::min<uint64_t>(n, ws.cap - used);
    const uint64_t new_len = ino_->len + take;
    // The allocation covers the data and the block its tail marker will go in.
    SLUICE_RETURN_IF_ERROR(fs_.grow(*ino_, (marker_block(new_len, bsz) + 1) * bsz, false));
    std::memcpy(ws.buf->data() + used, data, take);
    ws.crc = crc32c(data, take, ws.crc);
    ino_->len = new_len;
    ws.buf->set_end(new_len);  // from here on the bytes outlive the process
    data += take;
    n -= take;
  }
  ino_->mtime_ns = clock::wall_ns();
  return Status::Ok();
}

// Makes [durable, len) durable. The write covers the blocks from the one holding `durable`
// to the one holding the new tail marker. The block holding the marker of the current
// durable length (while the size record lags it) must never be lost without the new marker
// surviving: a write of one block cannot tear, so the common case is one write and one
// FLUSH; a longer write first writes and FLUSHes everything else, then that block alone.
Status FileHandle::write_tail_locked(blob::BlobChannel* ch) {
  WriteState& ws = *ino_->ws;
  const uint32_t bsz = fs_.block();
  const uint64_t L = ino_->len, D = ws.durable;
  Writer io(fs_.bs(), ch, *ino_->blob);
  if (L == D && !ws.tail_dirty) {
    if (!ws.unflushed) return Status::Ok();
    SLUICE_RETURN_IF_ERROR(io.flush());
    ws.unflushed = false;
    return Status::Ok();
  }
  const uint64_t bD = D / bsz, t = marker_block(L, bsz), nblocks = t - bD + 1;
  SLUICE_RETURN_IF_ERROR(fs_.grow(*ino_, (t + 1) * bsz, false));
  char* p = ws.buf->data();
  const uint64_t used = L - bD * bsz;
  std::memset(p + used, 0, nblocks * bsz - used);
  encode_marker({ino_->id, L, ws.base, ws.gen, ws.crc}, p + nblocks * bsz - kMarkerSize);
  // A piece starting inside the buffer may not meet the device's buffer alignment (when it
  // exceeds the block size): copy it to an aligned buffer of the calling thread.
  auto aligned = [&](const char* src, uint64_t blocks) -> const char* {
    if (reinterpret_cast<uintptr_t>(src) % fs_.buf_align() == 0) return src;
    char* copy = thread_scratch(blocks * bsz, fs_.buf_align());
    if (copy != nullptr) std::memcpy(copy, src, blocks * bsz);
    return copy;
  };
  const bool guard = nblocks > 1 && D > ino_->committed_size.load();
  // The new marker must be able to survive once D's is overwritten: if it lands in clusters
  // whose allocation is not yet durable, commit that first (a sync would commit it anyway).
  if (guard && fs_.md_dirty()) SLUICE_RETURN_IF_ERROR(fs_.commit());
  FsCore::count(fs_.counters().syncs);
  if (guard) FsCore::count(fs_.counters().two_phase_syncs);
  if (!guard) {
    io.write(p, bD, nblocks);
  } else {
    const uint64_t m = marker_block(D, bsz);
    if (m > bD) io.write(p, bD, m - bD);
    if (t > m) io.write(aligned(p + (m + 1 - bD) * bsz, t - m), m + 1, t - m);
    SLUICE_RETURN_IF_ERROR(io.flush());
    io.write(aligned(p + (m - bD) * bsz, 1), m, 1);
  }
  SLUICE_RETURN_IF_ERROR(io.flush());
  ws.durable = L;
  ws.unflushed = false;
  ws.tail_dirty = false;
  const uint64_t nb = L / bsz;
  // Blocks [bD, nb) are now stable (the partial block at nb is rewritten by the next push).
  if (cache_writes_ && nb > bD && fs_.cache() != nullptr) {
    fs_.cache()->fill(ino_->id, ino_->cache_epoch.load(), bD * bsz, p, (nb - bD) * bsz);
  }
  if (nb > bD) {
    ws.buf->rebase(nb * bsz);
    std::memmove(p, p + (nb - bD) * bsz, L % bsz);
    ws.buf->set_end(L);
  }
  return Status::Ok();
}

Status FileHandle::sync_locked(blob::BlobChannel* ch) {
  WriteState& ws = *ino_->ws;
  SLUICE_RETURN_IF_ERROR(write_tail_locked(ch));
  // Bound how far recovery must scan: commit the size once it lags too far.
  if (ws.durable - ino_->committed_size.load() > kSizeCommitEvery) return rebase_locked(ch);
  if (fs_.md_dirty()) return fs_.commit();
  return Status::Ok();
}

Status FileHandle::rebase_locked(blob::BlobChannel* ch) {
  (void)ch;
  WriteState& ws = *ino_->ws;
  const uint32_t bsz = fs_.block();
  const uint64_t L = ino_->len;
  const int64_t mtime = ino_->mtime_ns;
  auto st = fs_.update_state(*ino_, [&](InodeState& s) {
    s.size = L;
    ++s.gen;  // retires the markers of the old generation
    s.mtime_ns = mtime;
  });
  if (!st.ok()) return st.status();
  ws.gen = st->gen;
  ws.base = L / bsz * bsz;
  ws.crc = crc32c(ws.buf->data(), L % bsz);
  return fs_.commit();
}

Status FileHandle::truncate_locked(uint64_t size, blob::BlobChannel* ch) {
  WriteState& ws = *ino_->ws;
  const uint32_t bsz = fs_.block();
  if (size > ino_->len) {
    while (ino_->len < size)
      SLUICE_RETURN_IF_ERROR(append_locked(kZeroes, std::min<uint64_t>(kZeroChunk, size - ino_->len), ch));
    return Status::Ok();
  }
  if (size == ino_->len) return Status::Ok();
  SLUICE_RETURN_IF_ERROR(write_tail_locked(ch));
  ino_->len = size;
  ws.durable = size;
  SLUICE_RETURN_IF_ERROR(load_tail_block_locked(ch));
  ino_->mtime_ns = clock::wall_ns();
  const int64_t mtime = ino_->mtime_ns;
  auto st = fs_.update_state(*ino_, [&](InodeState& s) {
    s.size = size;
    ++s.gen;
    s.mtime_ns = mtime;
  });
  if (!st.ok()) return st.status();
  ws.gen = st->gen;
  ra_len_ = 0;
  ino_->cache_epoch.fetch_add(1);
  // A shrink is made durable at once: the bytes past the new end stay on the device, and a
  // later crash must not bring them back.
  SLUICE_RETURN_IF_ERROR(fs_.shrink(*ino_, (marker_block(size, bsz) + 1) * bsz));
  return fs_.commit();
}

Status FileHandle::overwrite_locked(const char* data, size_t n, uint64_t off, blob::BlobChannel* ch) {
  WriteState& ws = *ino_->ws;
  const uint32_t bsz = fs_.block();
  // Bytes under the current markers' checksums change: commit the size first, so that no
  // marker covers them (rare: RocksDB appends).
  SLUICE_RETURN_IF_ERROR(write_tail_locked(ch));
  SLUICE_RETURN_IF_ERROR(rebase_locked(ch));
  const uint64_t L = ino_->len, bstart = L / bsz * bsz, end = off + n;
  ra_len_ = 0;
  ino_->cache_epoch.fetch_add(1);
  if (off < bstart) {
    // Read-modify-write of whole blocks below the buffered tail block.
    blob::Blobstore& bs = fs_.bs();
    uint64_t a = off;
    const uint64_t b = std::min(end, bstart);
    while (a < b) {
      const uint64_t first = a / bsz;
      const uint64_t last = std::min<uint64_t>((b + bsz - 1) / bsz, first + (1u << 20) / bsz);
      const uint64_t chunk_end = std::min(b, last * bsz);
      char* buf = thread_scratch((last - first) * bsz, fs_.buf_align());
      if (buf == nullptr) return Status(Errc::no_space, "out of memory for a write buffer");
      IoWait w;
      SLUICE_RETURN_IF_ERROR(submit_io(bs, ch, w, [&](bdev::IoCallback cb, void* arg) {
        return bs.read(ch, *ino_->blob, buf, first, last - first, cb, arg);
      }));
      SLUICE_RETURN_IF_ERROR(wait_io(bs, ch, w));
      std::memcpy(buf + (a - first * bsz), data + (a - off), chunk_end - a);
      Writer io(bs, ch, *ino_->blob);
      io.write(buf, first, last - first);
      SLUICE_RETURN_IF_ERROR(io.wait());
      a = chunk_end;
    }
    ws.unflushed = true;
  }
  if (end > bstart && off < L) {
    const uint64_t from = std::max(off, bstart), to = std::min(end, L);
    std::memcpy(ws.buf->data() + (from - bstart), data + (from - off), to - from);
    ws.crc = crc32c(ws.buf->data(), L - bstart);
    ws.tail_dirty = true;
  }
  if (end > L) SLUICE_RETURN_IF_ERROR(append_locked(data + (L - off), end - L, ch));
  ino_->mtime_ns = clock::wall_ns();
  return Status::Ok();
}

Status FileHandle::end_write_locked(blob::BlobChannel* ch) {
  WriteState& ws = *ino_->ws;
  const uint32_t bsz = fs_.block();
  Status st = write_tail_locked(ch);
  if (st.ok() && ws.durable - ino_->committed_size.load() > kSizeCommitEvery) st = rebase_locked(ch);
  if (st.ok()) {
    const uint64_t len = ino_->len;
    const int64_t mtime = ino_->mtime_ns;
    auto r = fs_.update_state(*ino_, [&](InodeState& s) {
      s.size = len;
      ++s.gen;
      s.mtime_ns = mtime;
      s.flags &= ~kStateWriting;
    });
    st = r.status();
    // Give back what preallocation reserved beyond the data.
    if (st.ok()) st = fs_.shrink(*ino_, (marker_block(len, bsz) + 1) * bsz);
  }
  // Everything is on the device now; if it is not (the device failed), the buffer stays for
  // the next mount to replay.
  if (st.ok()) {
    fs_.write_buffers().give_back(std::move(ws.buf));
  } else {
    ws.buf->keep();
  }
  ino_->ws.reset();
  return st;
}

Status FileHandle::append(const void* data, size_t n) {
  SLUICE_RETURN_IF_ERROR(check_open(true));
  std::lock_guard lock(ino_->mu);
  auto ch = fs_.channels().get();
  if (!ch.ok()) return ch.status();
  return append_locked(static_cast<const char*>(data), n, *ch);
}

Status FileHandle::pwrite(const void* data, size_t n, uint64_t offset) {
  SLUICE_RETURN_IF_ERROR(check_open(true));
  std::lock_guard lock(ino_->mu);
  auto ch = fs_.channels().get();
  if (!ch.ok()) return ch.status();
  const char* p = static_cast<const char*>(data);
  if (offset >= ino_->len) {
    if (offset > ino_->len) SLUICE_RETURN_IF_ERROR(truncate_locked(offset, *ch));
    return append_locked(p, n, *ch);
  }
  return overwrite_locked(p, n, offset, *ch);
}

Status FileHandle::flush() {
  // Appends are visible to every handle of the file as soon as they are made (the write
  // buffer belongs to the inode), so there is nothing to push.
  return check_open(false);
}

Status FileHandle::sync() {
  SLUICE_RETURN_IF_ERROR(check_open(false));
  if (!writable_) return fs_.md_dirty() ? fs_.commit() : Status::Ok();
  std::lock_guard lock(ino_->mu);
  auto ch = fs_.channels().get();
  if (!ch.ok()) return ch.status();
  return sync_locked(*ch);
}

Status FileHandle::truncate(uint64_t size) {
  SLUICE_RETURN_IF_ERROR(check_open(true));
  std::lock_guard lock(ino_->mu);
  auto ch = fs_.channels().get();
  if (!ch.ok()) return ch.status();
  return truncate_locked(size, *ch);
}

}  // namespace sluice::fs
