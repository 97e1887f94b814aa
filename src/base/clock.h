// Clocks: a cheap tick counter for per-I/O latency, wall and thread-CPU nanoseconds.
#pragma once

#include <cstdint>
#include <ctime>

#include <x86intrin.h>

namespace sluice::clock {

// Invariant TSC ticks: ~7 ns to read, which is why per-I/O timestamps use it and convert once
// at report time.
inline uint64_t ticks() { return __rdtsc(); }

// Ticks per second, measured once against CLOCK_MONOTONIC (about 10 ms at first use).
double ticks_per_second();
inline double ticks_to_ns(double t) { return t * 1e9 / ticks_per_second(); }

inline uint64_t timespec_ns(const timespec& ts) {
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}
inline uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return timespec_ns(ts);
}
// Wall-clock time (CLOCK_REALTIME): nanoseconds since the epoch, for timestamps people read.
inline int64_t wall_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
// CPU time consumed by the calling thread.
inline uint64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return timespec_ns(ts);
}

}  // namespace sluice::clock
