// Snapshot's rules (config.h): access through pg_ig_maps, SendTargets visibility, CHAP.
#include "target/iscsi/config.h"

#include <algorithm>

namespace sluice::iscsi::detail {

bool Snapshot::allowed(const Node& node, uint16_t pg_tag, std::string_view initiator, std::string_view address) const {
  bool ok = false;
  for (const PgIgMap& m : node.config.pg_ig_maps) {
    if (pg_tag != 0 && m.pg_tag != pg_tag) continue;
    auto ig = initiator_groups.find(m.ig_tag);
    if (ig == initiator_groups.end()) continue;
    const NameVerdict v = match_name(ig->second.info.names, initiator);
    if (v == NameVerdict::denied) return false;
    if (v != NameVerdict::allowed) continue;
    for (const Netmask& mask : ig->second.masks)
      if (netmask_matches(mask, address)) ok = true;
  }
  return ok;
}

std::vector<TargetRecord> Snapshot::visible(std::string_view initiator, std::string_view address) const {
  std::vector<TargetRecord> out;
  for (const auto& [name, node] : nodes) {
    if (!allowed(node, 0, initiator, address)) continue;
    TargetRecord rec{name, {}};
    std::vector<uint16_t> tags;
    for (const PgIgMap& m : node.config.pg_ig_maps)
      if (std::find(tags.begin(), tags.end(), m.pg_tag) == tags.end() && allowed(node, m.pg_tag, initiator, address))
        tags.push_back(m.pg_tag);
    for (uint16_t tag : tags) {
      auto pg = portal_groups.find(tag);
      if (pg == portal_groups.end()) continue;
      for (const net::ListenAddress& a : pg->second.portals) rec.portals.push_back({a.to_string(), tag});
    }
    if (!rec.portals.empty()) out.push_back(std::move(rec));
  }
  return out;
}

void Snapshot::apply_chap(const ChapPolicy& policy, TargetOptions& o) const {
  auto ag = auth_groups.find(policy.chap_group);
  const bool chap = !policy.disable_chap && ag != auth_groups.end();
  o.auth_methods.clear();
  if (!policy.require_chap) o.auth_methods.push_back(AuthMethod::none);
  if (!chap) return;  // require_chap without a group: nothing is accepted
  o.auth_methods.push_back(AuthMethod::chap);
  o.chap_lookup = [secrets = ag->second.secrets,
                   mutual = policy.mutual_chap](std::string_view user) -> std::optional<ChapCredentials> {
    for (const ChapSecret& s : secrets) {
      if (s.user != user) continue;
      if (mutual && s.msecret.empty()) return std::nullopt;  // mutual asked, no target secret
      ChapCredentials c{.initiator_name = s.user, .initiator_secret = s.secret};
      if (mutual) {
        c.target_name = s.muser;
        c.target_secret = s.msecret;
      }
      return c;
    }
    return std::nullopt;
  };
}

}  // namespace sluice::iscsi::detail
