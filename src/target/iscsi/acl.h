// Who may reach what (internal): iSCSI name and netmask syntax, and the initiator-group
// rules of groups.h in SPDK's order. Pure functions, so the rules are tested without sockets.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sluice::iscsi {

// RFC 7143 section 4.2.7: "iqn.yyyy-mm.<reversed domain>[:...]", "eui.<16 hex>",
// "naa.<16 or 32 hex>", at most 223 bytes.
Status check_iscsi_name(std::string_view name);

// An address or a network: "ANY", "192.0.2.1", "192.0.2.0/24", "[2001:db8::1]", "[2001:db8::]/32".
struct Netmask {
  bool any = false;
  bool v6 = false;
  uint8_t bytes[16] = {};
  uint32_t prefix = 0;  // bits that must match
};
Result<Netmask> parse_netmask(std::string_view text);
// A peer's address as getpeername() gives it, in text: "192.0.2.1" or "2001:db8::1"
// (an IPv4-mapped IPv6 address matches IPv4 netmasks).
bool netmask_matches(const Netmask& m, std::string_view address);

// A group's decision about an initiator name: the first entry that matches ('!' denies).
enum class NameVerdict : uint8_t { no_match, allowed, denied };
NameVerdict match_name(const std::vector<std::string>& names, std::string_view initiator);

// A group's entry: "ANY", or an iSCSI name, either maybe after '!'.
Status check_group_name(std::string_view entry);

}  // namespace sluice::iscsi
