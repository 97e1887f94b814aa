// Crash and fault suites report how many points (power cuts, injected errors) they tried
// and how many failed: to stdout, and
// appended to $SLUICE_CRASH_REPORT when set (scripts/test.sh prints that file at the end).
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice::testing {

void report_points(std::string_view suite, std::string_view what, uint64_t tried, uint64_t failed);

// How many random cuts a suite tries, given its release-build count. A trial runs several
// times slower under ASan or TSan, and those builds look for memory and threading bugs
// rather than more crash points, so they try a quarter as many (the release build covers
// the full count); the reported counts say which was run.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizerBuild = true;
#else
inline constexpr bool kSanitizerBuild = false;
#endif

constexpr int random_cut_budget(int release_count) {
  if (!kSanitizerBuild) return release_count;
  return release_count < 4 ? 1 : release_count / 4;
}

// The same reasoning for suites that cut at every I/O boundary: a sanitizer build cuts at
// every second one, alternating which half from one workload to the next (pass the
// workload's index as `phase`), so each kind of boundary is still hit in every build.
struct BoundaryStride {
  uint64_t first, step;
};
constexpr BoundaryStride boundary_stride(uint64_t phase) {
  if (!kSanitizerBuild) return {1, 1};
  return {1 + phase % 2, 2};
}

}  // namespace sluice::testing
