#include "blobtool/format_guard.h"

#include <fmt/format.h>

#include "base/size.h"

namespace sluice::blobtool {

Result<uint32_t> parse_cluster_size(const std::string& text) {
  auto cs = parse_size(text);
  if (!cs.ok()) return Status(Errc::invalid_argument, fmt::format("--cluster-size: {}", cs.status().message()));
  if (*cs < 4096 || *cs % 4096 != 0 || *cs > (1u << 30))
    return Status(Errc::invalid_argument, fmt::format("--cluster-size: {} is not a multiple of 4096 in [4K, 1G]", text));
  return static_cast<uint32_t>(*cs);
}

Status explain_refusal(const Status& st) {
  if (st.code() != Errc::exists) return st;
  return Status(st.code(), st.message() + " (--force formats it anyway)");
}

}  // namespace sluice::blobtool
