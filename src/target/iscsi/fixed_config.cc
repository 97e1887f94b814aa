// Target::start(TargetConfig) and addresses() (fixed_config.h): the fixed configuration as
// runtime calls. Initiator group 1 lets anyone in; node i's CHAP secret is auth group i + 1.
#include <fmt/format.h>

#include "target/iscsi/connection.h"

namespace sluice::iscsi {

Result<std::unique_ptr<Target>> Target::start(TargetConfig config) {
  auto t = start(GlobalOptions{.first_burst_length = config.first_burst_length,
                               .max_burst_length = config.max_burst_length,
                               .max_recv_data_segment_length = config.max_recv_data_segment_length,
                               .initial_r2t = config.initial_r2t,
                               .immediate_data = config.immediate_data,
                               .allow_duplicated_isid = true,  // as it was
                               .default_queue_depth = config.queue_depth,
                               .login_timeout = config.login_timeout,
                               .stop_timeout = config.stop_timeout,
                               .accept_reactor = config.accept_reactor});
  if (!t.ok()) return t.status();
  Target& target = *t.value();
  const uint16_t pg = config.portal_group.tag;
  SLUICE_RETURN_IF_ERROR(target.add_portal_group(pg, std::move(config.portal_group.portals)));
  SLUICE_RETURN_IF_ERROR(target.add_initiator_group(1, {"ANY"}, {"ANY"}));
  for (size_t i = 0; i < config.nodes.size(); ++i) {
    TargetNode& n = config.nodes[i];
    NodeConfig node{.name = std::move(n.name),
                    .alias = std::move(n.alias),
                    .luns = std::move(n.luns),
                    .pg_ig_maps = {{pg, 1}},
                    .read_only = n.read_only};
    if (n.chap) {
      if (i + 1 > 0xffff) return Status(Errc::invalid_argument, "iscsi: too many nodes with CHAP");
      const uint16_t ag = uint16_t(i + 1);
      const ChapCredentials& c = *n.chap;
      SLUICE_RETURN_IF_ERROR(
          target.add_auth_group(ag, {{c.initiator_name, c.initiator_secret, c.target_name, c.target_secret}}));
      node.chap = {.require_chap = true, .mutual_chap = c.mutual(), .chap_group = ag};
    }
    SLUICE_RETURN_IF_ERROR(target.add_node(std::move(node)));
  }
  return t;
}

std::vector<net::ListenAddress> Target::addresses() const {
  std::vector<net::ListenAddress> out;
  for (const auto& [tag, pg] : state_->snapshot()->portal_groups)
    out.insert(out.end(), pg.portals.begin(), pg.portals.end());
  return out;
}

}  // namespace sluice::iscsi
