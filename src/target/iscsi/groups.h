// The iSCSI target's configuration model, SPDK's: portal groups, initiator groups, auth
// groups and target nodes tied together by tags, plus the global options. Target (iscsi.h)
// takes and reports these; each JSON-RPC method (iscsi_create_portal_group, ...) is one
// Target call over one of them.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "net/net.h"

namespace sluice::iscsi {

// iscsi_set_options: what holds for the whole target. Fixed at Target::start.
struct GlobalOptions {
  // A node name without an "iqn.", "eui." or "naa." prefix becomes "<node_base>:<name>".
  std::string node_base = "iqn.2026-12.io.sluice";
  uint32_t max_sessions = 128;               // Normal and Discovery sessions at once
  uint32_t max_connections_per_session = 1;  // only 1: no multi-connection sessions
  uint32_t default_time2wait = 2;            // seconds
  uint32_t default_time2retain = 20;         // seconds
  uint32_t first_burst_length = 256 * 1024;
  uint32_t max_burst_length = 1024 * 1024;
  uint32_t max_recv_data_segment_length = 256 * 1024;
  // InitialR2T is an OR and ImmediateData an AND: these defaults let the initiator choose.
  bool initial_r2t = false;
  bool immediate_data = true;
  uint32_t error_recovery_level = 0;  // only 0
  // False: a Normal login with the InitiatorName and ISID of a session of the same node
  // replaces that session (reinstatement, RFC 7143 6.3.5: the old one is closed). True: both stay.
  bool allow_duplicated_isid = false;
  uint32_t default_queue_depth = 64;  // a node's queue_depth when it sets none
  // A connection that has not reached full feature phase by then is closed.
  std::chrono::milliseconds login_timeout{15000};
  // A connection in full feature phase from which nothing has come for nop_in_interval gets a
  // NOP-In ping (RFC 7143 11.19); one that then sends nothing for nop_timeout is dead and is
  // closed, its tasks ended. A zero interval sends no pings. Both are checked once per
  // interval, so a dead initiator goes within interval + timeout + one interval.
  std::chrono::milliseconds nop_in_interval{30000};
  std::chrono::milliseconds nop_timeout{60000};
  std::chrono::milliseconds stop_timeout{5000};  // bounds every wait for the reactors
  uint32_t accept_reactor = 0;                   // where the listeners are watched
};

// iscsi_create_portal_group: the addresses a set of target nodes is reached at, under one
// tag (the relative target port of the SCSI layer). Tags are 1..65535.
struct PortalGroupInfo {
  uint16_t tag = 0;
  std::vector<net::ListenAddress> portals;  // as bound (ephemeral ports filled in)
};

// iscsi_create_initiator_group: who may log in. A name is an iSCSI name (iqn./eui./naa.) or
// "ANY", either one prefixed with '!' to deny it; a netmask is "ANY", an address, or
// address/prefix ("127.0.0.1/32", "[::1]/128"). The first name that matches decides.
struct InitiatorGroupInfo {
  uint16_t tag = 0;
  std::vector<std::string> names;
  std::vector<std::string> netmasks;
};

// iscsi_create_auth_group: CHAP secrets, found by the CHAP_N the initiator sends. muser and
// msecret are the target's side for mutual CHAP (empty: one-way only).
struct ChapSecret {
  std::string user, secret, muser, msecret;
};
struct AuthGroupInfo {
  uint16_t tag = 0;
  std::vector<ChapSecret> secrets;
};

// How a node (or discovery) authenticates, SPDK's flags: neither disable nor require: the
// initiator chooses None or CHAP; mutual_chap needs require_chap; CHAP needs chap_group (an
// auth group tag; 0: none).
struct ChapPolicy {
  bool disable_chap = false;
  bool require_chap = false;
  bool mutual_chap = false;
  uint16_t chap_group = 0;
};

// An initiator reaches a node through a portal of pg_tag if initiator group ig_tag allows it.
struct PgIgMap {
  uint16_t pg_tag = 0;
  uint16_t ig_tag = 0;
  bool operator==(const PgIgMap&) const = default;
};

// iscsi_create_target_node.
struct NodeConfig {
  std::string name;  // an iSCSI name, or a suffix for GlobalOptions::node_base
  std::string alias;
  std::map<uint16_t, std::string> luns;  // LUN -> bdev name
  std::vector<PgIgMap> pg_ig_maps;
  uint32_t queue_depth = 0;  // commands in flight per session (the CmdSN window); 0: the default
  ChapPolicy chap;
  bool header_digest = false;  // required: a session without CRC32C is refused
  bool data_digest = false;
  bool read_only = false;
};

// iscsi_get_connections: one row per connection.
struct ConnectionInfo {
  std::string initiator_name;
  std::string target_node;   // empty for Discovery
  std::string session_type;  // "normal", "discovery", or "login" before full feature phase
  std::string portal;        // the local address it arrived at
  uint16_t pg_tag = 0;
  std::string initiator_address;  // the peer, "127.0.0.1:40000"
  std::string isid;               // 12 hex digits
  uint16_t tsih = 0;
  uint16_t cid = 0;
};

}  // namespace sluice::iscsi
