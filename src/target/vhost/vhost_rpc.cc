// vhost_create_blk_controller, vhost_create_scsi_controller and its targets,
// vhost_get_controllers, vhost_controller_set_coalescing, vhost_delete_controller, with SPDK's
// parameter and result names (its rpc.py and config files work unchanged for these); and
// Sluice's own vhost_set_adaptive_polling.
#include "target/vhost/vhost_rpc.h"

#include <fmt/format.h>

#include "base/log.h"
#include "bdev/bdev.h"
#include "target/vhost/vhost.h"

namespace sluice::vhost {
namespace {

using rpc::Json;
using rpc::Params;

Json backend_json(const ControllerInfo& c) {
  if (c.type == ControllerType::blk)
    return {{"block", {{"readonly", c.read_only}, {"bdev", c.bdev}, {"transport", "vhost_user_blk"}}}};
  Json targets = Json::array();
  for (const ScsiTargetInfo& t : c.targets)
    targets.push_back({{"target_name", fmt::format("Target {}", t.id)},
                       {"id", t.id},
                       {"scsi_dev_num", t.id},
                       {"luns", Json::array({Json{{"id", 0}, {"bdev_name", t.bdev}}})}});
  return {{"scsi", targets}};
}

Json controller_json(const ControllerInfo& c) {
  // SPDK's shape; Sluice runs a controller's queues on the reactor its connection landed on,
  // so cpumask means nothing yet.
  return Json{{"ctrlr", c.name},
              {"cpumask", "0x1"},
              {"delay_base_us", c.coalescing.delay_base_us},
              {"iops_threshold", c.coalescing.iops_threshold},
              {"socket", c.socket},
              {"sessions", c.connected ? Json::array({Json{{"vid", 0}}}) : Json::array()},
              {"backend_specific", backend_json(c)},
              // Sluice's own: the connected front end's counters.
              {"stats", {{"requests", c.stats.requests}, {"errors", c.stats.errors}, {"bad_chains", c.stats.bad_chains},
                         {"unaligned_requests", c.stats.unaligned_requests}}}};
}

// SPDK's scsi_target_num: a slot, or -1 for the first free one.
int64_t target_num(const Params& p) {
  const Json* v = p.raw("scsi_target_num");
  if (v == nullptr) throw rpc::Error{rpc::kInvalidParams, "missing 'scsi_target_num'"};
  if (!v->is_number_integer()) throw rpc::Error{rpc::kInvalidParams, "'scsi_target_num' must be an integer"};
  return v->get<int64_t>();
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
  add("vhost_create_scsi_controller", [](const Params& p) {
    ScsiControllerOptions o;
    o.name = p.str("ctrlr");
    (void)p.str("cpumask", "");  // as for vhost_create_blk_controller
    p.done();
    rpc::throw_if_error(create_scsi_controller(o));
    return Json(true);
  });
  add("vhost_scsi_controller_add_target", [](const Params& p) {
    const std::string name = p.str("ctrlr");
    const int64_t target = target_num(p);
    const std::string bdev = p.str("bdev_name");
    p.done();
    auto slot = scsi_controller_add_target(name, target, bdev);
    rpc::throw_if_error(slot.status());
    return Json(*slot);
  });
  add("vhost_scsi_controller_remove_target", [](const Params& p) {
    const std::string name = p.str("ctrlr");
    const int64_t target = target_num(p);
    p.done();
    rpc::throw_if_error(scsi_controller_remove_target(name, target));
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
  // Sluice's own: the adaptive polling cap (vhost.h, set_max_poll_spin_us).
  add("vhost_set_adaptive_polling", [](const Params& p) {
    const uint64_t max_spin_us = p.u64("max_spin_us");
    p.done();
    if (max_spin_us > kMaxPollSpinUs)
      throw rpc::Error{rpc::kInvalidParams, fmt::format("max_spin_us {} (at most {})", max_spin_us, kMaxPollSpinUs)};
    set_max_poll_spin_us(static_cast<uint32_t>(max_spin_us));
    return Json(true);
  });
  add("vhost_delete_controller", [](const Params& p) {
    const std::string name = p.str("ctrlr");
    p.done();
    rpc::throw_if_error(delete_controller(name));
    return Json(true);
  });
}

Json save_config(ControllerType type) {
  Json out = Json::array();
  // Before the controllers: their queues take it when they start.
  if (type == ControllerType::blk && max_poll_spin_us() != kDefaultMaxPollSpinUs)
    out.push_back({{"method", "vhost_set_adaptive_polling"}, {"params", {{"max_spin_us", max_poll_spin_us()}}}});
  for (const ControllerInfo& c : controllers()) {
    if (c.type != type) continue;
    if (c.type == ControllerType::scsi) {
      out.push_back({{"method", "vhost_create_scsi_controller"}, {"params", {{"ctrlr", c.name}}}});
      for (const ScsiTargetInfo& t : c.targets) {
        if (!bdev::find(t.bdev)) continue;  // its device was deleted
        out.push_back({{"method", "vhost_scsi_controller_add_target"},
                       {"params", {{"ctrlr", c.name}, {"scsi_target_num", t.id}, {"bdev_name", t.bdev}}}});
      }
    } else {
      if (!bdev::find(c.bdev)) continue;  // its device was deleted: nothing to serve
      out.push_back({{"method", "vhost_create_blk_controller"},
                     {"params", {{"ctrlr", c.name}, {"dev_name", c.bdev}, {"readonly", c.read_only}}}});
    }
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
                          r.add_subsystem("vhost_blk", [] { return save_config(ControllerType::blk); });
                          r.add_subsystem("vhost_scsi", [] { return save_config(ControllerType::scsi); });
                        },
                        shutdown};
}

}  // namespace sluice::vhost
