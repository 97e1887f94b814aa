// vhost_create_blk_controller / vhost_get_controllers / vhost_delete_controller, with SPDK's
// parameter and result names (its rpc.py and config files work unchanged for these).
#include "target/vhost/vhost_rpc.h"

#include <fmt/format.h>

#include "base/log.h"
#include "bdev/bdev.h"
#include "target/vhost/vhost.h"

namespace sluice::vhost {
namespace {

using rpc::Json;
using rpc::Params;

Json controller_json(const ControllerInfo& c) {
  // SPDK's shape; Sluice runs a controller's queues on the reactor its connection landed on,
  // so cpumask means nothing yet.
  return Json{{"ctrlr", c.name},
              {"cpumask", "0x1"},
              {"delay_base_us", c.coalescing.delay_base_us},
              {"iops_threshold", c.coalescing.iops_threshold},
              {"socket", c.socket},
              {"sessions", c.connected ? Json::array({Json{{"vid", 0}}}) : Json::array()},
              {"backend_specific", {{"block", {{"readonly", c.read_only}, {"bdev", c.bdev}, {"transport", "vhost_user_blk"}}}}},
              // Sluice's own: the connected front end's counters.
              {"stats", {{"requests", c.stats.requests}, {"errors", c.stats.errors}, {"bad_chains", c.stats.bad_chains},
                         {"unaligned_requests", c.stats.unaligned_requests}}}};
}

void add_methods(rpc::Registry& r) {
  auto add = [&r](const char* name, rpc::Handler h) { (void)r.add(name, std::move(h)); };
  add("vhost_create_blk_controller", [](const Params& p) {
    BlkControllerOptions o;
    o.name = p.str("ctrlr");
    o.bdev = p.str("dev_name");
    o.read_only = p.flag("readonly", false);
    // Accepted for SPDK's configs; queues run where their connection is (see controller_json).
    (void)p.str("cpumask", "");
    if (p.flag("packed_ring", false))
      throw rpc::Error{rpc::kInvalidParams, "packed_ring: only split virtqueues are served"};
    p.done();
    rpc::throw_if_error(create_blk_controller(o));
    return Json(true);
  });
  add("vhost_get_controllers", [](const Params& p) {
    const std::string name = p.str("name", "");
    p.done();
    Json out = Json::array();
    bool found = false;
    for (const ControllerInfo& c : controllers()) {
      if (!name.empty() && c.name != name) continue;
      found = true;
      out.push_back(controller_json(c));
    }
    if (!name.empty() && !found) throw rpc::Error{rpc::kInvalidParams, fmt::format("no vhost controller {}", name)};
    return out;
  });
  add("vhost_controller_set_coalescing", [](const Params& p) {
    const std::string name = p.str("ctrlr");
    const uint64_t delay = p.u64("delay_base_us"), threshold = p.u64("iops_threshold");
    p.done();
    if (delay > UINT32_MAX || threshold > UINT32_MAX)
      throw rpc::Error{rpc::kInvalidParams, "delay_base_us and iops_threshold must fit 32 bits"};
    rpc::throw_if_error(set_coalescing(name, {static_cast<uint32_t>(delay), static_cast<uint32_t>(threshold)}));
    return Json(true);
  });
  add("vhost_delete_controller", [](const Params& p) {
    const std::string name = p.str("ctrlr");
    p.done();
    rpc::throw_if_error(delete_controller(name));
    return Json(true);
  });
}

Json save_config() {
  Json out = Json::array();
  for (const ControllerInfo& c : controllers()) {
    if (!bdev::find(c.bdev)) continue;  // its device was deleted: nothing to serve
    out.push_back({{"method", "vhost_create_blk_controller"},
                   {"params", {{"ctrlr", c.name}, {"dev_name", c.bdev}, {"readonly", c.read_only}}}});
    if (c.coalescing != Coalescing{})
      out.push_back({{"method", "vhost_controller_set_coalescing"},
                     {"params", {{"ctrlr", c.name},
                                 {"delay_base_us", c.coalescing.delay_base_us},
                                 {"iops_threshold", c.coalescing.iops_threshold}}}});
  }
  return out;
}

void shutdown() {
  for (const ControllerInfo& c : controllers())
    if (Status st = delete_controller(c.name); !st.ok()) log::error("vhost: deleting {}: {}", c.name, st.to_string());
}

}  // namespace

daemon::Module rpc_module() {
  return daemon::Module{"vhost_blk",
                        [](rpc::Registry& r) {
                          add_methods(r);
                          r.add_subsystem("vhost_blk", save_config);
                        },
                        shutdown};
}

}  // namespace sluice::vhost
