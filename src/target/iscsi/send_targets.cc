// SendTargets (send_targets.h).
#include "target/iscsi/send_targets.h"

namespace sluice::iscsi {
namespace {

void list_target(std::string& out, const TargetRecord& t) {
  append_key(out, "TargetName", t.name);
  for (const TargetPortal& p : t.portals)
    append_key(out, "TargetAddress", p.address + "," + std::to_string(p.portal_group_tag));
}

}  // namespace

std::string answer_send_targets(std::string_view value, const std::vector<TargetRecord>& targets, SessionType session,
                                std::string_view session_target) {
  std::string out;
  if (value == "All") {
    if (session != SessionType::discovery) {
      append_key(out, "SendTargets", "Reject");
      return out;
    }
    for (const TargetRecord& t : targets) list_target(out, t);
    return out;
  }
  if (value.empty()) {
    if (session != SessionType::normal) {
      append_key(out, "SendTargets", "Reject");
      return out;
    }
    value = session_target;
  }
  for (const TargetRecord& t : targets)
    if (t.name == value) list_target(out, t);
  return out;
}

}  // namespace sluice::iscsi
