// bdev_nvme_attach_controller / bdev_nvme_detach_controller, with SPDK's names and
// parameters, over Sluice's userspace NVMe driver: PCIe (VFIO or UIO) or TCP (an NVMe-oF
// subsystem another target serves, so that this daemon can re-export its namespaces).
#include <algorithm>

#include <fmt/format.h>

#include "base/number.h"
#include "bdev/bdev.h"
#include "daemon/created_bdevs.h"
#include "daemon/daemon.h"
#include "nvme/fabrics_device.h"
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
  const bool tcp = trtype == "TCP" || trtype == "tcp";
  std::string adrfam, trsvcid, subnqn, hostnqn;
  bool hdgst = false, ddgst = false;
  if (tcp) {
    adrfam = p.str("adrfam", "IPv4");
    trsvcid = p.str("trsvcid", "4420");
    subnqn = p.str("subnqn");
    hostnqn = p.str("hostnqn", "");
    hdgst = p.flag("hdgst", false);
    ddgst = p.flag("ddgst", false);
  } else {
    for (const char* ignored : {"adrfam", "trsvcid", "subnqn", "hostnqn", "hdgst", "ddgst"})
      p.raw(ignored);  // fabrics options: meaningless for PCIe
  }
  for (const char* ignored :
       {"prchk_reftag", "prchk_guard", "ctrlr_loss_timeout_sec", "reconnect_delay_sec", "fast_io_fail_timeout_sec"})
    p.raw(ignored);
  p.done();
  if (!tcp && trtype != "PCIe" && trtype != "pcie")
    throw rpc::Error{rpc::kInvalidParams, fmt::format("trtype {}: Sluice attaches PCIe and TCP controllers", trtype)};
  if (name.empty() || name.find_first_of("/?&:") != std::string::npos)
    throw rpc::Error{rpc::kInvalidParams, fmt::format("'{}' cannot name a controller", name)};
  for (const std::string& existing : bdev::list())
    if (existing.starts_with(name + "n"))
      throw rpc::Error{-17, fmt::format("a controller named {} is attached already ({})", name, existing)};
  const std::string options = io_queue_requests != 0 ? fmt::format("qd={}", io_queue_requests) : std::string();
  Json params{{"name", name}, {"trtype", tcp ? "TCP" : "PCIe"}, {"traddr", traddr}};
  auto attach_over_tcp = [&] {
    if (adrfam != "IPv4" && adrfam != "ipv4" && adrfam != "IPv6" && adrfam != "ipv6")
      throw rpc::Error{rpc::kInvalidParams, fmt::format("adrfam {}: IPv4 or IPv6", adrfam)};
    auto port = parse_uint(trsvcid, 1, 65535);
    if (!port.ok()) throw rpc::Error{rpc::kInvalidParams, fmt::format("trsvcid '{}' is not a TCP port", trsvcid)};
    nvme::TcpTarget t;
    t.address = net::ListenAddress::tcp_address(traddr, static_cast<uint16_t>(*port));
    t.subnqn = subnqn;
    t.hostnqn = hostnqn;
    t.header_digest = hdgst;
    t.data_digest = ddgst;
    params.update({{"adrfam", adrfam}, {"trsvcid", trsvcid}, {"subnqn", subnqn}, {"hdgst", hdgst}, {"ddgst", ddgst}});
    if (!hostnqn.empty()) params["hostnqn"] = hostnqn;
    return nvme::attach_tcp_namespaces(t, name, options);
  };
  auto names = tcp ? attach_over_tcp() : nvme::attach_namespaces(traddr, name, options);
  rpc::throw_if_error(names.status());
  if (io_queue_requests != 0) params["io_queue_requests"] = io_queue_requests;
  remember(*names, "bdev_nvme_attach_controller", std::move(params));
  for (const std::string& n : *names) examine(n);
  return Json(*names);
}

Json detach(const Params& p) {
  const std::string name = p.str("name");
  for (const char* ignored : {"trtype", "traddr", "adrfam", "trsvcid", "subnqn", "hostnqn"}) p.raw(ignored);
  p.done();
  std::vector<std::string> mine;
  for (const std::string& n : bdev::list()) {
    if (!n.starts_with(name + "n")) continue;
    auto dev = bdev::find(n);
    if (dev && (dev->spec().starts_with("nvme:") || dev->spec().starts_with("nvme-tcp:"))) mine.push_back(n);
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
