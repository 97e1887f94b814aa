// The answer to a SendTargets text request (RFC 7143 section 13.3 and appendix D): which
// targets a portal group offers and at which addresses. The server sends the text back in
// Text Responses, split with text_chunk() at the initiator's MaxRecvDataSegmentLength.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "target/iscsi/negotiation.h"

namespace sluice::iscsi {

struct TargetPortal {
  std::string address;  // "192.0.2.1:3260", "[2001:db8::1]:3260", or a DNS name with a port
  uint16_t portal_group_tag = 1;
};

struct TargetRecord {
  std::string name;  // an iSCSI name
  std::vector<TargetPortal> portals;
};

// The response text to SendTargets=`value`: "All" lists every target (a Discovery session
// only: a Normal session gets SendTargets=Reject); an iSCSI name lists that target (nothing if
// there is none); an empty value lists the session's own target (a Normal session only).
// Each target is TargetName=<name> followed by one TargetAddress=<address>,<tag> per portal.
std::string answer_send_targets(std::string_view value, const std::vector<TargetRecord>& targets, SessionType session,
                                std::string_view session_target);

}  // namespace sluice::iscsi
