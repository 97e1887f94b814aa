// The target's configuration as the connections see it (internal): an immutable snapshot,
// replaced whole by each Target call under the control mutex, read once per login with one
// shared_ptr copy. What a node's sessions share beyond the snapshot (its SCSI device and how
// many sessions use it) is in NodeRuntime, which outlives every snapshot naming it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "target/iscsi/acl.h"
#include "target/iscsi/groups.h"
#include "target/iscsi/negotiation.h"
#include "target/iscsi/send_targets.h"
#include "target/scsi/scsi.h"

namespace sluice::iscsi::detail {

struct NodeRuntime {
  explicit NodeRuntime(const std::string& name) : device(scsi::DeviceOptions{.name = name}) {}
  scsi::Device device;
  // Device::add_lun needs a device no session uses: add_lun and a login's attach exclude
  // each other here (control path and login only, never I/O).
  std::mutex mu;
  uint32_t sessions = 0;  // under mu
  bool deleted = false;   // under mu: no new session
};

struct InitiatorGroup {
  InitiatorGroupInfo info;
  std::vector<Netmask> masks;  // parsed info.netmasks
};

struct Node {
  NodeConfig config;  // name normalized, queue_depth filled in
  std::shared_ptr<NodeRuntime> rt;
};

struct Snapshot {
  std::map<uint16_t, PortalGroupInfo> portal_groups;
  std::map<uint16_t, InitiatorGroup> initiator_groups;
  std::map<uint16_t, AuthGroupInfo> auth_groups;
  std::map<std::string, Node> nodes;
  ChapPolicy discovery_auth;

  // Whether `initiator` at `address` may reach `node`: through pg_tag, or any portal group if
  // pg_tag is 0. A name one mapped group denies is denied whatever the others say.
  bool allowed(const Node& node, uint16_t pg_tag, std::string_view initiator, std::string_view address) const;
  // The SendTargets records this initiator may see: each node it may reach, with the portals
  // of the portal groups through which it may.
  std::vector<TargetRecord> visible(std::string_view initiator, std::string_view address) const;
  // CHAP for `policy` into the Negotiator's options (auth methods and the secret lookup).
  // The lookup holds its own copy of the auth group.
  void apply_chap(const ChapPolicy& policy, TargetOptions& o) const;
};

}  // namespace sluice::iscsi::detail
