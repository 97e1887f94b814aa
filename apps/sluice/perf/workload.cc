#include "perf/workload.h"

namespace sluice::perf {

namespace {

struct Named {
  Workload w;
  std::string_view name;
};
constexpr Named kNames[] = {{Workload::read, "read"}, {Workload::write, "write"},
                            {Workload::randread, "randread"}, {Workload::randwrite, "randwrite"},
                            {Workload::rw, "rw"}, {Workload::verify, "verify"}};

}  // namespace

std::string_view workload_name(Workload w) {
  for (const auto& n : kNames)
    if (n.w == w) return n.name;
  return "unknown";
}

std::optional<Workload> parse_workload(std::string_view name) {
  for (const auto& n : kNames)
    if (n.name == name) return n.w;
  return std::nullopt;
}

bool workload_writes(Workload w, bool verify_only) {
  switch (w) {
    case Workload::read:
    case Workload::randread: return false;
    case Workload::verify: return !verify_only;
    case Workload::write:
    case Workload::randwrite:
    case Workload::rw: return true;
  }
  return false;
}

bool workload_reads(Workload w) { return w != Workload::write && w != Workload::randwrite; }

}  // namespace sluice::perf
