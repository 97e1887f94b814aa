// What the iSCSI RPC files share (iscsi_rpc.cc: options, save_config, shutdown;
// iscsi_rpc_groups.cc: portal, initiator and auth groups; iscsi_rpc_nodes.cc: target nodes
// and connections): the one Target of the daemon, parameter readers that name the bad
// parameter, and the JSON shapes of SPDK's results (which are also save_config's params).
//
// Handlers run on the RPC server's thread, never a reactor, as every Target call requires.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rpc/rpc.h"
#include "target/iscsi/iscsi.h"

namespace sluice::iscsi::rpc_detail {

using rpc::Json;
using rpc::Params;

struct Service {
  std::mutex mu;  // RPC calls and shutdown
  // Made by iscsi_set_options, or with the default options by the first call that changes
  // the configuration; null until then (and after shutdown).
  std::unique_ptr<Target> target;
};

// Never destroyed: reactors may still run while the process exits.
Service& the_service();
// Runs one Target call (caller holds mu), the target started with the default options if no
// call made it yet; a failed call leaves no target it started (a later iscsi_set_options
// still works). Its Status becomes the RPC's error.
void call_target(Service& s, const std::function<Status(Target&)>& fn);

// Adds a method whose handler runs under the service mutex.
void add_locked(rpc::Registry& r, const char* name, std::function<Json(const Params&, Service&)> fn);

// [[noreturn]] kInvalidParams error.
[[noreturn]] void bad_param(std::string message);
uint32_t u32_param(const Params& p, const char* key, uint32_t fallback, uint32_t min, uint32_t max);
uint16_t tag_param(const Params& p, const char* key);  // required, 1..65535
// A required (or, with `required` false, optional: empty) array member.
std::vector<Json> array_param(const Params& p, const char* key, bool required);
std::vector<std::string> strings_param(const Params& p, const char* key, bool required);
// pg_ig_maps: [{pg_tag, ig_tag}].
std::vector<PgIgMap> maps_param(const Params& p, const char* key);
// disable_chap, require_chap, mutual_chap, chap_group (all optional).
ChapPolicy chap_params(const Params& p);

// SPDK's result shapes.
Json options_json(const GlobalOptions& o);  // without the discovery CHAP fields
Json chap_json(const ChapPolicy& c);
Json portal_group_json(const PortalGroupInfo& g);
Json initiator_group_json(const InitiatorGroupInfo& g);
Json auth_group_json(const AuthGroupInfo& g);
Json node_json(const NodeInfo& n, const GlobalOptions& o);

void add_group_methods(rpc::Registry& r);
void add_node_methods(rpc::Registry& r);

}  // namespace sluice::iscsi::rpc_detail
