// The workloads `sluice perf` runs, and their names on the command line.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice::perf {

enum class Workload : uint8_t {
  read,       // sequential reads
  write,      // sequential writes (of the verify pattern)
  randread,   // random reads
  randwrite,  // random writes (of the verify pattern)
  rw,         // random reads and writes, --rwmixread percent reads
  verify,     // passes of write-everything, then read-and-compare
};

inline constexpr std::string_view kWorkloadNames = "read, write, randread, randwrite, rw, verify";

std::string_view workload_name(Workload w);
std::optional<Workload> parse_workload(std::string_view name);
// Whether a run issues writes (and so needs a writable handle and write buffers).
bool workload_writes(Workload w, bool verify_only);
bool workload_reads(Workload w);

}  // namespace sluice::perf
