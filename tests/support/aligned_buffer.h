// A zeroed buffer aligned for direct I/O (4 KiB), with position-dependent patterns.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace sluice::testing {

class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t size) : size_(size), p_(static_cast<char*>(std::aligned_alloc(4096, round(size)))) {
    std::memset(p_, 0, round(size));
  }
  ~AlignedBuffer() { std::free(p_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  char* data() { return p_; }
  size_t size() const { return size_; }
  // Bytes depend on the seed and the position, so misplaced data never matches.
  void fill_pattern(uint64_t seed) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < size_; ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      p_[i] = static_cast<char>(x);
    }
  }
  bool is_zero(size_t off, size_t len) const {
    for (size_t i = off; i < off + len; ++i)
      if (p_[i] != 0) return false;
    return true;
  }
  bool operator==(const AlignedBuffer& o) const { return size_ == o.size_ && std::memcmp(p_, o.p_, size_) == 0; }

 private:
  static size_t round(size_t n) { return (n + 4095) / 4096 * 4096; }
  size_t size_;
  char* p_;
};

}  // namespace sluice::testing
