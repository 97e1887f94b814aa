// Crash and fault suites report how many points (power cuts, injected errors) they tried
// and how many failed: to stdout, and
// appended to $SLUICE_CRASH_REPORT when set (scripts/test.sh prints that file at the end).
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice::testing {

void report_points(std::string_view suite, std::string_view what, uint64_t tried, uint64_t failed);

}  // namespace sluice::testing
