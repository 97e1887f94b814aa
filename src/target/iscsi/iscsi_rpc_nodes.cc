// iscsi_create_target_node, iscsi_target_node_add_lun, iscsi_target_node_add_pg_ig_maps /
// _remove_pg_ig_maps, iscsi_delete_target_node, iscsi_get_target_nodes,
// iscsi_get_connections: SPDK's names, parameters and result fields.
#include <strings.h>

#include <fmt/format.h>

#include "target/iscsi/iscsi_rpc_service.h"

namespace sluice::iscsi::rpc_detail {
namespace {

uint16_t lun_id_param(const Params& p) {
  return static_cast<uint16_t>(u32_param(p, "lun_id", 0, 0, 16383));  // SAM flat addressing
}

// SPDK's rule (and Target's): a name without an iqn./eui./naa. prefix is under node_base.
std::string node_full_name(const std::string& name, const GlobalOptions& o) {
  for (const char* prefix : {"iqn.", "eui.", "naa."})
    if (strncasecmp(name.c_str(), prefix, 4) == 0) return name;
  return o.node_base + ":" + name;
}

// The node a call names, short names as iscsi_create_target_node takes them.
std::string node_name_param(const Params& p, Service& s) {
  return node_full_name(p.str("name"), s.target ? s.target->options() : GlobalOptions{});
}

// iscsi_target_node_add_lun without lun_id: the lowest LUN the node does not use (SPDK's -1).
Result<uint16_t> free_lun(const Target& t, const std::string& full) {
  for (const NodeInfo& n : t.nodes()) {
    if (strcasecmp(n.name.c_str(), full.c_str()) != 0) continue;
    uint16_t lun = 0;
    while (n.luns.contains(lun)) ++lun;
    return lun;
  }
  return Status(Errc::not_found, fmt::format("iscsi: no target node '{}'", full));
}

Json connection_json(size_t id, const ConnectionInfo& c) {
  return Json{{"id", id},
              {"cid", c.cid},
              {"tsih", c.tsih},
              {"state", c.session_type == "login" ? "login" : "running"},
              {"initiator_addr", c.initiator_address},
              {"target_addr", c.portal},
              {"target_node_name", c.target_node},
              {"initiator_name", c.initiator_name},
              {"session_type", c.session_type},
              {"isid", c.isid},
              {"pg_tag", c.pg_tag}};
}

}  // namespace

Json node_json(const NodeInfo& n, const GlobalOptions& o) {
  Json maps = Json::array();
  for (const PgIgMap& m : n.pg_ig_maps) maps.push_back({{"pg_tag", m.pg_tag}, {"ig_tag", m.ig_tag}});
  Json luns = Json::array();
  for (const auto& [lun, bdev] : n.luns) luns.push_back({{"bdev_name", bdev}, {"lun_id", lun}});
  Json out{{"name", n.name}};
  if (!n.alias.empty()) out["alias_name"] = n.alias;
  out["pg_ig_maps"] = maps;
  out["luns"] = luns;
  out["queue_depth"] = n.queue_depth != 0 ? n.queue_depth : o.default_queue_depth;
  out.update(chap_json(n.chap));
  out["header_digest"] = n.header_digest;
  out["data_digest"] = n.data_digest;
  return out;
}

void add_node_methods(rpc::Registry& r) {
  add_locked(r, "iscsi_create_target_node", [](const Params& p, Service& s) {
    NodeConfig n;
    n.name = p.str("name");
    n.alias = p.str("alias_name", "");
    for (const Json& v : array_param(p, "luns", true)) {
      Params l(v);
      std::string bdev = l.str("bdev_name");
      const uint16_t lun = lun_id_param(l);
      l.done();
      if (!n.luns.emplace(lun, std::move(bdev)).second) bad_param(fmt::format("luns: lun_id {} given twice", lun));
    }
    n.pg_ig_maps = maps_param(p, "pg_ig_maps");
    n.queue_depth = u32_param(p, "queue_depth", 0, 0, 4096);
    n.chap = chap_params(p);
    n.header_digest = p.flag("header_digest", false);
    n.data_digest = p.flag("data_digest", false);
    p.done();
    call_target(s, [&](Target& t) { return t.add_node(std::move(n)); });
    return Json(true);
  });
  add_locked(r, "iscsi_target_node_add_lun", [](const Params& p, Service& s) {
    const std::string name = node_name_param(p, s);
    std::string bdev = p.str("bdev_name");
    const bool auto_id = p.raw("lun_id") == nullptr;
    const uint16_t lun = auto_id ? 0 : lun_id_param(p);
    p.done();
    call_target(s, [&](Target& t) {
      Result<uint16_t> id = auto_id ? free_lun(t, name) : Result<uint16_t>(lun);
      return id.ok() ? t.add_lun(name, id.value(), std::move(bdev)) : id.status();
    });
    return Json(true);
  });
  add_locked(r, "iscsi_target_node_add_pg_ig_maps", [](const Params& p, Service& s) {
    const std::string name = node_name_param(p, s);
    std::vector<PgIgMap> maps = maps_param(p, "pg_ig_maps");
    p.done();
    call_target(s, [&](Target& t) { return t.node_add_maps(name, std::move(maps)); });
    return Json(true);
  });
  add_locked(r, "iscsi_target_node_remove_pg_ig_maps", [](const Params& p, Service& s) {
    const std::string name = node_name_param(p, s);
    std::vector<PgIgMap> maps = maps_param(p, "pg_ig_maps");
    p.done();
    call_target(s, [&](Target& t) { return t.node_remove_maps(name, std::move(maps)); });
    return Json(true);
  });
  add_locked(r, "iscsi_delete_target_node", [](const Params& p, Service& s) {
    const std::string name = node_name_param(p, s);
    p.done();
    call_target(s, [&](Target& t) { return t.delete_node(name); });
    return Json(true);
  });
  add_locked(r, "iscsi_get_target_nodes", [](const Params& p, Service& s) {
    p.done();
    Json out = Json::array();
    if (s.target)
      for (const NodeInfo& n : s.target->nodes()) out.push_back(node_json(n, s.target->options()));
    return out;
  });
  add_locked(r, "iscsi_get_connections", [](const Params& p, Service& s) {
    p.done();
    Json out = Json::array();
    if (!s.target) return out;
    auto conns = s.target->connections();
    rpc::throw_if_error(conns.status());
    for (size_t i = 0; i < conns->size(); ++i) out.push_back(connection_json(i, (*conns)[i]));
    return out;
  });
}

}  // namespace sluice::iscsi::rpc_detail
