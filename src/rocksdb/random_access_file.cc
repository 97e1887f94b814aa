// FSRandomAccessFile. RocksDB reads one table file from many threads at once, while a
// SluiceFS handle serves one thread at a time: the file keeps a few handles in lock-free
// slots, and a read takes one, uses it on its own thread and puts it back. MultiRead
// submits the whole batch before waiting (File::read_batch); ReadAsync keeps its handle until
// RocksDB polls, aborts or deletes the request.
#include <array>
#include <atomic>
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "rocksdb/sluice_files.h"
#include "rocksdb/sluice_io_status.h"

namespace sluice::rocksdb_plugin {
namespace {

using ::rocksdb::FSReadRequest;
using ::rocksdb::IODebugContext;
using ::rocksdb::IOOptions;
using ::rocksdb::IOStatus;
using ::rocksdb::Slice;

class HandlePool {
 public:
  HandlePool(FileContext ctx, std::unique_ptr<fs::File> first) : ctx_(std::move(ctx)) {
    slots_[0].store(first.release(), std::memory_order_relaxed);
  }
  ~HandlePool() {
    for (auto& s : slots_) delete s.load(std::memory_order_relaxed);
  }

  const FileContext& ctx() const { return ctx_; }

  // A handle for this thread's use: a pooled one, or a new one when all are taken. If the
  // path cannot be opened again (renamed or unlinked since), waits for a pooled one.
  Result<std::unique_ptr<fs::File>> take() {
    if (auto f = take_pooled()) return f;
    auto opened = ctx_.mount->fs().open(ctx_.path, {});
    if (opened.ok()) return opened;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto f = take_pooled()) return f;
      std::this_thread::yield();
    }
    return Status(Errc::busy, fmt::format("{}: no free handle: {}", ctx_.path, opened.status().message()));
  }

  void give_back(std::unique_ptr<fs::File> f) {
    for (auto& s : slots_) {
      fs::File* expected = nullptr;
      if (s.compare_exchange_strong(expected, f.get(), std::memory_order_release, std::memory_order_relaxed)) {
        f.release();
        return;
      }
    }
  }

 private:
  std::unique_ptr<fs::File> take_pooled() {
    for (auto& s : slots_) {
      if (s.load(std::memory_order_relaxed) == nullptr) continue;
      if (fs::File* f = s.exchange(nullptr, std::memory_order_acquire)) return std::unique_ptr<fs::File>(f);
    }
    return nullptr;
  }

  FileContext ctx_;
  std::array<std::atomic<fs::File*>, 8> slots_{};
};

// A handle taken for the length of one call.
class Borrowed {
 public:
  explicit Borrowed(HandlePool& pool) : pool_(pool), file_(pool.take()) {}
  ~Borrowed() {
    if (file_.ok() && *file_) pool_.give_back(std::move(*file_));
  }
  Status status() const { return file_.status(); }
  fs::File& operator*() { return **file_; }

 private:
  HandlePool& pool_;
  Result<std::unique_ptr<fs::File>> file_;
};

// One ReadAsync in flight: the io_handle RocksDB holds.
struct AsyncRead {
  HandlePool* pool;
  std::unique_ptr<fs::File> file;
  fs::ReadRequest req;
  std::function<void(const FSReadRequest&, void*)> cb;
  void* cb_arg = nullptr;
  bool done = false;
  bool aborted = false;

  void complete(fs::ReadRequest& r) {
    done = true;
    if (aborted) return;
    FSReadRequest out;  // RocksDB's request may be gone: report through a copy, as POSIX does
    out.offset = r.offset;
    out.len = r.length;
    out.scratch = r.buf;
    out.result = Slice(r.buf, r.result);
    out.status = to_io_status(r.status);
    cb(out, cb_arg);
  }
  Status wait() { return done ? Status::Ok() : file->wait_all(); }
};

void delete_async_read(void* p) {
  auto* a = static_cast<AsyncRead*>(p);
  a->aborted = true;
  (void)a->wait();  // the buffer belongs to RocksDB: nothing may land in it after this
  a->pool->give_back(std::move(a->file));
  delete a;
}

class SluiceRandomAccessFile final : public ::rocksdb::FSRandomAccessFile {
 public:
  SluiceRandomAccessFile(FileContext ctx, std::unique_ptr<fs::File> file) : pool_(std::move(ctx), std::move(file)) {}

  IOStatus Read(uint64_t offset, size_t n, const IOOptions&, Slice* result, char* scratch,
                IODebugContext*) const override {
    Borrowed f(pool_);
    if (!f.status().ok()) return to_io_status(f.status());
    size_t got = 0;
    IOStatus s = read_fully(*f, offset, n, scratch, &got);
    *result = Slice(scratch, got);
    return s;
  }

  IOStatus MultiRead(FSReadRequest* reqs, size_t num_reqs, const IOOptions&, IODebugContext*) override {
    Borrowed f(pool_);
    if (!f.status().ok()) return to_io_status(f.status());
    constexpr size_t kOnStack = 32;
    std::array<fs::ReadRequest, kOnStack> small;
    std::vector<fs::ReadRequest> large;
    fs::ReadRequest* batch = small.data();
    if (num_reqs > kOnStack) {
      large.resize(num_reqs);
      batch = large.data();
    }
    for (size_t i = 0; i < num_reqs; ++i) {
      if (reqs[i].scratch == nullptr) return IOStatus::InvalidArgument("MultiRead: request without a buffer");
      batch[i] = fs::ReadRequest{.offset = reqs[i].offset, .length = reqs[i].len, .buf = reqs[i].scratch};
    }
    Status st = (*f).read_batch(batch, num_reqs);
    if (!st.ok()) return to_io_status(st);
    for (size_t i = 0; i < num_reqs; ++i) {
      size_t got = batch[i].result;
      IOStatus s = to_io_status(batch[i].status);
      // A short read before end of file: finish it synchronously.
      if (s.ok() && got < reqs[i].len && got > 0) {
        size_t more = 0;
        s = read_fully(*f, reqs[i].offset + got, reqs[i].len - got, reqs[i].scratch + got, &more);
        got += more;
      }
      reqs[i].result = Slice(reqs[i].scratch, got);
      reqs[i].status = s;
    }
    return IOStatus::OK();
  }

  IOStatus ReadAsync(FSReadRequest& req, const IOOptions& opts, std::function<void(const FSReadRequest&, void*)> cb,
                     void* cb_arg, void** io_handle, ::rocksdb::IOHandleDeleter* del_fn,
                     IODebugContext* dbg) override {
    auto file = pool_.take();
    if (!file.ok()) return to_io_status(file.status());
    auto a = std::make_unique<AsyncRead>();
    a->pool = &pool_;
    a->file = std::move(*file);
    a->req = fs::ReadRequest{.offset = req.offset, .length = req.len, .buf = req.scratch};
    a->cb = std::move(cb);
    a->cb_arg = cb_arg;
    AsyncRead* raw = a.get();
    Status st = a->file->read_async(&a->req, [raw](fs::ReadRequest& r) { raw->complete(r); });
    if (!st.ok()) {
      pool_.give_back(std::move(a->file));
      // As RocksDB's default: report through the callback, synchronously.
      req.status = Read(req.offset, req.len, opts, &req.result, req.scratch, dbg);
      a->cb(req, cb_arg);
      return IOStatus::OK();
    }
    *io_handle = a.release();
    *del_fn = delete_async_read;
    return IOStatus::OK();
  }

  bool use_direct_io() const override { return pool_.ctx().direct; }
  size_t GetRequiredBufferAlignment() const override { return pool_.ctx().mount->block_size(); }
  IOStatus InvalidateCache(size_t, size_t) override { return IOStatus::OK(); }

 private:
  mutable HandlePool pool_;
};

}  // namespace

// Poll: RocksDB expects every handle's callback to have run when this returns.
IOStatus poll_async_reads(std::vector<void*>& io_handles) {
  for (void* h : io_handles) {
    if (h == nullptr) continue;
    Status st = static_cast<AsyncRead*>(h)->wait();
    if (!st.ok()) return to_io_status(st);
  }
  return IOStatus::OK();
}

// AbortIO: reads are not cancelled, only waited for; each callback still runs once, as with
// POSIX's io_uring (a read that finished before its cancel reports its result). RocksDB frees
// its per-read state in that callback, so skipping it would leak.
IOStatus abort_async_reads(std::vector<void*>& io_handles) {
  for (void* h : io_handles) {
    if (h == nullptr) continue;
    (void)static_cast<AsyncRead*>(h)->wait();
  }
  return IOStatus::OK();
}

std::unique_ptr<::rocksdb::FSRandomAccessFile> make_random_access_file(FileContext ctx, std::unique_ptr<fs::File> file) {
  return std::make_unique<SluiceRandomAccessFile>(std::move(ctx), std::move(file));
}

}  // namespace sluice::rocksdb_plugin
