// Helpers shared by the bdev tests (and the layers above that test on files): aligned buffers
// with patterns, temporary backing files, reading and patching image files, bounded polling.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "base/clock.h"
#include "bdev/channel.h"

namespace sluice::bdev::testing {

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

// A sparse file of the given size in $TMPDIR (or /tmp), removed on destruction.
class TempFile {
 public:
  explicit TempFile(uint64_t size) {
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir ? dir : "/tmp") + "/sluice-test-XXXXXX";
    int fd = mkstemp(path_.data());
    if (fd >= 0) {
      if (ftruncate(fd, static_cast<off_t>(size)) != 0) path_.clear();
      close(fd);
    }
  }
  ~TempFile() {
    if (!path_.empty()) unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Every byte of an image file (to check that something left it unchanged).
inline std::string read_image(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Overwrites bytes of an image file in place.
inline void patch_image(const std::string& path, uint64_t offset, const std::string& bytes) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Polls until `cond` holds or `timeout_ms` passes; false on timeout.
template <typename Cond>
bool poll_until(BdevChannel* ch, Cond cond, uint64_t timeout_ms = 10000) {
  uint64_t deadline = clock::now_ns() + timeout_ms * 1000000;
  while (!cond()) {
    ch->poll();
    if (clock::now_ns() > deadline) return false;
  }
  return true;
}

}  // namespace sluice::bdev::testing
