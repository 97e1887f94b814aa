// The environment layer's DMA memory: buffers a device can read and write directly.
//
// Memory comes from a shared pool of large chunks, backed by 2 MiB hugepages when the system
// has some reserved and by ordinary locked memory otherwise. Buffers of up to 2 MiB come
// from size classes (powers of two, 4 KiB .. 2 MiB) through a per-thread cache, so the
// common dma_alloc/dma_free takes no lock and never touches the heap; larger buffers are
// carved from a chunk under the pool's lock. Any thread may free any buffer.
//
// Drivers translate buffer addresses to IOVAs with dma_translate(): with VFIO the IOVA is
// the virtual address; without an IOMMU it is the physical address.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "base/status.h"

namespace sluice::env {

inline constexpr size_t kDmaPageSize = 4096;        // the minimum alignment of every buffer
inline constexpr size_t kDmaHugepageSize = 2 << 20;  // the largest alignment dma_alloc accepts

enum class HugepageMode {
  automatic,  // hugepages when reserved and mappable, else ordinary memory (one notice)
  off,        // ordinary memory only
  required,   // hugepages or nothing: allocation fails when none can be mapped
};

struct DmaOptions {
  HugepageMode hugepages = HugepageMode::automatic;
  // Bytes mapped at initialization. 0: SLUICE_DMA_MB from the environment when set, else
  // nothing until the first allocation.
  size_t initial_bytes = 0;
  // Bytes each later chunk adds when the pool grows (rounded up to 2 MiB).
  size_t chunk_bytes = 32 << 20;
};

// Optional: the first allocation initializes with default options. Fails if memory was
// already initialized, or if `required` hugepages (or the initial bytes) cannot be mapped.
Status dma_init(const DmaOptions& options = {});
// For tests: unmaps every chunk and forgets the options, so dma_init may run again. Every
// buffer must have been freed and no other thread may be using DMA memory meanwhile.
void dma_teardown();

// A buffer of `size` bytes aligned to max(align, 4096). `align` must be a power of two of at
// most 2 MiB. Returns nullptr (and logs why) on bad arguments or when memory is exhausted.
void* dma_alloc(size_t size, size_t align = kDmaPageSize) noexcept;
// As dma_alloc, zero-filled.
void* dma_zalloc(size_t size, size_t align = kDmaPageSize) noexcept;
// Frees a buffer from dma_alloc, from any thread. nullptr is ignored; a pointer that is not
// a DMA buffer is logged and ignored.
void dma_free(void* p) noexcept;

// Owns one DMA buffer. Check it (operator bool) after construction: allocation may fail.
class DmaBuffer {
 public:
  DmaBuffer() = default;
  explicit DmaBuffer(size_t size, size_t align = kDmaPageSize);
  static DmaBuffer zeroed(size_t size, size_t align = kDmaPageSize);
  DmaBuffer(DmaBuffer&& other) noexcept;
  DmaBuffer& operator=(DmaBuffer&& other) noexcept;
  DmaBuffer(const DmaBuffer&) = delete;
  DmaBuffer& operator=(const DmaBuffer&) = delete;
  ~DmaBuffer();

  void* data() const { return data_; }
  size_t size() const { return size_; }
  explicit operator bool() const { return data_ != nullptr; }
  // Gives up ownership; the caller must dma_free the result.
  void* release();
  void reset();

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

// True when memory is mapped and all of it is hugepage-backed.
bool dma_hugepage_backed();

// The mapped chunks, for registering with io_uring (fixed buffers) or a VFIO container.
// Chunks stay mapped until dma_teardown(); every DMA buffer lies inside one of them.
std::vector<iovec> dma_regions();

// Calls `cb` for every chunk already mapped, then for each new chunk before any of its
// memory is handed out. `cb` runs under the pool's growth lock: it must not allocate DMA
// memory or (un)watch. Returns a handle for dma_unwatch_regions. dma_teardown drops watchers.
using DmaRegionCallback = std::function<void(const iovec& region)>;
uint64_t dma_watch_regions(DmaRegionCallback cb);
void dma_unwatch_regions(uint64_t handle);

struct DmaStats {
  size_t mapped_bytes = 0;       // all chunks
  size_t chunks = 0;
  size_t free_bytes = 0;         // held by the shared pool, ready to hand out
  size_t outstanding_bytes = 0;  // handed to threads: in use or in their caches
};
DmaStats dma_stats();

// ---- Committed memory ---------------------------------------------------------------------
// Large anonymous mappings the data path must never fault on (the pool's chunks, RAM disks):
// every page is committed before the call returns and the mapping starts on a 2 MiB boundary.
// A page fault on the data path (several microseconds in a VM per 4 KiB page first touched)
// costs more than an I/O, and random access over 4 KiB pages misses the TLB all the time.
// Both return MAP_FAILED with errno set on failure; munmap(p, bytes) releases the memory.
//
// Reserved 2 MiB hugepages; `bytes` a multiple of 2 MiB. Too few free is ENOMEM here, never a
// SIGBUS later.
void* map_hugepage_memory(size_t bytes);
// Ordinary pages, transparent hugepages advised where the kernel allows them.
void* map_committed_memory(size_t bytes);

// ---- Address translation ----------------------------------------------------------------

enum class IovaMode {
  va,  // an IOMMU (VFIO) maps IOVA = virtual address
  pa,  // no IOMMU: devices see physical addresses (from /proc/self/pagemap; root only)
};

inline constexpr uint64_t kDmaBadIova = ~uint64_t{0};

// Switching to pa fails when physical addresses are unreadable (not root).
Status dma_set_iova_mode(IovaMode mode);
IovaMode dma_iova_mode();

// The IOVA of a byte of DMA memory, or kDmaBadIova when `p` is not DMA memory or its
// physical address is unavailable. Hugepage translations are cached, so this is cheap.
uint64_t dma_translate(const void* p);
// The IOVA of [p, p+len), which must lie in DMA memory and, in pa mode, be physically
// contiguous. Errors say which.
Result<uint64_t> dma_translate_checked(const void* p, size_t len);

}  // namespace sluice::env
