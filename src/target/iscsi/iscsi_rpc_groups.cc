// iscsi_create_portal_group, iscsi_delete_portal_group, iscsi_get_portal_groups,
// iscsi_create_initiator_group, iscsi_delete_initiator_group,
// iscsi_initiator_group_add_initiators / _remove_initiators, iscsi_get_initiator_groups,
// iscsi_create_auth_group, iscsi_delete_auth_group, iscsi_get_auth_groups,
// iscsi_set_discovery_auth: SPDK's names, parameters and result fields.
#include <fmt/format.h>

#include "target/iscsi/iscsi_rpc_service.h"

namespace sluice::iscsi::rpc_detail {
namespace {

// SPDK's portal: {"host": "127.0.0.1" or "[::1]", "port": "3260"} (the port a string; a
// number is accepted too).
net::ListenAddress portal_param(const Json& v) {
  Params a(v);
  std::string host = a.str("host");
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const Json* port = a.raw("port");
  a.done();
  uint64_t n = 0;
  if (port != nullptr && port->is_number_unsigned()) {
    n = port->get<uint64_t>();
  } else if (port != nullptr && port->is_string()) {
    const std::string text = port->get<std::string>();
    char* end = nullptr;
    n = std::strtoull(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0') bad_param(fmt::format("portal port '{}' is not a TCP port", text));
  } else {
    bad_param("a portal needs a 'port' (a string or a number)");
  }
  if (n > 65535) bad_param(fmt::format("portal port {} is not a TCP port", n));
  return net::ListenAddress::tcp_address(host, static_cast<uint16_t>(n));
}

std::vector<ChapSecret> secrets_param(const Params& p) {
  std::vector<ChapSecret> out;
  for (const Json& v : array_param(p, "secrets", false)) {
    Params a(v);
    ChapSecret c;
    c.user = a.str("user");
    c.secret = a.str("secret");
    c.muser = a.str("muser", "");
    c.msecret = a.str("msecret", "");
    a.done();
    out.push_back(std::move(c));
  }
  return out;
}

// The initiator-group methods share their parameters: tag, initiators, netmasks.
struct InitiatorArgs {
  uint16_t tag;
  std::vector<std::string> names, netmasks;
};
InitiatorArgs initiator_args(const Params& p, bool required) {
  InitiatorArgs a{tag_param(p, "tag"), strings_param(p, "initiators", required),
                  strings_param(p, "netmasks", required)};
  p.done();
  return a;
}

}  // namespace

Json portal_group_json(const PortalGroupInfo& g) {
  Json portals = Json::array();
  for (const net::ListenAddress& a : g.portals) {
    const bool v6 = a.host.find(':') != std::string::npos;
    portals.push_back({{"host", v6 ? "[" + a.host + "]" : a.host}, {"port", std::to_string(a.port)}});
  }
  return Json{{"tag", g.tag}, {"portals", portals}, {"private", false}};
}

Json initiator_group_json(const InitiatorGroupInfo& g) {
  return Json{{"tag", g.tag}, {"initiators", g.names}, {"netmasks", g.netmasks}};
}

Json auth_group_json(const AuthGroupInfo& g) {
  Json secrets = Json::array();
  for (const ChapSecret& c : g.secrets) {
    Json s{{"user", c.user}, {"secret", c.secret}};
    if (!c.muser.empty()) {
      s["muser"] = c.muser;
      s["msecret"] = c.msecret;
    }
    secrets.push_back(std::move(s));
  }
  return Json{{"tag", g.tag}, {"secrets", secrets}};
}

void add_group_methods(rpc::Registry& r) {
  add_locked(r, "iscsi_create_portal_group", [](const Params& p, Service& s) {
    const uint16_t tag = tag_param(p, "tag");
    std::vector<net::ListenAddress> portals;
    for (const Json& v : array_param(p, "portals", true)) portals.push_back(portal_param(v));
    if (p.flag("private", false)) bad_param("private portal groups (for iSCSI redirection) are not supported");
    if (p.flag("wait", false))
      bad_param("wait: a portal group accepts as soon as it is made (no iscsi_start_portal_group)");
    p.done();
    call_target(s, [&](Target& t) { return t.add_portal_group(tag, std::move(portals)); });
    return Json(true);
  });
  add_locked(r, "iscsi_delete_portal_group", [](const Params& p, Service& s) {
    const uint16_t tag = tag_param(p, "tag");
    p.done();
    call_target(s, [&](Target& t) { return t.delete_portal_group(tag); });
    return Json(true);
  });
  add_locked(r, "iscsi_get_portal_groups", [](const Params& p, Service& s) {
    p.done();
    Json out = Json::array();
    if (s.target)
      for (const PortalGroupInfo& g : s.target->portal_groups()) out.push_back(portal_group_json(g));
    return out;
  });

  add_locked(r, "iscsi_create_initiator_group", [](const Params& p, Service& s) {
    InitiatorArgs a = initiator_args(p, true);
    call_target(s, [&](Target& t) { return t.add_initiator_group(a.tag, std::move(a.names), std::move(a.netmasks)); });
    return Json(true);
  });
  add_locked(r, "iscsi_delete_initiator_group", [](const Params& p, Service& s) {
    const uint16_t tag = tag_param(p, "tag");
    p.done();
    call_target(s, [&](Target& t) { return t.delete_initiator_group(tag); });
    return Json(true);
  });
  add_locked(r, "iscsi_initiator_group_add_initiators", [](const Params& p, Service& s) {
    InitiatorArgs a = initiator_args(p, false);
    call_target(s, [&](Target& t) { return t.initiator_group_add(a.tag, std::move(a.names), std::move(a.netmasks)); });
    return Json(true);
  });
  add_locked(r, "iscsi_initiator_group_remove_initiators", [](const Params& p, Service& s) {
    InitiatorArgs a = initiator_args(p, false);
    call_target(s,
                [&](Target& t) { return t.initiator_group_remove(a.tag, std::move(a.names), std::move(a.netmasks)); });
    return Json(true);
  });
  add_locked(r, "iscsi_get_initiator_groups", [](const Params& p, Service& s) {
    p.done();
    Json out = Json::array();
    if (s.target)
      for (const InitiatorGroupInfo& g : s.target->initiator_groups()) out.push_back(initiator_group_json(g));
    return out;
  });

  add_locked(r, "iscsi_create_auth_group", [](const Params& p, Service& s) {
    const uint16_t tag = tag_param(p, "tag");
    std::vector<ChapSecret> secrets = secrets_param(p);
    p.done();
    call_target(s, [&](Target& t) { return t.add_auth_group(tag, std::move(secrets)); });
    return Json(true);
  });
  add_locked(r, "iscsi_delete_auth_group", [](const Params& p, Service& s) {
    const uint16_t tag = tag_param(p, "tag");
    p.done();
    call_target(s, [&](Target& t) { return t.delete_auth_group(tag); });
    return Json(true);
  });
  add_locked(r, "iscsi_get_auth_groups", [](const Params& p, Service& s) {
    p.done();
    Json out = Json::array();
    if (s.target)
      for (const AuthGroupInfo& g : s.target->auth_groups()) out.push_back(auth_group_json(g));
    return out;
  });
  add_locked(r, "iscsi_set_discovery_auth", [](const Params& p, Service& s) {
    const ChapPolicy c = chap_params(p);
    p.done();
    call_target(s, [&](Target& t) { return t.set_discovery_auth(c); });
    return Json(true);
  });
}

}  // namespace sluice::iscsi::rpc_detail
