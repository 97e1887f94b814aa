#include "perf/core_list.h"

#include <sched.h>

#include <fmt/format.h>

namespace sluice::perf {

std::string format_core_list(const std::vector<int>& cores) {
  std::string out;
  for (size_t i = 0; i < cores.size();) {
    size_t j = i;
    while (j + 1 < cores.size() && cores[j + 1] == cores[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j == i ? fmt::format("{}", cores[i]) : fmt::format("{}-{}", cores[i], cores[j]);
    i = j + 1;
  }
  return out;
}

Status check_cores_available(const std::vector<int>& cores) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return errno_status(errno, "sched_getaffinity");
  std::vector<int> allowed;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) allowed.push_back(c);
  for (int c : cores)
    if (c < 0 || c >= CPU_SETSIZE || !CPU_ISSET(c, &set))
      return Status(Errc::invalid_argument,
                    fmt::format("core {} is not available to this process (available: {})", c, format_core_list(allowed)));
  return Status::Ok();
}

}  // namespace sluice::perf
