// Target's configuration calls other than portal groups (iscsi.h): each is one State::change,
// which checks its input against the current snapshot and publishes a changed copy.
#include <algorithm>
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "base/log.h"
#include "target/iscsi/connection.h"

namespace sluice::iscsi {
namespace {

using detail::Snapshot;

Status config_error(std::string message) { return Status(Errc::invalid_argument, "iscsi: " + std::move(message)); }

Status check_names(uint16_t tag, const std::vector<std::string>& names) {
  for (const std::string& n : names)
    if (Status st = check_group_name(n); !st.ok())
      return config_error(fmt::format("initiator group {}: {}", tag, st.message()));
  return Status::Ok();
}

Result<std::vector<Netmask>> parse_masks(uint16_t tag, const std::vector<std::string>& masks) {
  std::vector<Netmask> out;
  for (const std::string& m : masks) {
    auto p = parse_netmask(m);
    if (!p.ok()) return config_error(fmt::format("initiator group {}: {}", tag, p.status().message()));
    out.push_back(p.value());
  }
  return out;
}

Status check_policy(const Snapshot& snap, const ChapPolicy& p, const std::string& who) {
  if (p.disable_chap && p.require_chap) return config_error(who + ": disable_chap and require_chap together");
  if (p.mutual_chap && !p.require_chap) return config_error(who + ": mutual_chap needs require_chap");
  if (p.require_chap && p.chap_group == 0) return config_error(who + ": require_chap needs a chap_group");
  if (p.chap_group != 0 && !snap.auth_groups.contains(p.chap_group))
    return Status(Errc::not_found, fmt::format("iscsi: {}: no auth group {}", who, p.chap_group));
  return Status::Ok();
}

Status check_maps(const Snapshot& snap, const std::vector<PgIgMap>& maps, const std::string& who) {
  for (const PgIgMap& m : maps) {
    if (!snap.portal_groups.contains(m.pg_tag))
      return Status(Errc::not_found, fmt::format("iscsi: {}: no portal group {}", who, m.pg_tag));
    if (!snap.initiator_groups.contains(m.ig_tag))
      return Status(Errc::not_found, fmt::format("iscsi: {}: no initiator group {}", who, m.ig_tag));
  }
  return Status::Ok();
}

// Drops from `list` every element `drop` has.
template <typename T>
void remove_all(std::vector<T>& list, const std::vector<T>& drop) {
  list.erase(std::remove_if(list.begin(), list.end(),
                            [&](const T& x) { return std::find(drop.begin(), drop.end(), x) != drop.end(); }),
             list.end());
}

}  // namespace

Status Target::State::change(const char* what, const Edit& edit) {
  SLUICE_RETURN_IF_ERROR(detail::control_thread_only(what));
  std::lock_guard lock(control);
  std::shared_ptr<const Snapshot> now = snapshot();
  auto next = std::make_shared<Snapshot>(*now);
  SLUICE_RETURN_IF_ERROR(edit(*now, *next));
  publish(std::move(next));
  return Status::Ok();
}

Status Target::add_initiator_group(uint16_t tag, std::vector<std::string> names, std::vector<std::string> netmasks) {
  return state_->change("Target::add_initiator_group", [&](const Snapshot& now, Snapshot& next) -> Status {
    if (tag == 0) return config_error("initiator group tag 0: tags are 1..65535");
    if (now.initiator_groups.contains(tag))
      return Status(Errc::exists, fmt::format("iscsi: initiator group {} exists", tag));
    if (names.empty() || netmasks.empty())
      return config_error(fmt::format("initiator group {} needs names and netmasks", tag));
    SLUICE_RETURN_IF_ERROR(check_names(tag, names));
    auto masks = parse_masks(tag, netmasks);
    if (!masks.ok()) return masks.status();
    next.initiator_groups[tag] = {{tag, std::move(names), std::move(netmasks)}, std::move(masks.value())};
    return Status::Ok();
  });
}

Status Target::initiator_group_add(uint16_t tag, std::vector<std::string> names, std::vector<std::string> netmasks) {
  return state_->change("Target::initiator_group_add", [&](const Snapshot& now, Snapshot& next) -> Status {
    auto it = now.initiator_groups.find(tag);
    if (it == now.initiator_groups.end())
      return Status(Errc::not_found, fmt::format("iscsi: no initiator group {}", tag));
    SLUICE_RETURN_IF_ERROR(check_names(tag, names));
    auto masks = parse_masks(tag, netmasks);
    if (!masks.ok()) return masks.status();
    detail::InitiatorGroup& g = next.initiator_groups[tag];
    g.info.names.insert(g.info.names.end(), names.begin(), names.end());
    g.info.netmasks.insert(g.info.netmasks.end(), netmasks.begin(), netmasks.end());
    g.masks.insert(g.masks.end(), masks.value().begin(), masks.value().end());
    return Status::Ok();
  });
}

Status Target::initiator_group_remove(uint16_t tag, std::vector<std::string> names, std::vector<std::string> netmasks) {
  return state_->change("Target::initiator_group_remove", [&](const Snapshot& now, Snapshot& next) -> Status {
    auto it = now.initiator_groups.find(tag);
    if (it == now.initiator_groups.end())
      return Status(Errc::not_found, fmt::format("iscsi: no initiator group {}", tag));
    detail::InitiatorGroup& g = next.initiator_groups[tag];
    for (const std::string& n : names)
      if (std::find(g.info.names.begin(), g.info.names.end(), n) == g.info.names.end())
        return Status(Errc::not_found, fmt::format("iscsi: initiator group {} has no name '{}'", tag, n));
    for (const std::string& m : netmasks)
      if (std::find(g.info.netmasks.begin(), g.info.netmasks.end(), m) == g.info.netmasks.end())
        return Status(Errc::not_found, fmt::format("iscsi: initiator group {} has no netmask '{}'", tag, m));
    remove_all(g.info.names, names);
    remove_all(g.info.netmasks, netmasks);
    auto masks = parse_masks(tag, g.info.netmasks);
    if (!masks.ok()) return masks.status();
    g.masks = std::move(masks.value());
    return Status::Ok();
  });
}

Status Target::delete_initiator_group(uint16_t tag) {
  return state_->change("Target::delete_initiator_group", [&](const Snapshot& now, Snapshot& next) -> Status {
    if (!now.initiator_groups.contains(tag))
      return Status(Errc::not_found, fmt::format("iscsi: no initiator group {}", tag));
    for (const auto& [name, node] : now.nodes)
      for (const PgIgMap& m : node.config.pg_ig_maps)
        if (m.ig_tag == tag)
          return Status(Errc::busy, fmt::format("iscsi: initiator group {} is mapped by target node '{}'", tag, name));
    next.initiator_groups.erase(tag);
    return Status::Ok();
  });
}

Status Target::add_auth_group(uint16_t tag, std::vector<ChapSecret> secrets) {
  return state_->change("Target::add_auth_group", [&](const Snapshot& now, Snapshot& next) -> Status {
    if (tag == 0) return config_error("auth group tag 0: tags are 1..65535");
    if (now.auth_groups.contains(tag)) return Status(Errc::exists, fmt::format("iscsi: auth group {} exists", tag));
    for (size_t i = 0; i < secrets.size(); ++i) {
      const ChapSecret& c = secrets[i];
      if (c.user.empty()) return config_error(fmt::format("auth group {}: a secret without a user", tag));
      if (c.muser.empty() != c.msecret.empty())
        return config_error(fmt::format("auth group {}: user '{}': muser and msecret go together", tag, c.user));
      Status st = check_credentials({c.user, c.secret, c.muser, c.msecret});
      if (!st.ok()) return config_error(fmt::format("auth group {}: user '{}': {}", tag, c.user, st.message()));
      for (size_t j = 0; j < i; ++j)
        if (secrets[j].user == c.user) return config_error(fmt::format("auth group {}: user '{}' twice", tag, c.user));
    }
    next.auth_groups[tag] = {tag, std::move(secrets)};
    return Status::Ok();
  });
}

Status Target::delete_auth_group(uint16_t tag) {
  return state_->change("Target::delete_auth_group", [&](const Snapshot& now, Snapshot& next) -> Status {
    if (!now.auth_groups.contains(tag)) return Status(Errc::not_found, fmt::format("iscsi: no auth group {}", tag));
    if (now.discovery_auth.chap_group == tag)
      return Status(Errc::busy, fmt::format("iscsi: auth group {} is discovery's", tag));
    for (const auto& [name, node] : now.nodes)
      if (node.config.chap.chap_group == tag)
        return Status(Errc::busy, fmt::format("iscsi: auth group {} is target node '{}''s", tag, name));
    next.auth_groups.erase(tag);
    return Status::Ok();
  });
}

Status Target::set_discovery_auth(ChapPolicy policy) {
  return state_->change("Target::set_discovery_auth", [&](const Snapshot& now, Snapshot& next) -> Status {
    SLUICE_RETURN_IF_ERROR(check_policy(now, policy, "discovery"));
    next.discovery_auth = policy;
    return Status::Ok();
  });
}

Status Target::add_node(NodeConfig node) {
  return state_->change("Target::add_node", [&](const Snapshot& now, Snapshot& next) -> Status {
    if (node.name.empty()) return config_error("a target node without a name");
    const std::string prefix = node.name.substr(0, 4);
    if (prefix != "iqn." && prefix != "eui." && prefix != "naa.")
      node.name = state_->options.node_base + ":" + node.name;
    SLUICE_RETURN_IF_ERROR(check_iscsi_name(node.name));
    if (now.nodes.contains(node.name))
      return Status(Errc::exists, fmt::format("iscsi: target node '{}' exists", node.name));
    if (node.queue_depth == 0) node.queue_depth = state_->options.default_queue_depth;
    if (node.queue_depth < 2) return config_error(fmt::format("target node '{}': queue_depth below 2", node.name));
    SLUICE_RETURN_IF_ERROR(check_policy(now, node.chap, "target node '" + node.name + "'"));
    SLUICE_RETURN_IF_ERROR(check_maps(now, node.pg_ig_maps, "target node '" + node.name + "'"));
    auto rt = std::make_shared<detail::NodeRuntime>(node.name);
    for (const auto& [lun, bdev] : node.luns)
      if (Status st = rt->device.add_lun(lun, bdev, node.read_only); !st.ok())
        return Status(st.code(), fmt::format("iscsi: target node '{}' LUN {}: {}", node.name, lun, st.message()));
    const std::string name = node.name;
    next.nodes[name] = {std::move(node), std::move(rt)};
    return Status::Ok();
  });
}

Status Target::add_lun(std::string_view name, uint16_t lun, std::string bdev) {
  return state_->change("Target::add_lun", [&](const Snapshot& now, Snapshot& next) -> Status {
    auto it = now.nodes.find(std::string(name));
    if (it == now.nodes.end()) return Status(Errc::not_found, fmt::format("iscsi: no target node '{}'", name));
    if (it->second.config.luns.contains(lun))
      return Status(Errc::exists, fmt::format("iscsi: target node '{}' has LUN {}", name, lun));
    detail::NodeRuntime& rt = *it->second.rt;
    {
      // Held across add_lun: no login attaches to the device while its LUNs change.
      std::lock_guard node_lock(rt.mu);
      if (rt.sessions > 0)
        return Status(Errc::busy, fmt::format("iscsi: target node '{}' has {} session(s): LUNs are added before "
                                              "the first login",
                                              name, rt.sessions));
      if (Status st = rt.device.add_lun(lun, bdev, it->second.config.read_only); !st.ok())
        return Status(st.code(), fmt::format("iscsi: target node '{}' LUN {}: {}", name, lun, st.message()));
    }
    next.nodes[std::string(name)].config.luns[lun] = std::move(bdev);
    return Status::Ok();
  });
}

Status Target::node_add_maps(std::string_view name, std::vector<PgIgMap> maps) {
  return state_->change("Target::node_add_maps", [&](const Snapshot& now, Snapshot& next) -> Status {
    auto it = now.nodes.find(std::string(name));
    if (it == now.nodes.end()) return Status(Errc::not_found, fmt::format("iscsi: no target node '{}'", name));
    SLUICE_RETURN_IF_ERROR(check_maps(now, maps, "target node '" + std::string(name) + "'"));
    auto& have = next.nodes[std::string(name)].config.pg_ig_maps;
    for (const PgIgMap& m : maps)
      if (std::find(have.begin(), have.end(), m) == have.end()) have.push_back(m);
    return Status::Ok();
  });
}

Status Target::node_remove_maps(std::string_view name, std::vector<PgIgMap> maps) {
  return state_->change("Target::node_remove_maps", [&](const Snapshot& now, Snapshot& next) -> Status {
    auto it = now.nodes.find(std::string(name));
    if (it == now.nodes.end()) return Status(Errc::not_found, fmt::format("iscsi: no target node '{}'", name));
    auto& have = next.nodes[std::string(name)].config.pg_ig_maps;
    for (const PgIgMap& m : maps)
      if (std::find(have.begin(), have.end(), m) == have.end())
        return Status(Errc::not_found,
                      fmt::format("iscsi: target node '{}' has no map ({}, {})", name, m.pg_tag, m.ig_tag));
    remove_all(have, maps);
    return Status::Ok();
  });
}

Status Target::delete_node(std::string_view name) {
  SLUICE_RETURN_IF_ERROR(detail::control_thread_only("Target::delete_node"));
  State* s = state_.get();
  std::lock_guard lock(s->control);
  auto snap = s->snapshot();
  auto it = snap->nodes.find(std::string(name));
  if (it == snap->nodes.end()) return Status(Errc::not_found, fmt::format("iscsi: no target node '{}'", name));
  std::shared_ptr<detail::NodeRuntime> rt = it->second.rt;
  auto next = std::make_shared<Snapshot>(*snap);
  next->nodes.erase(std::string(name));
  s->publish(std::move(next));
  {
    std::lock_guard node_lock(rt->mu);
    rt->deleted = true;  // a login that read the old snapshot fails to attach from now on
  }
  // Its connections, logged in or logging in, are on any reactor.
  // Each message holds the node, so that no other node can take its address meanwhile.
  for (uint32_t r = 0; r < thread::reactor_count(); ++r)
    SLUICE_RETURN_IF_ERROR(thread::send_message(r, [s, rt] { detail::close_connections(s, rt.get()); }));
  const auto deadline = std::chrono::steady_clock::now() + s->options.stop_timeout;
  while (true) {
    {
      std::lock_guard node_lock(rt->mu);
      if (rt->sessions == 0) return Status::Ok();
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return Status(Errc::aborted,
                    fmt::format("iscsi: target node '{}' deleted, its sessions still closing after {} ms", name,
                                s->options.stop_timeout.count()));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

std::vector<NodeInfo> Target::nodes() const {
  std::vector<NodeInfo> out;
  for (const auto& [name, node] : state_->snapshot()->nodes) out.push_back(node.config);
  return out;
}

std::vector<PortalGroupInfo> Target::portal_groups() const {
  std::vector<PortalGroupInfo> out;
  for (const auto& [tag, pg] : state_->snapshot()->portal_groups) out.push_back(pg);
  return out;
}

std::vector<InitiatorGroupInfo> Target::initiator_groups() const {
  std::vector<InitiatorGroupInfo> out;
  for (const auto& [tag, ig] : state_->snapshot()->initiator_groups) out.push_back(ig.info);
  return out;
}

std::vector<AuthGroupInfo> Target::auth_groups() const {
  std::vector<AuthGroupInfo> out;
  for (const auto& [tag, ag] : state_->snapshot()->auth_groups) out.push_back(ag);
  return out;
}

ChapPolicy Target::discovery_auth() const { return state_->snapshot()->discovery_auth; }

Result<std::vector<ConnectionInfo>> Target::connections() const {
  SLUICE_RETURN_IF_ERROR(detail::control_thread_only("Target::connections"));
  State* s = state_.get();
  std::vector<ConnectionInfo> out;
  for (uint32_t r = 0; r < thread::reactor_count(); ++r) {
    // Shared: a reactor that answers after the timeout still has somewhere to write.
    auto part = std::make_shared<std::vector<ConnectionInfo>>();
    SLUICE_RETURN_IF_ERROR(thread::call_and_wait(
        r,
        [s, part] {
          *part = detail::list_connections(s);
          return Status::Ok();
        },
        s->options.stop_timeout));
    out.insert(out.end(), part->begin(), part->end());
  }
  return out;
}

}  // namespace sluice::iscsi
