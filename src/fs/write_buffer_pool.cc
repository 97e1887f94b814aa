#include "fs/write_buffer_pool.h"

#include <algorithm>

namespace sluice::fs {
namespace {
constexpr size_t kAppendBytes = 1u << 20;
}  // namespace

WriteBufferPool::WriteBufferPool(const BufferDir* dir, uint32_t block_size, uint32_t buf_align)
    : dir_(dir),
      block_size_(block_size),
      append_capacity_(std::max<size_t>(kAppendBytes / block_size * block_size, 4 * size_t{block_size})),
      align_(std::max<size_t>(4096, buf_align)) {}

WriteBufferPool::~WriteBufferPool() = default;

Result<std::unique_ptr<WriteBuffer>> WriteBufferPool::take(uint64_t blob) {
  std::unique_ptr<WriteBuffer> buf;
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      buf = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (buf && buf->assign(blob, dir_->file_of(blob))) return buf;
  buf.reset();  // could not be renamed: its destructor removes the idle file
  return WriteBuffer::create(dir_, blob, block_size_, append_capacity_ + 2 * size_t{block_size_}, align_);
}

void WriteBufferPool::give_back(std::unique_ptr<WriteBuffer> buf) {
  if (dir_ == nullptr || !buf->survives_process()) return;
  std::lock_guard lock(mu_);
  if (idle_.size() >= kMaxIdle) return;
  if (!buf->idle(dir_->idle_file(next_idle_name_++))) return;
  idle_.push_back(std::move(buf));
}

size_t WriteBufferPool::idle_count() {
  std::lock_guard lock(mu_);
  return idle_.size();
}

}  // namespace sluice::fs
