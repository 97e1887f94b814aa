// bdev_nvme_attach_controller / bdev_nvme_detach_controller, with SPDK's names and
// parameters, over Sluice's userspace NVMe driver (PCIe: VFIO or UIO). The TCP transport is
// not built yet: trtype "TCP" is refused with a message that says so.
#include <algorithm>

#include <fmt/format.h>

#include "bdev/bdev.h"
#include "daemon/created_bdevs.h"
#include "daemon/daemon.h"
#include "nvme/nvme.h"

namespace sluice::daemon {
namespace {

using rpc::Json;
using rpc::Params;

Json attach(const Params& p) {
  const std::string name = p.str("name");
  const std::string trtype = p.str("trtype");
  const std::string traddr = p.str("traddr");
  const uint64_t io_queue_requests = p.u64("io_queue_requests", 0);  // SPDK's name for the queue depth
  for (const char* ignored : {"adrfam", "trsvcid", "subnqn", "hostnqn", "prchk_reftag", "prchk_guard", "ctrlr_loss_timeout_sec",
                              "reconnect_delay_sec", "fast_io_fail_timeout_sec"})
    p.raw(ignored);  // fabrics options: meaningless for PCIe
  p.done();
  if (trtype != "PCIe" && trtype != "pcie")
    throw rpc::Error{rpc::kInvalidParams,
                     fmt::format("trtype {}: Sluice attaches PCIe controllers (the TCP transport is not built yet)", trtype)};
  if (name.empty() || name.find_first_of("/?&:") != std::string::npos)
    throw rpc::Error{rpc::kInvalidParams, fmt::format("'{}' cannot name a controller", name)};
  for (const std::string& existing : bdev::list())
    if (existing.starts_with(name + "n"))
      throw rpc::Error{-17, fmt::format("a controller named {} is attached already ({})", name, existing)};
  const std::string options = io_queue_requests != 0 ? fmt::format("qd={}", io_queue_requests) : std::string();
  auto names = nvme::attach_namespaces(traddr, name, options);
  rpc::throw_if_error(names.status());
  Json params{{"name", name}, {"trtype", "PCIe"}, {"traddr", traddr}};
  if (io_queue_requests != 0) params["io_queue_requests"] = io_queue_requests;
  remember(*names, "bdev_nvme_attach_controller", std::move(params));
  for (const std::string& n : *names) examine(n);
  return Json(*names);
}

Json detach(const Params& p) {
  const std::string name = p.str("name");
  p.raw("trtype");
  p.raw("traddr");
  p.done();
  std::vector<std::string> mine;
  for (const std::string& n : bdev::list()) {
    if (!n.starts_with(name + "n")) continue;
    auto dev = bdev::find(n);
    if (dev && dev->spec().starts_with("nvme:")) mine.push_back(n);
  }
  if (mine.empty()) throw rpc::Error{-19, fmt::format("no NVMe controller named {}", name)};
  for (const std::string& n : mine) {
    rpc::throw_if_error(bdev::unregister(n));
    forget(n);
  }
  return Json(true);
}

}  // namespace

void add_nvme_methods(rpc::Registry& r) {
  (void)r.add("bdev_nvme_attach_controller", attach);
  (void)r.add("bdev_nvme_detach_controller", detach);
}

}  // namespace sluice::daemon
