// Image files for tests: a sparse temporary file in $TMPDIR (or /tmp), and reading or
// patching an image's bytes (to check that something left it unchanged, or to damage it).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

namespace sluice::testing {

// A sparse file of the given size, removed on destruction; path() is empty if it could not
// be made.
class TempFile {
 public:
  explicit TempFile(uint64_t size) {
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir ? dir : "/tmp") + "/sluice-test-XXXXXX";
    int fd = mkstemp(path_.data());
    if (fd < 0) {
      path_.clear();
      return;
    }
    if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
      unlink(path_.c_str());
      path_.clear();
    }
    close(fd);
  }
  ~TempFile() {
    if (!path_.empty()) unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Every byte of an image file.
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

}  // namespace sluice::testing
