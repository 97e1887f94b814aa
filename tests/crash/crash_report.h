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
constexpr int random_cut_budget(int release_count) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return release_count < 4 ? 1 : release_count / 4;
#else
  return release_count;
#endif
}

}  // namespace sluice::testing
