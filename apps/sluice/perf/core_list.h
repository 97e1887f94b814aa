// Core lists on the command line. Parsing is the threading layer's (thread::parse_core_list:
// "0", "0-3", "0,2-3"); this adds what perf checks and prints.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace sluice::perf {

// Fails, naming the offender, unless every core is in this process's CPU affinity mask.
Status check_cores_available(const std::vector<int>& cores);
// "0-1,3" for {0, 1, 3}: for messages and reports.
std::string format_core_list(const std::vector<int>& cores);

}  // namespace sluice::perf
