// nvmf_create_transport, nvmf_get_transports, nvmf_create_subsystem, nvmf_delete_subsystem,
// nvmf_subsystem_add_ns / _remove_ns, nvmf_subsystem_add_listener / _remove_listener,
// nvmf_subsystem_add_host / _remove_host, nvmf_subsystem_allow_any_host, nvmf_get_subsystems:
// SPDK's names and parameters. One Target (homed on reactor 0), made by
// nvmf_create_transport; one TCP listening socket per distinct address that some subsystem
// lists, opened by the first nvmf_subsystem_add_listener for it and closed with the last.
#include "target/nvmf_tcp/nvmf_rpc.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "base/log.h"
#include "target/nvmf_tcp/nvmf_tcp.h"
#include "thread/thread.h"

namespace sluice::nvmf {
namespace {

using rpc::Json;
using rpc::Params;
namespace sp = nvme::spec;

constexpr uint32_t kHome = 0;
constexpr auto kTimeout = std::chrono::milliseconds(5000);

struct Service {
  std::mutex mu;  // RPC calls and shutdown
  std::unique_ptr<Target> target;
  Json transport_params;  // what nvmf_create_transport was given, for save_config
  tcp::TransportOptions tcp_options;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<tcp::Transport>> listeners;
};

Service& service() {
  static Service* s = new Service();  // never destroyed: reactors may run during exit
  return *s;
}

Target& need_target(Service& s) {
  if (!s.target) throw rpc::Error{-32603, "no NVMe-oF transport: call nvmf_create_transport first"};
  return *s.target;
}

// Runs fn(target) on the home reactor; its Status becomes the RPC's error.
template <typename F>
void on_home(Service& s, F fn) {
  Target& t = need_target(s);
  rpc::throw_if_error(thread::call_and_wait(
      kHome, [&t, &fn] { return fn(t); }, kTimeout));
}

Result<SubsystemInfo> describe(Service& s, const std::string& nqn) {
  Result<SubsystemInfo> info = Status(Errc::not_found, nqn);
  on_home(s, [&](Target& t) {
    info = t.describe(nqn);
    return Status::Ok();
  });
  return info;
}

std::vector<SubsystemInfo> all_subsystems(Service& s) {
  std::vector<SubsystemInfo> out;
  on_home(s, [&](Target& t) {
    for (const std::string& nqn : t.subsystems())
      if (auto info = t.describe(nqn); info.ok()) out.push_back(std::move(info.value()));
    return Status::Ok();
  });
  return out;
}

uint32_t u32_param(const Params& p, const char* key, uint32_t fallback, uint32_t min, uint32_t max) {
  const uint64_t v = p.u64(key, fallback);
  if (v < min || v > max)
    throw rpc::Error{rpc::kInvalidParams, fmt::format("{} {} is not in {}..{}", key, v, min, max)};
  return static_cast<uint32_t>(v);
}

Listener listener_param(const Params& p) {
  const Json* raw = p.raw("listen_address");
  if (raw == nullptr) throw rpc::Error{rpc::kInvalidParams, "missing listen_address"};
  Params a(*raw);
  std::string trtype = a.str("trtype");
  std::transform(trtype.begin(), trtype.end(), trtype.begin(), ::toupper);
  if (trtype != "TCP") throw rpc::Error{rpc::kInvalidParams, fmt::format("trtype {}: only TCP is served", trtype)};
  std::string adrfam = a.str("adrfam", "IPv4");
  std::transform(adrfam.begin(), adrfam.end(), adrfam.begin(), ::tolower);
  Listener l;
  if (adrfam == "ipv4") {
    l.adrfam = AddressFamily::ipv4;
  } else if (adrfam == "ipv6") {
    l.adrfam = AddressFamily::ipv6;
  } else {
    throw rpc::Error{rpc::kInvalidParams, fmt::format("adrfam {}: IPv4 or IPv6", adrfam)};
  }
  l.traddr = a.str("traddr");
  l.trsvcid = a.str("trsvcid");
  a.done();
  return l;
}

Json listener_json(const Listener& l) {
  return Json{{"trtype", "TCP"},
              {"adrfam", l.adrfam == AddressFamily::ipv6 ? "IPv6" : "IPv4"},
              {"traddr", l.traddr},
              {"trsvcid", l.trsvcid}};
}

// The listening socket for `l`, opened now if no subsystem had it yet.
void open_listener(Service& s, const Listener& l) {
  const auto key = std::make_pair(l.traddr, l.trsvcid);
  if (s.listeners.count(key) != 0) return;
  char* end = nullptr;
  const unsigned long port = std::strtoul(l.trsvcid.c_str(), &end, 10);
  if (l.trsvcid.empty() || *end != '\0' || port > 65535)
    throw rpc::Error{rpc::kInvalidParams, fmt::format("trsvcid {} is not a TCP port", l.trsvcid)};
  auto t = tcp::Transport::listen(*s.target, net::ListenAddress::tcp_address(l.traddr, static_cast<uint16_t>(port)),
                                  s.tcp_options);
  rpc::throw_if_error(t.status());
  s.listeners.emplace(key, std::move(t.value()));
}

// Closes listening sockets that no subsystem lists any more.
void close_unused_listeners(Service& s) {
  const std::vector<SubsystemInfo> subsystems = all_subsystems(s);
  for (auto it = s.listeners.begin(); it != s.listeners.end();) {
    const bool used = std::any_of(subsystems.begin(), subsystems.end(), [&](const SubsystemInfo& i) {
      return std::any_of(i.listeners.begin(), i.listeners.end(), [&](const Listener& l) {
        return l.traddr == it->first.first && l.trsvcid == it->first.second;
      });
    });
    it = used ? std::next(it) : s.listeners.erase(it);
  }
}

Json subsystem_json(const SubsystemInfo& i) {
  Json listen = Json::array(), hosts = Json::array(), namespaces = Json::array();
  for (const Listener& l : i.listeners) listen.push_back(listener_json(l));
  for (const std::string& h : i.hosts) hosts.push_back(Json{{"nqn", h}});
  for (const auto& ns : i.namespaces)
    namespaces.push_back(Json{{"nsid", ns.nsid}, {"bdev_name", ns.bdev}, {"name", ns.bdev}});
  Json out{{"nqn", i.nqn},
           {"subtype", i.discovery ? "Discovery" : "NVMe"},
           {"listen_addresses", listen},
           {"allow_any_host", i.allow_any_host},
           {"hosts", hosts}};
  if (!i.discovery) {
    out["serial_number"] = i.serial;
    out["model_number"] = i.model;
    out["max_namespaces"] = i.max_namespaces;
    out["namespaces"] = namespaces;
  }
  return out;
}

// The common shape of a method: its parameters read, then one control-path call on the home
// reactor.
Json call_home(const Params& p, const std::function<Status(Target&)>& op) {
  p.raw("tgt_name");  // SPDK's name for one of several targets: there is one
  p.done();
  Service& s = service();
  std::lock_guard lock(s.mu);
  on_home(s, op);
  return Json(true);
}

void add_methods(rpc::Registry& r) {
  auto add = [&r](const char* name, rpc::Handler h) { (void)r.add(name, std::move(h)); };
  add("nvmf_create_transport", [](const Params& p) {
    Service& s = service();
    std::lock_guard lock(s.mu);
    std::string trtype = p.str("trtype");
    std::transform(trtype.begin(), trtype.end(), trtype.begin(), ::toupper);
    if (trtype != "TCP") throw rpc::Error{rpc::kInvalidParams, fmt::format("trtype {}: only TCP is served", trtype)};
    TargetOptions o;
    o.home_reactor = kHome;
    o.max_queue_depth = static_cast<uint16_t>(u32_param(p, "max_queue_depth", 128, 2, 1024));
    o.max_io_queues = static_cast<uint16_t>(u32_param(p, "max_io_qpairs_per_ctrlr", 64, 1, 1024));
    o.in_capsule_data_bytes = u32_param(p, "in_capsule_data_size", 8192, 0, 65536);
    o.max_io_bytes = u32_param(p, "max_io_size", 128 << 10, 4096, 1 << 20);
    if ((o.max_io_bytes & (o.max_io_bytes - 1)) != 0)
      throw rpc::Error{rpc::kInvalidParams, fmt::format("max_io_size {} is not a power of two", o.max_io_bytes)};
    if (o.in_capsule_data_bytes % 16 != 0)
      throw rpc::Error{rpc::kInvalidParams, "in_capsule_data_size must be a multiple of 16"};
    tcp::TransportOptions t;
    t.max_h2c_data = u32_param(p, "io_unit_size", 128 << 10, 4096, 1 << 20);  // MAXH2CDATA
    if (t.max_h2c_data % 4 != 0) throw rpc::Error{rpc::kInvalidParams, "io_unit_size must be a multiple of 4"};
    // SPDK's knobs for its shared buffer pools, zero-copy and the like: Sluice sizes those
    // itself, so they are accepted and ignored.
    for (const char* k : {"max_aq_depth", "num_shared_buffers", "buf_cache_size", "c2h_success", "dif_insert_or_strip",
                          "sock_priority", "abort_timeout_sec", "zcopy", "ack_timeout", "data_wr_pool_size"})
      p.raw(k);
    p.done();
    if (s.target) throw rpc::Error{-17, "the TCP transport exists"};
    auto target = std::make_unique<Target>(o);
    s.target = std::move(target);
    s.tcp_options = t;
    s.transport_params = Json{{"trtype", "TCP"},
                              {"max_queue_depth", o.max_queue_depth},
                              {"max_io_qpairs_per_ctrlr", o.max_io_queues},
                              {"in_capsule_data_size", o.in_capsule_data_bytes},
                              {"max_io_size", o.max_io_bytes},
                              {"io_unit_size", t.max_h2c_data}};
    return Json(true);
  });
  add("nvmf_get_transports", [](const Params& p) {
    p.raw("trtype");
    p.done();
    Service& s = service();
    std::lock_guard lock(s.mu);
    Json out = Json::array();
    if (s.target) out.push_back(s.transport_params);
    return out;
  });
  add("nvmf_create_subsystem", [](const Params& p) {
    SubsystemOptions o;
    o.nqn = p.str("nqn");
    o.serial = p.str("serial_number", "SLUICE0000000000");
    o.model = p.str("model_number", "Sluice NVMe-oF");
    o.allow_any_host = p.flag("allow_any_host", false);
    o.max_namespaces = u32_param(p, "max_namespaces", 32, 1, 1024);
    for (const char* k : {"ana_reporting", "min_cntlid", "max_cntlid"}) p.raw(k);
    return call_home(p, [&](Target& t) { return t.add_subsystem(o); });
  });
  add("nvmf_delete_subsystem", [](const Params& p) {
    const std::string nqn = p.str("nqn");
    p.raw("tgt_name");
    p.done();
    if (nqn == sp::kDiscoveryNqn) throw rpc::Error{rpc::kInvalidParams, "the discovery subsystem stays"};
    Service& s = service();
    std::lock_guard lock(s.mu);
    on_home(s, [&](Target& t) { return t.remove_subsystem(nqn); });
    close_unused_listeners(s);
    return Json(true);
  });
  add("nvmf_subsystem_add_ns", [](const Params& p) {
    const std::string nqn = p.str("nqn");
    const Json* raw = p.raw("namespace");
    if (raw == nullptr) throw rpc::Error{rpc::kInvalidParams, "missing namespace"};
    p.raw("tgt_name");
    p.done();
    Params n(*raw);
    NamespaceOptions o;
    o.bdev = n.str("bdev_name");
    o.nsid = static_cast<uint32_t>(n.u64("nsid", 0));
    for (const char* k : {"uuid", "nguid", "eui64", "ptpl_file", "anagrpid"}) n.raw(k);  // derived from the bdev
    n.done();
    Service& s = service();
    std::lock_guard lock(s.mu);
    uint32_t nsid = 0;
    on_home(s, [&](Target& t) {
      auto added = t.add_namespace(nqn, o);
      if (added.ok()) nsid = added.value();
      return added.status();
    });
    return Json(nsid);
  });
  add("nvmf_subsystem_remove_ns", [](const Params& p) {
    const std::string nqn = p.str("nqn");
    const uint64_t nsid = p.u64("nsid");
    return call_home(p, [&](Target& t) { return t.remove_namespace(nqn, static_cast<uint32_t>(nsid)); });
  });
  add("nvmf_subsystem_add_listener", [](const Params& p) {
    const std::string nqn = p.str("nqn");
    const Listener l = listener_param(p);
    p.raw("tgt_name");
    p.done();
    Service& s = service();
    std::lock_guard lock(s.mu);
    need_target(s);
    if (!describe(s, nqn).ok()) throw rpc::Error{-19, fmt::format("no subsystem {}", nqn)};
    open_listener(s, l);
    on_home(s, [&](Target& t) { return t.add_listener(nqn, l); });
    return Json(true);
  });
  add("nvmf_subsystem_remove_listener", [](const Params& p) {
    const std::string nqn = p.str("nqn");
    const Listener l = listener_param(p);
    p.raw("tgt_name");
    p.done();
    Service& s = service();
    std::lock_guard lock(s.mu);
    on_home(s, [&](Target& t) { return t.remove_listener(nqn, l); });
    close_unused_listeners(s);
    return Json(true);
  });
  add("nvmf_subsystem_add_host", [](const Params& p) {
    const std::string nqn = p.str("nqn"), host = p.str("host");
    return call_home(p, [&](Target& t) { return t.add_host(nqn, host); });
  });
  add("nvmf_subsystem_remove_host", [](const Params& p) {
    const std::string nqn = p.str("nqn"), host = p.str("host");
    return call_home(p, [&](Target& t) { return t.remove_host(nqn, host); });
  });
  add("nvmf_subsystem_allow_any_host", [](const Params& p) {
    const std::string nqn = p.str("nqn");
    const bool allow = p.flag("allow_any_host", false);
    return call_home(p, [&](Target& t) { return t.set_allow_any_host(nqn, allow); });
  });
  add("nvmf_get_subsystems", [](const Params& p) {
    const std::string nqn = p.str("nqn", "");
    p.raw("tgt_name");
    p.done();
    Service& s = service();
    std::lock_guard lock(s.mu);
    Json out = Json::array();
    if (!s.target) return out;
    for (const SubsystemInfo& i : all_subsystems(s))
      if (nqn.empty() || i.nqn == nqn) out.push_back(subsystem_json(i));
    if (!nqn.empty() && out.empty()) throw rpc::Error{-19, fmt::format("no subsystem {}", nqn)};
    return out;
  });
}

// The transport, then each subsystem with its hosts, namespaces and listeners.
Json save_config() {
  Service& s = service();
  std::lock_guard lock(s.mu);
  Json out = Json::array();
  if (!s.target) return out;
  out.push_back({{"method", "nvmf_create_transport"}, {"params", s.transport_params}});
  for (const SubsystemInfo& i : all_subsystems(s)) {
    if (i.discovery) continue;
    out.push_back({{"method", "nvmf_create_subsystem"},
                   {"params",
                    {{"nqn", i.nqn},
                     {"serial_number", i.serial},
                     {"model_number", i.model},
                     {"allow_any_host", i.allow_any_host},
                     {"max_namespaces", i.max_namespaces}}}});
    for (const std::string& h : i.hosts)
      out.push_back({{"method", "nvmf_subsystem_add_host"}, {"params", {{"nqn", i.nqn}, {"host", h}}}});
    for (const auto& ns : i.namespaces)
      out.push_back({{"method", "nvmf_subsystem_add_ns"},
                     {"params", {{"nqn", i.nqn}, {"namespace", {{"bdev_name", ns.bdev}, {"nsid", ns.nsid}}}}}});
    for (const Listener& l : i.listeners)
      out.push_back({{"method", "nvmf_subsystem_add_listener"},
                     {"params", {{"nqn", i.nqn}, {"listen_address", listener_json(l)}}}});
  }
  return out;
}

void shutdown() {
  Service& s = service();
  std::lock_guard lock(s.mu);
  s.listeners.clear();  // closes every connection first
  if (!s.target) return;
  Target* t = s.target.release();
  Status st = thread::call_and_wait(
      kHome,
      [t] {
        delete t;
        return Status::Ok();
      },
      kTimeout);
  if (!st.ok()) log::error("nvmf: stopping the target: {}", st.to_string());
}

}  // namespace

daemon::Module rpc_module() {
  return daemon::Module{"nvmf",
                        [](rpc::Registry& r) {
                          add_methods(r);
                          r.add_subsystem("nvmf", save_config);
                        },
                        shutdown};
}

}  // namespace sluice::nvmf
