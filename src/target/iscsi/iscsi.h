// The iSCSI target server (RFC 7143) over the codec in this directory, the SCSI layer
// (target/scsi) and the reactor-owned sockets of net/net.h.
//
//   iscsi::TargetConfig cfg;
//   cfg.portal_group = {.tag = 1, .portals = {net::ListenAddress::tcp_address("127.0.0.1", 3260)}};
//   cfg.nodes.push_back({.name = "iqn.2026-12.io.sluice:disk0", .luns = {{0, "malloc0"}}});
//   auto target = iscsi::Target::start(std::move(cfg));   // binds, then accepts on a reactor
//   ...                                                     // initiators log in, do I/O
//   target.value()->stop();                                 // closes every connection (bounded)
//
// Threads: start() and stop() are control path, from a thread that is not a reactor, while
// the App's reactors run; they wait for the reactors, bounded by stop_timeout. A connection
// belongs to the reactor its socket was handed to (round-robin): its login, its PDUs, its
// scsi::Channel and its tasks all run there, without locks.
//
// Sessions: one connection per session (MaxConnections=1), ErrorRecoveryLevel 0. A Discovery
// session answers SendTargets; a Normal session binds to a target node and is one I_T nexus
// of that node's scsi::Device. Bad input (a malformed PDU, a digest error, a stalled login)
// closes that connection only.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "net/net.h"
#include "target/iscsi/chap.h"

namespace sluice::iscsi {

// A portal group: the addresses a set of target nodes is reached at, under one tag (the
// relative target port of the SCSI layer).
struct PortalGroup {
  uint16_t tag = 1;
  std::vector<net::ListenAddress> portals;
};

// A target node: an iSCSI name and its LUNs, each over a bdev.
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
  // A connection that has not reached full feature phase by then is closed.
  std::chrono::milliseconds login_timeout{15000};
  std::chrono::milliseconds stop_timeout{5000};  // bounds every wait for the reactors
  uint32_t max_burst_length = 1024 * 1024;
  uint32_t first_burst_length = 256 * 1024;
  uint32_t max_recv_data_segment_length = 256 * 1024;
  // InitialR2T is an OR and ImmediateData an AND: these defaults let the initiator choose.
  bool initial_r2t = false;
  bool immediate_data = true;
  uint32_t queue_depth = 64;  // commands a session may have in flight (the CmdSN window)
};

class Target {
 public:
  // Opens each node's bdevs, binds every portal (errors such as an address in use come back
  // here) and starts accepting.
  static Result<std::unique_ptr<Target>> start(TargetConfig config);
  ~Target();  // stop()
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;

  // Stops accepting, closes every connection and waits (bounded) until they are freed.
  Status stop();
  // The bound portals (ephemeral ports filled in).
  std::vector<net::ListenAddress> addresses() const;
  // Connections not yet freed.
  uint64_t live_connections() const;

  struct State;

 private:
  explicit Target(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace sluice::iscsi
