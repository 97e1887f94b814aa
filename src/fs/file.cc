// FileHandle: lifecycle and the read path.
#include "fs/file.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "base/log.h"

namespace sluice::fs {

struct FileHandle::Async {
  ReadRequest* req = nullptr;
  std::function<void(ReadRequest&)> done;
  IoWait w;
  uint64_t device_bytes = 0;  // bytes the device read delivers (0: completed already)
};

FileHandle::FileHandle(FsCore& fs, std::shared_ptr<Inode> ino, bool writable, bool cache_writes)
    : fs_(fs), ino_(std::move(ino)), writable_(writable), cache_writes_(writable && cache_writes) {}

FileHandle::~FileHandle() {
  if (closed_) return;
  Status st = close();
  if (!st.ok()) log::warn("sluicefs: closing a file at destruction: {}", st.to_string());
}

Status FileHandle::check_open(bool write) const {
  if (closed_) return Status(Errc::invalid_argument, "the file handle is closed");
  if (write && !writable_) return Status(Errc::invalid_argument, "the file was not opened for writing");
  return Status::Ok();
}

Status FileHandle::close() {
  if (closed_) return Status(Errc::invalid_argument, "the file handle is already closed");
  Status st = wait_all();
  if (writable_) {
    std::lock_guard lock(ino_->mu);
    auto ch = fs_.channels().get();
    if (!ch.ok()) {
      st = ch.status();
    } else if (ino_->ws && --ino_->ws->writers == 0) {
      Status e = end_write_locked(*ch);
      if (st.ok()) st = e;
    }
  }
  closed_ = true;
  fs_.release(ino_);
  return st;
}

uint64_t FileHandle::size() const {
  std::lock_guard lock(ino_->mu);
  return ino_->len;
}

char* thread_scratch(size_t bytes, size_t align) {
  struct Scratch {
    std::unique_ptr<char, void (*)(void*)> p{nullptr, free};
    size_t size = 0;
  };
  thread_local Scratch t;
  if (t.size < bytes) {
    const size_t size = (bytes + 4095) / 4096 * 4096;
    t.p.reset(static_cast<char*>(std::aligned_alloc(std::max<size_t>(4096, align), size)));
    t.size = t.p ? size : 0;
  }
  return t.p.get();
}

uint64_t FileHandle::snapshot(char* dst, uint64_t off, size_t n, uint64_t* len) {
  std::lock_guard lock(ino_->mu);
  *len = ino_->len;
  if (!ino_->ws) return *len;
  const WriteState& ws = *ino_->ws;
  const uint64_t bstart = ws.durable / fs_.block() * fs_.block();
  const uint64_t end = std::min<uint64_t>(off + n, *len);
  if (end > bstart && dst != nullptr) {
    const uint64_t from = std::max(off, bstart);
    std::memcpy(dst + (from - off), ws.buf->data() + (from - bstart), end - from);
  }
  return bstart;
}

Status FileHandle::read_device(char* dst, uint64_t off, size_t n, uint64_t dev_limit, blob::BlobChannel* ch) {
  blob::Blobstore& bs = fs_.bs();
  blob::Blob& blob = *ino_->blob;
  const uint32_t bsz = fs_.block();
  auto& counters = fs_.counters();
  auto read_blocks = [&](char* p, uint64_t blk, uint64_t count) {
    IoWait w;
    Status st = submit_io(bs, ch, w, [&](bdev::IoCallback cb, void* arg) { return bs.read(ch, blob, p, blk, count, cb, arg); });
    return st.ok() ? wait_io(bs, ch, w) : st;
  };
  seq_run_ = off == last_end_ ? seq_run_ + 1 : 0;
  last_end_ = off + n;
  if (reinterpret_cast<uintptr_t>(dst) % fs_.buf_align() == 0 && off % bsz == 0 && n % bsz == 0) {
    FsCore::count(counters.direct_reads);
    return read_blocks(dst, off / bsz, n / bsz);
  }
  const uint64_t epoch = ino_->cache_epoch.load();
  if (ra_epoch_ != epoch) ra_len_ = 0;
  const uint64_t readahead = std::min<uint64_t>(fs_.options().readahead_bytes, 8u << 20);
  const uint64_t alloc = ino_->allocated.load();
  ReadCache* cache = fs_.cache();
  while (n > 0) {
    // 1. The read-ahead window.
    if (ra_len_ > 0 && off >= ra_off_ && off < ra_off_ + ra_len_) {
      const size_t take = std::min<uint64_t>(n, ra_off_ + ra_len_ - off);
      std::memcpy(dst, ra_buf_.get() + (off - ra_off_), take);
      dst += take, off += take, n -= take;
      continue;
    }
    const uint64_t first = off / bsz;
    const uint64_t chunk = off / ReadCache::kChunk, cstart = chunk * ReadCache::kChunk;
    const ReadCache::Key key{ino_->id, epoch, chunk};
    const size_t chunk_take = std::min<uint64_t>(n, cstart + ReadCache::kChunk - off);  // this chunk's part
    // 2. The shared read cache, by chunk, for every reader: the next compaction reads the
    //    tables a flush or compaction just wrote (and left there) from start to end.
    if (cache && cache->lookup(key, off - cstart, chunk_take, dst)) {
      FsCore::count(counters.cache_hits);
      dst += chunk_take, off += chunk_take, n -= chunk_take;
      continue;
    }
    // 3. A sequential reader (compaction input, WAL replay) gets a read-ahead window.
    if (seq_run_ >= 2 && readahead >= bsz) {
      uint64_t want = std::max<uint64_t>((readahead + bsz - 1) / bsz * bsz, (off + n + bsz - 1) / bsz * bsz - first * bsz);
      want = std::min(want, alloc - first * bsz);
      if (ra_cap_ < want) {
        ra_buf_.reset(static_cast<char*>(std::aligned_alloc(std::max<size_t>(4096, fs_.buf_align()), (want + 4095) / 4096 * 4096)));
        ra_cap_ = ra_buf_ ? (want + 4095) / 4096 * 4096 : 0;
      }
      if (ra_buf_) {
        ra_len_ = 0;
        SLUICE_RETURN_IF_ERROR(read_blocks(ra_buf_.get(), first, want / bsz));
        FsCore::count(counters.readahead_fills);
        ra_off_ = first * bsz;
        ra_len_ = std::min<uint64_t>(want, dev_limit - ra_off_);  // beyond it the device is stale
        ra_epoch_ = epoch;
        continue;
      }
    }
    // 4. A cache miss reads the whole chunk and keeps it.
    if (cache) {
      FsCore::count(counters.cache_misses);
      FsCore::count(counters.bounced_reads);
      const uint64_t cend = std::min({cstart + ReadCache::kChunk, (dev_limit + bsz - 1) / bsz * bsz, alloc});
      char* b = thread_scratch(cend - cstart, fs_.buf_align());
      if (b == nullptr) return Status(Errc::no_space, "out of memory for a read buffer");
      SLUICE_RETURN_IF_ERROR(read_blocks(b, cstart / bsz, (cend - cstart) / bsz));
      // Only bytes below the device limit are stable.
      const uint64_t stable = std::min(cend, dev_limit);
      if (stable > cstart) cache->insert(key, b, stable - cstart);
      std::memcpy(dst, b + (off - cstart), chunk_take);
      dst += chunk_take, off += chunk_take, n -= chunk_take;
      continue;
    }
    // 5. A bounce buffer of the calling thread.
    FsCore::count(counters.bounced_reads);
    const uint64_t last = std::min<uint64_t>((off + n + bsz - 1) / bsz, first + (1u << 20) / bsz);
    char* b = thread_scratch((last - first) * bsz, fs_.buf_align());
    if (b == nullptr) return Status(Errc::no_space, "out of memory for a read buffer");
    SLUICE_RETURN_IF_ERROR(read_blocks(b, first, last - first));
    const size_t take = std::min<uint64_t>(n, last * bsz - off);
    std::memcpy(dst, b + (off - first * bsz), take);
    dst += take, off += take, n -= take;
  }
  return Status::Ok();
}

Result<size_t> FileHandle::pread(void* buf, size_t n, uint64_t offset) {
  SLUICE_RETURN_IF_ERROR(check_open(false));
  uint64_t len = 0;
  char* dst = static_cast<char*>(buf);
  const uint64_t dev_limit = snapshot(dst, offset, n, &len);
  if (offset >= len) return size_t{0};
  n = std::min<uint64_t>(n, len - offset);
  if (offset < dev_limit) {
    auto ch = fs_.channels().get();
    if (!ch.ok()) return ch.status();
    Status st = read_device(dst, offset, std::min<uint64_t>(n, dev_limit - offset), dev_limit, *ch);
    if (!st.ok()) return st;
  }
  return static_cast<size_t>(n);
}

Status FileHandle::read_batch(ReadRequest* reqs, size_t count) {
  SLUICE_RETURN_IF_ERROR(check_open(false));
  auto ch = fs_.channels().get();
  if (!ch.ok()) return ch.status();
  blob::Blobstore& bs = fs_.bs();
  const uint32_t bsz = fs_.block();
  // Aligned requests wholly on the device go out together; the rest are read one by one.
  std::vector<IoWait> waits(count);
  Status first_error;
  for (size_t i = 0; i < count; ++i) {
    ReadRequest& r = reqs[i];
    r.result = 0;
    r.status = Status::Ok();
    uint64_t len = 0;
    const uint64_t dev_limit = snapshot(nullptr, r.offset, 0, &len);
    const bool direct = reinterpret_cast<uintptr_t>(r.buf) % fs_.buf_align() == 0 && r.offset % bsz == 0 &&
                        r.length % bsz == 0 && r.offset + r.length <= dev_limit && r.length > 0;
    if (!direct) continue;
    r.result = r.length;
    Status st = submit_io(bs, *ch, waits[i], [&](bdev::IoCallback cb, void* arg) {
      return bs.read(*ch, *ino_->blob, r.buf, r.offset / bsz, r.length / bsz, cb, arg);
    });
    if (!st.ok()) {
      r.status = st;
      r.result = 0;
    }
  }
  for (size_t i = 0; i < count; ++i) {
    ReadRequest& r = reqs[i];
    if (waits[i].pending > 0) {
      Status st = wait_io(bs, *ch, waits[i]);
      if (!st.ok()) {
        r.status = st;
        r.result = 0;
      }
    } else if (r.result == 0 && r.status.ok()) {
      auto got = pread(r.buf, r.length, r.offset);
      if (got.ok()) {
        r.result = *got;
      } else {
        r.status = got.status();
      }
    }
    if (!r.status.ok() && first_error.ok()) first_error = r.status;
  }
  return first_error;
}

Status FileHandle::read_async(ReadRequest* req, std::function<void(ReadRequest&)> done) {
  SLUICE_RETURN_IF_ERROR(check_open(false));
  auto ch = fs_.channels().get();
  if (!ch.ok()) return ch.status();
  auto a = std::make_unique<Async>();
  a->req = req;
  a->done = std::move(done);
  req->result = 0;
  req->status = Status::Ok();
  const uint32_t bsz = fs_.block();
  uint64_t len = 0;
  const uint64_t dev_limit = snapshot(nullptr, req->offset, 0, &len);
  const bool direct = reinterpret_cast<uintptr_t>(req->buf) % fs_.buf_align() == 0 && req->offset % bsz == 0 &&
                      req->length % bsz == 0 && req->offset + req->length <= dev_limit && req->length > 0;
  if (direct) {
    blob::Blobstore& bs = fs_.bs();
    Status st = submit_io(bs, *ch, a->w, [&](bdev::IoCallback cb, void* arg) {
      return bs.read(*ch, *ino_->blob, req->buf, req->offset / bsz, req->length / bsz, cb, arg);
    });
    if (!st.ok()) return st;
    a->device_bytes = req->length;
  } else {
    // Not aligned or not on the device: read now; `done` still runs from poll().
    auto got = pread(req->buf, req->length, req->offset);
    if (got.ok()) {
      req->result = *got;
    } else {
      req->status = got.status();
    }
  }
  async_.push_back(std::move(a));
  return Status::Ok();
}

int FileHandle::poll() {
  if (async_.empty()) return 0;
  auto ch = fs_.channels().get();
  if (ch.ok()) fs_.bs().poll(*ch);
  int n = 0;
  // In submission order, so completions of one handle are reported in order.
  while (!async_.empty() && async_.front()->w.pending == 0) {
    std::unique_ptr<Async> a = std::move(async_.front());
    async_.pop_front();
    if (a->device_bytes > 0) {
      if (a->w.status != Errc::ok) {
        a->req->status = Status(a->w.status, fmt::format("read of blob {} failed", ino_->id));
      } else {
        a->req->result = a->device_bytes;
      }
    }
    if (a->done) a->done(*a->req);
    ++n;
  }
  return n;
}

Status FileHandle::wait_all() {
  if (async_.empty()) return Status::Ok();
  auto ch = fs_.channels().get();
  if (!ch.ok()) return ch.status();
  for (auto& a : async_) {
    if (a->w.pending == 0) continue;
    (void)wait_io(fs_.bs(), *ch, a->w);  // a failure is reported through the request
  }
  while (poll() > 0) {
  }
  return Status::Ok();
}

Status FileHandle::preallocate(uint64_t bytes) {
  SLUICE_RETURN_IF_ERROR(check_open(true));
  std::lock_guard lock(ino_->mu);
  return fs_.grow(*ino_, bytes, true);
}

}  // namespace sluice::fs
