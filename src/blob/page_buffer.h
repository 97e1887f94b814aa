// A zeroed run of metadata pages aligned for direct I/O, for the control path's synchronous
// page reads and writes (internal to src/blob).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "blob/format.h"

namespace sluice::blob {

struct PageBuffer {
  explicit PageBuffer(uint64_t pages) : p(static_cast<char*>(std::aligned_alloc(kPageSize, pages * kPageSize))) {
    std::memset(p, 0, pages * kPageSize);
  }
  ~PageBuffer() { std::free(p); }
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;
  char* p;
};

}  // namespace sluice::blob
