// The iSCSI target server (RFC 7143) over the codec in this directory, the SCSI layer
// (target/scsi) and the reactor-owned sockets of net/net.h, configured at run time the way
// SPDK's iSCSI target is (groups.h has the model, docs/iscsi.md the rules):
//
//   auto target = iscsi::Target::start({});                       // global options only
//   target.value()->add_portal_group(1, {net::ListenAddress::tcp_address("127.0.0.1", 3260)});
//   target.value()->add_initiator_group(2, {"ANY"}, {"127.0.0.1/32"});
//   target.value()->add_node({.name = "disk0", .luns = {{0, "malloc0"}}, .pg_ig_maps = {{1, 2}}});
//   ...                                                             // initiators log in, do I/O
//   target.value()->stop();                                         // closes every connection
//
// Each call maps to one of SPDK's JSON-RPC methods (named beside it) and answers Ok or an
// error that says what was wrong; a failed call changes nothing.
//
// Threads: every call is control path, from a thread that is not a reactor, while the App's
// reactors run; calls that wait for the reactors are bounded by stop_timeout. The
// configuration is an immutable snapshot replaced whole by each change: a login reads it
// once, so a change applies to logins that start after it, and I/O never looks at it. A
// connection belongs to the reactor its socket was handed to (round-robin): its login, its
// PDUs, its scsi::Channel and its tasks all run there, without locks.
//
// Sessions: one connection per session, ErrorRecoveryLevel 0. A Discovery session answers
// SendTargets with the nodes the initiator may reach; a Normal session binds to a target node
// and is one I_T nexus of that node's scsi::Device. Bad input (a malformed PDU, a digest
// error, a stalled login) closes that connection only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "net/net.h"
#include "target/iscsi/fixed_config.h"
#include "target/iscsi/groups.h"

namespace sluice::iscsi {

// iscsi_get_target_nodes: a node as configured (its name as normalized).
using NodeInfo = NodeConfig;

class Target {
 public:
  // Checks the options and makes a target with no portal, group or node.
  static Result<std::unique_ptr<Target>> start(GlobalOptions options);
  // A fixed configuration (fixed_config.h) made with the calls below.
  static Result<std::unique_ptr<Target>> start(TargetConfig config);
  ~Target();  // stop()
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;

  // Stops accepting, closes every connection and waits (bounded) until they are freed.
  Status stop();

  // iscsi_create_portal_group: binds every portal (an address in use fails the call and
  // nothing stays bound) and accepts on them.
  Status add_portal_group(uint16_t tag, std::vector<net::ListenAddress> portals);
  // iscsi_delete_portal_group: stops accepting on its portals (its sessions go on). Refused
  // while a node maps it.
  Status delete_portal_group(uint16_t tag);
  // iscsi_create_initiator_group / iscsi_delete_initiator_group (refused while mapped) /
  // iscsi_initiator_group_add_initiators / iscsi_initiator_group_remove_initiators.
  Status add_initiator_group(uint16_t tag, std::vector<std::string> names, std::vector<std::string> netmasks);
  Status delete_initiator_group(uint16_t tag);
  Status initiator_group_add(uint16_t tag, std::vector<std::string> names, std::vector<std::string> netmasks);
  Status initiator_group_remove(uint16_t tag, std::vector<std::string> names, std::vector<std::string> netmasks);
  // iscsi_create_auth_group / iscsi_delete_auth_group (refused while a node or discovery uses it).
  Status add_auth_group(uint16_t tag, std::vector<ChapSecret> secrets);
  Status delete_auth_group(uint16_t tag);
  // iscsi_set_discovery_auth.
  Status set_discovery_auth(ChapPolicy policy);
  // iscsi_create_target_node: opens its LUNs' bdevs; its groups must exist.
  Status add_node(NodeConfig node);
  // iscsi_target_node_add_lun: refused (busy) while the node has a session, since the SCSI
  // layer fixes a device's LUNs once tasks run.
  Status add_lun(std::string_view node, uint16_t lun, std::string bdev);
  // iscsi_target_node_add_pg_ig_maps / iscsi_target_node_remove_pg_ig_maps.
  Status node_add_maps(std::string_view node, std::vector<PgIgMap> maps);
  Status node_remove_maps(std::string_view node, std::vector<PgIgMap> maps);
  // iscsi_delete_target_node: no new login; its sessions are closed and waited for (bounded).
  Status delete_node(std::string_view node);

  // iscsi_get_options, iscsi_get_target_nodes, iscsi_get_portal_groups,
  // iscsi_get_initiator_groups, iscsi_get_auth_groups, iscsi_get_discovery_auth.
  const GlobalOptions& options() const;
  std::vector<NodeInfo> nodes() const;
  std::vector<PortalGroupInfo> portal_groups() const;
  std::vector<InitiatorGroupInfo> initiator_groups() const;
  std::vector<AuthGroupInfo> auth_groups() const;
  ChapPolicy discovery_auth() const;
  // iscsi_get_connections: asks every reactor (bounded).
  Result<std::vector<ConnectionInfo>> connections() const;

  // Every bound portal, of every portal group.
  std::vector<net::ListenAddress> addresses() const;
  // Connections not yet freed.
  uint64_t live_connections() const;

  struct State;

 private:
  explicit Target(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace sluice::iscsi
