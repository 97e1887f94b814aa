// A whole configuration given at once (the target's first form, kept for programs that serve
// a fixed set of nodes, e.g. tests/integration/iscsi_test_target.cc): one portal group, open
// to any initiator, and nodes with optional one-way or mutual CHAP credentials; sessions with
// the same ISID do not replace each other.
// Target::start(TargetConfig) turns it into the runtime calls of iscsi.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "net/net.h"
#include "target/iscsi/chap.h"

namespace sluice::iscsi {

struct PortalGroup {
  uint16_t tag = 1;
  std::vector<net::ListenAddress> portals;
};

struct TargetNode {
  std::string name;  // an IQN
  std::string alias;
  std::map<uint16_t, std::string> luns;  // LUN -> bdev name
  bool read_only = false;
  // Set: a Normal session must authenticate with CHAP (one-way, or mutual with a target
  // secret); unset: AuthMethod=None.
  std::optional<ChapCredentials> chap;
};

struct TargetConfig {
  PortalGroup portal_group;
  std::vector<TargetNode> nodes;
  uint32_t accept_reactor = 0;
  std::chrono::milliseconds login_timeout{15000};
  std::chrono::milliseconds stop_timeout{5000};
  uint32_t max_burst_length = 1024 * 1024;
  uint32_t first_burst_length = 256 * 1024;
  uint32_t max_recv_data_segment_length = 256 * 1024;
  bool initial_r2t = false;
  bool immediate_data = true;
  uint32_t queue_depth = 64;
};

}  // namespace sluice::iscsi
