#include <cstring>
#include <utility>

#include "env/env.h"

namespace sluice::env {

DmaBuffer::DmaBuffer(size_t size, size_t align) : data_(dma_alloc(size, align)) {
  if (data_ != nullptr) size_ = size;
}

DmaBuffer DmaBuffer::zeroed(size_t size, size_t align) {
  DmaBuffer b(size, align);
  if (b) std::memset(b.data_, 0, size);
  return b;
}

DmaBuffer::DmaBuffer(DmaBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

DmaBuffer& DmaBuffer::operator=(DmaBuffer&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

DmaBuffer::~DmaBuffer() { reset(); }

void* DmaBuffer::release() {
  size_ = 0;
  return std::exchange(data_, nullptr);
}

void DmaBuffer::reset() {
  dma_free(std::exchange(data_, nullptr));
  size_ = 0;
}

}  // namespace sluice::env
