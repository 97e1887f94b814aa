// NVMe-oF discovery over TCP: what a discovery controller lists (its Discovery log page), as
// `nvme discover` shows it. A short association with the discovery subsystem: Connect, enable,
// read the log, disconnect.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "net/net.h"

namespace sluice::nvme {

struct DiscoveryEntry {
  uint8_t trtype = 0;   // 3: TCP
  uint8_t adrfam = 0;   // 1: IPv4, 2: IPv6
  uint8_t subtype = 0;  // 1: a discovery subsystem, 2: an NVM subsystem
  uint16_t portid = 0;
  std::string traddr, trsvcid, subnqn;
};

// `hostnqn` empty: default_host_nqn(). Every step is bounded by `timeout_ms`.
Result<std::vector<DiscoveryEntry>> discover(const net::ListenAddress& address, const std::string& hostnqn,
                                             uint64_t timeout_ms = 10000);

}  // namespace sluice::nvme
