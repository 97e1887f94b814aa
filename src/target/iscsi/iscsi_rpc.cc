// The iSCSI module of `sluice serve`: the one Target, parameter readers shared by the method
// files, iscsi_set_options / iscsi_get_options, save_config and shutdown.
//
// As in SPDK, where iscsi_set_options is a startup method, the options are fixed when the
// Target starts: iscsi_set_options starts it, and so does (with the default options) the
// first method that changes the configuration; iscsi_set_options after that is refused.
#include "target/iscsi/iscsi_rpc.h"

#include <fmt/format.h>

#include "base/log.h"
#include "target/iscsi/iscsi_rpc_service.h"

namespace sluice::iscsi {
namespace rpc_detail {

Service& the_service() {
  static Service* s = new Service();
  return *s;
}

void call_target(Service& s, const std::function<Status(Target&)>& fn) {
  const bool fresh = !s.target;
  if (fresh) {
    auto t = Target::start(GlobalOptions{});
    rpc::throw_if_error(t.status());
    s.target = std::move(t.value());
  }
  Status st = fn(*s.target);
  if (!st.ok() && fresh) s.target.reset();  // a failed call changed nothing: empty, nothing bound
  rpc::throw_if_error(st);
}

void add_locked(rpc::Registry& r, const char* name, std::function<Json(const Params&, Service&)> fn) {
  (void)r.add(name, [fn = std::move(fn)](const Params& p) {
    Service& s = the_service();
    std::lock_guard lock(s.mu);
    return fn(p, s);
  });
}

void bad_param(std::string message) { throw rpc::Error{rpc::kInvalidParams, std::move(message)}; }

uint32_t u32_param(const Params& p, const char* key, uint32_t fallback, uint32_t min, uint32_t max) {
  const uint64_t v = p.u64(key, fallback);
  if (v < min || v > max) bad_param(fmt::format("{} {} is not in {}..{}", key, v, min, max));
  return static_cast<uint32_t>(v);
}

uint16_t tag_param(const Params& p, const char* key) {
  const uint64_t v = p.u64(key);
  if (v < 1 || v > 65535) bad_param(fmt::format("{} {} is not in 1..65535", key, v));
  return static_cast<uint16_t>(v);
}

std::vector<Json> array_param(const Params& p, const char* key, bool required) {
  const Json* raw = p.raw(key);
  if (raw == nullptr) {
    if (required) bad_param(fmt::format("missing '{}'", key));
    return {};
  }
  if (!raw->is_array()) bad_param(fmt::format("'{}' must be an array", key));
  return std::vector<Json>(raw->begin(), raw->end());
}

std::vector<std::string> strings_param(const Params& p, const char* key, bool required) {
  std::vector<std::string> out;
  for (const Json& v : array_param(p, key, required)) {
    if (!v.is_string()) bad_param(fmt::format("'{}' must be an array of strings", key));
    out.push_back(v.get<std::string>());
  }
  return out;
}

std::vector<PgIgMap> maps_param(const Params& p, const char* key) {
  std::vector<PgIgMap> maps;
  for (const Json& v : array_param(p, key, true)) {
    Params m(v);
    PgIgMap map;
    map.pg_tag = tag_param(m, "pg_tag");
    map.ig_tag = tag_param(m, "ig_tag");
    m.done();
    maps.push_back(map);
  }
  return maps;
}

ChapPolicy chap_params(const Params& p) {
  ChapPolicy c;
  c.disable_chap = p.flag("disable_chap", false);
  c.require_chap = p.flag("require_chap", false);
  c.mutual_chap = p.flag("mutual_chap", false);
  c.chap_group = static_cast<uint16_t>(u32_param(p, "chap_group", 0, 0, 65535));
  return c;
}

Json chap_json(const ChapPolicy& c) {
  return Json{{"disable_chap", c.disable_chap},
              {"require_chap", c.require_chap},
              {"mutual_chap", c.mutual_chap},
              {"chap_group", c.chap_group}};
}

Json options_json(const GlobalOptions& o) {
  return Json{{"node_base", o.node_base},
              {"max_sessions", o.max_sessions},
              {"max_connections_per_session", o.max_connections_per_session},
              {"max_queue_depth", o.default_queue_depth},
              {"default_time2wait", o.default_time2wait},
              {"default_time2retain", o.default_time2retain},
              {"first_burst_length", o.first_burst_length},
              {"max_burst_length", o.max_burst_length},
              {"max_recv_data_segment_length", o.max_recv_data_segment_length},
              {"initial_r2t", o.initial_r2t},
              {"immediate_data", o.immediate_data},
              {"error_recovery_level", o.error_recovery_level},
              {"allow_duplicated_isid", o.allow_duplicated_isid},
              {"nop_in_interval", std::chrono::duration_cast<std::chrono::seconds>(o.nop_in_interval).count()},
              {"nop_timeout", std::chrono::duration_cast<std::chrono::seconds>(o.nop_timeout).count()}};
}

}  // namespace rpc_detail

namespace {

using namespace rpc_detail;

GlobalOptions global_options_param(const Params& p) {
  const GlobalOptions d;
  GlobalOptions o;
  o.node_base = p.str("node_base", d.node_base);
  if (o.node_base.empty()) bad_param("node_base must not be empty");
  o.max_sessions = u32_param(p, "max_sessions", d.max_sessions, 1, 65535);
  o.max_connections_per_session = u32_param(p, "max_connections_per_session", 1, 1, 1);
  o.default_queue_depth = u32_param(p, "max_queue_depth", d.default_queue_depth, 2, 4096);
  o.default_time2wait = u32_param(p, "default_time2wait", d.default_time2wait, 0, 3600);
  o.default_time2retain = u32_param(p, "default_time2retain", d.default_time2retain, 0, 3600);
  o.first_burst_length = u32_param(p, "first_burst_length", d.first_burst_length, 512, (1u << 24) - 1);
  o.max_burst_length = u32_param(p, "max_burst_length", d.max_burst_length, 512, (1u << 24) - 1);
  if (o.first_burst_length > o.max_burst_length)
    bad_param(
        fmt::format("first_burst_length {} is above max_burst_length {}", o.first_burst_length, o.max_burst_length));
  o.max_recv_data_segment_length =
      u32_param(p, "max_recv_data_segment_length", d.max_recv_data_segment_length, 512, (1u << 24) - 1);
  o.initial_r2t = p.flag("initial_r2t", d.initial_r2t);
  o.immediate_data = p.flag("immediate_data", d.immediate_data);
  o.error_recovery_level = u32_param(p, "error_recovery_level", 0, 0, 0);
  o.allow_duplicated_isid = p.flag("allow_duplicated_isid", d.allow_duplicated_isid);
  // Seconds; an interval of 0 turns the pings off.
  o.nop_in_interval = std::chrono::seconds(
      u32_param(p, "nop_in_interval",
                uint32_t(std::chrono::duration_cast<std::chrono::seconds>(d.nop_in_interval).count()), 0, 3600));
  o.nop_timeout = std::chrono::seconds(u32_param(
      p, "nop_timeout", uint32_t(std::chrono::duration_cast<std::chrono::seconds>(d.nop_timeout).count()), 1, 3600));
  // SPDK's memory pools and its deprecated auth file: accepted and ignored (docs/iscsi.md).
  for (const char* k : {"auth_file", "max_large_datain_per_connection", "max_r2t_per_connection", "pdu_pool_size",
                        "immediate_data_pool_size", "data_out_pool_size"})
    p.raw(k);
  return o;
}

void add_option_methods(rpc::Registry& r) {
  add_locked(r, "iscsi_set_options", [](const Params& p, Service& s) {
    GlobalOptions o = global_options_param(p);
    const bool has_chap = p.raw("disable_chap") != nullptr || p.raw("require_chap") != nullptr ||
                          p.raw("mutual_chap") != nullptr || p.raw("chap_group") != nullptr;
    const ChapPolicy chap = chap_params(p);
    p.done();
    if (s.target)
      throw rpc::Error{-1,
                       "iscsi_set_options must come before any other iSCSI configuration call (the target has started "
                       "with its options)"};
    auto t = Target::start(std::move(o));
    if (!t.ok()) bad_param(t.status().message());
    if (has_chap) {
      if (Status st = t.value()->set_discovery_auth(chap); !st.ok()) bad_param(st.message());
    }
    s.target = std::move(t.value());
    return Json(true);
  });
  add_locked(r, "iscsi_get_options", [](const Params& p, Service& s) {
    p.done();
    const GlobalOptions defaults;
    Json out = options_json(s.target ? s.target->options() : defaults);
    out.update(chap_json(s.target ? s.target->discovery_auth() : ChapPolicy{}));
    return out;
  });
}

// iscsi_set_options first, then the groups, the discovery auth (its chap_group must exist),
// then the nodes (their groups must exist).
Json save_config() {
  Service& s = the_service();
  std::lock_guard lock(s.mu);
  Json out = Json::array();
  if (!s.target) return out;
  const Target& t = *s.target;
  auto entry = [&out](const char* method, Json params) {
    out.push_back({{"method", method}, {"params", std::move(params)}});
  };
  entry("iscsi_set_options", options_json(t.options()));
  for (const PortalGroupInfo& g : t.portal_groups()) entry("iscsi_create_portal_group", portal_group_json(g));
  for (const InitiatorGroupInfo& g : t.initiator_groups())
    entry("iscsi_create_initiator_group", initiator_group_json(g));
  for (const AuthGroupInfo& g : t.auth_groups()) entry("iscsi_create_auth_group", auth_group_json(g));
  const ChapPolicy discovery = t.discovery_auth();
  if (discovery.disable_chap || discovery.require_chap || discovery.mutual_chap || discovery.chap_group != 0)
    entry("iscsi_set_discovery_auth", chap_json(discovery));
  for (const NodeInfo& n : t.nodes()) entry("iscsi_create_target_node", node_json(n, t.options()));
  return out;
}

// Before the bdevs go: stops accepting, closes every connection and waits for them (bounded
// by the target's stop_timeout), then releases the nodes' devices.
void shutdown() {
  Service& s = the_service();
  std::lock_guard lock(s.mu);
  if (!s.target) return;
  if (Status st = s.target->stop(); !st.ok()) {
    log::error("iscsi: stopping the target: {}", st.to_string());
    (void)s.target.release();  // connections still hold its state: leave it to them
    return;
  }
  s.target.reset();
}

}  // namespace

daemon::Module rpc_module() {
  return daemon::Module{"iscsi",
                        [](rpc::Registry& r) {
                          add_option_methods(r);
                          add_group_methods(r);
                          add_node_methods(r);
                          r.add_subsystem("iscsi", save_config);
                        },
                        shutdown};
}

}  // namespace sluice::iscsi
