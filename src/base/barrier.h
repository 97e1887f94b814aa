// Memory barriers for memory shared with something outside the program's threads: a device
// that reads queue entries by DMA, or the kernel's side of an io_uring ring.
//
// Not std::atomic_thread_fence: GCC refuses fences under ThreadSanitizer (-Wtsan), and what
// these order is memory TSan cannot see anyway (the other party is not a thread). On x86 they
// are the instructions the fences would compile to.
#pragma once

namespace sluice {

// Every store before it is visible before any store after it (e.g. queue entries before the
// doorbell write that tells a device to read them). x86 keeps stores in order (TSO), so only
// the compiler must not reorder.
inline void release_barrier() {
#if defined(__x86_64__)
  asm volatile("" ::: "memory");
#else
  __atomic_thread_fence(__ATOMIC_RELEASE);
#endif
}

// A full barrier: no load after it is satisfied before every store before it is visible.
inline void full_barrier() {
#if defined(__x86_64__)
  asm volatile("mfence" ::: "memory");
#else
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

}  // namespace sluice
