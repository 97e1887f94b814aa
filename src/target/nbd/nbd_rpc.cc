// nbd_server_start / nbd_server_stop / nbd_export_add / nbd_export_remove / nbd_get_exports.
// (SPDK's nbd_* methods attach bdevs to the kernel's /dev/nbdN; these serve them to NBD
// clients instead, the way qemu-storage-daemon and nbdkit do.)
#include "target/nbd/nbd_rpc.h"

#include <fmt/format.h>

#include "base/log.h"
#include "bdev/bdev.h"
#include "target/nbd/nbd.h"

namespace sluice::nbd {
namespace {

using rpc::Json;
using rpc::Params;

net::ListenAddress address_param(const Params& p) {
  const std::string socket = p.str("socket", "");
  const Json* address = p.raw("address");
  const Json* port = p.raw("port");
  if (!socket.empty()) {
    if (address != nullptr || port != nullptr)
      throw rpc::Error{rpc::kInvalidParams, "give either socket or address and port, not both"};
    return net::ListenAddress::unix_socket(socket);
  }
  const std::string host = p.str("address", "127.0.0.1");
  const uint64_t number = p.u64("port", kDefaultPort);
  if (number > 65535) throw rpc::Error{rpc::kInvalidParams, fmt::format("port {} is out of range", number)};
  return net::ListenAddress::tcp_address(host, static_cast<uint16_t>(number));
}

Json address_json(const net::ListenAddress& a) {
  if (a.kind == net::ListenAddress::Kind::unix_path) return Json{{"socket", a.path}};
  return Json{{"address", a.host}, {"port", a.port}};
}

Json export_json(const ExportInfo& e) {
  return Json{{"name", e.name}, {"bdev_name", e.bdev}, {"read_only", e.read_only}, {"connections", e.connections}};
}

void add_methods(rpc::Registry& r) {
  auto add = [&r](const char* name, rpc::Handler h) { (void)r.add(name, std::move(h)); };
  add("nbd_server_start", [](const Params& p) {
    const net::ListenAddress address = address_param(p);
    p.done();
    rpc::throw_if_error(start_server(address));
    const auto bound = server_address();
    return bound ? address_json(*bound) : Json(nullptr);
  });
  add("nbd_server_stop", [](const Params& p) {
    p.done();
    rpc::throw_if_error(stop_server());
    return Json(true);
  });
  add("nbd_export_add", [](const Params& p) {
    const std::string name = p.str("name"), bdev_name = p.str("bdev_name");
    const bool read_only = p.flag("read_only", false);
    p.done();
    rpc::throw_if_error(export_add(name, bdev_name, read_only));
    return Json(true);
  });
  add("nbd_export_remove", [](const Params& p) {
    const std::string name = p.str("name");
    p.done();
    rpc::throw_if_error(export_remove(name));
    return Json(true);
  });
  add("nbd_get_exports", [](const Params& p) {
    p.done();
    Json out = Json::array();
    for (const ExportInfo& e : exports()) out.push_back(export_json(e));
    return out;
  });
}

// Exports first (they may exist before the server starts), then the server.
Json save_config() {
  Json out = Json::array();
  for (const ExportInfo& e : exports()) {
    if (!bdev::find(e.bdev)) continue;  // its device was deleted: the export serves nothing
    out.push_back({{"method", "nbd_export_add"},
                   {"params", {{"name", e.name}, {"bdev_name", e.bdev}, {"read_only", e.read_only}}}});
  }
  if (const auto address = server_address()) out.push_back({{"method", "nbd_server_start"}, {"params", address_json(*address)}});
  return out;
}

void shutdown() {
  if (Status st = stop_server(); !st.ok()) log::error("nbd: stopping the server: {}", st.to_string());
  for (const ExportInfo& e : exports())
    if (Status st = export_remove(e.name); !st.ok()) log::error("nbd: removing export {}: {}", e.name, st.to_string());
}

}  // namespace

daemon::Module rpc_module() {
  return daemon::Module{"nbd",
                        [](rpc::Registry& r) {
                          add_methods(r);
                          r.add_subsystem("nbd", save_config);
                        },
                        shutdown};
}

}  // namespace sluice::nbd
