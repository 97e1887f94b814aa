// The bdev RPC methods, with SPDK's names and parameters. Each create call is remembered
// (method and params) for save_config, which replays exactly what made the device.

#include <fmt/format.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/size.h"
#include "bdev/bdev.h"
#include "bdev/error_inject.h"
#include "daemon/created_bdevs.h"
#include "daemon/daemon.h"

namespace sluice::daemon {
namespace {

using rpc::Json;
using rpc::Params;

// A path or name goes into a device spec: its separators would change the spec's meaning.
std::string spec_safe(const std::string& value, std::string_view what) {
  if (value.empty() || value.find_first_of("?&") != std::string::npos)
    throw rpc::Error{rpc::kInvalidParams, fmt::format("'{}' must be non-empty and must not contain '?' or '&'", what)};
  return value;
}

uint32_t block_size_param(const Params& p, uint64_t fallback) {
  const uint64_t bs = p.u64("block_size", fallback);
  if (bs < 512 || bs > 65536 || (bs & (bs - 1)) != 0)
    throw rpc::Error{rpc::kInvalidParams, fmt::format("block_size {} is not a power of two in [512, 65536]", bs)};
  return static_cast<uint32_t>(bs);
}

std::string create_device(const std::string& spec, const std::string& name, const std::string& method, Json params) {
  auto made = bdev::create(spec, name);
  rpc::throw_if_error(made.status());
  if (name.empty()) params["name"] = *made;  // save_config recreates it under the same name
  remember({*made}, method, std::move(params));
  examine(*made);
  return *made;
}

// The parameters spdk_tgt's save_config writes for features Sluice does not have
// (end-to-end protection, separate metadata): accepted at the value that means "none", so
// that SPDK's configs load unchanged, and refused with a reason at any other.
void spdk_feature_params(const Params& p) {
  for (const char* key : {"md_size", "dif_type", "dif_pi_format"}) {
    if (p.raw(key) != nullptr && p.u64(key) != 0)
      throw rpc::Error{rpc::kInvalidParams, fmt::format("{}: Sluice devices have no metadata or protection information", key)};
  }
  for (const char* key : {"md_interleave", "dif_is_head_of_md"}) {
    if (p.raw(key) != nullptr && p.flag(key, false))
      throw rpc::Error{rpc::kInvalidParams, fmt::format("{}: Sluice devices have no metadata or protection information", key)};
  }
}

Json sized_create(const Params& p, std::string_view scheme, const char* method, uint64_t default_bs) {
  const std::string name = p.str("name", "");
  const uint64_t num_blocks = p.u64("num_blocks");
  const uint32_t bs = block_size_param(p, default_bs);
  p.raw("uuid");  // accepted for SPDK configs; Sluice names devices, it does not give them UUIDs
  p.raw("optimal_io_boundary");  // a splitting hint; Sluice splits at the device's own limits
  const uint64_t physical = p.u64("physical_block_size", 0);
  if (physical != 0 && physical != bs)
    throw rpc::Error{rpc::kInvalidParams, fmt::format("physical_block_size {} differs from block_size {}", physical, bs)};
  spdk_feature_params(p);
  p.done();
  if (num_blocks == 0 || num_blocks > (uint64_t{1} << 50) / bs)
    throw rpc::Error{rpc::kInvalidParams, fmt::format("num_blocks {} is out of range", num_blocks)};
  if (!name.empty()) spec_safe(name, "name");
  Json params{{"num_blocks", num_blocks}, {"block_size", bs}};
  if (!name.empty()) params["name"] = name;
  return create_device(fmt::format("{}:{}?bs={}", scheme, num_blocks * bs, bs), name, method, std::move(params));
}

Json file_create(const Params& p, std::string_view scheme, const char* method) {
  const std::string name = spec_safe(p.str("name"), "name");
  const std::string filename = spec_safe(p.str("filename"), "filename");
  const uint64_t bs = p.u64("block_size", 0);
  p.raw("uuid");
  if (p.flag("readonly", false))  // aio's option: serve it read-only through an export instead
    throw rpc::Error{rpc::kInvalidParams, "readonly: export the device read-only instead (nbd_export_add read_only)"};
  p.raw("fallocate");  // aio's hint for thin files; Sluice leaves allocation to the file system
  p.done();
  Json params{{"name", name}, {"filename", filename}};
  std::string spec = fmt::format("{}:{}", scheme, filename);
  if (bs != 0) {
    spec += fmt::format("?bs={}", block_size_param(p, bs));
    params["block_size"] = bs;
  }
  return create_device(spec, name, method, std::move(params));
}

Json delete_device(const Params& p, std::string_view scheme) {
  const std::string name = p.str("name");
  p.done();
  auto dev = bdev::find(name);
  if (!dev) throw rpc::Error{-19, fmt::format("no bdev named {}", name)};
  if (!dev->spec().starts_with(fmt::format("{}:", scheme)))
    throw rpc::Error{rpc::kInvalidParams, fmt::format("bdev {} is not a {} bdev (it is {})", name, scheme, dev->spec())};
  rpc::throw_if_error(bdev::unregister(name));
  forget(name);
  return true;
}

Json io_types(const bdev::Geometry& g) {
  Json t = Json::object();
  for (int i = 0; i < bdev::kIoTypes; ++i) {
    const auto type = static_cast<bdev::IoType>(i);
    t[std::string(bdev::io_type_name(type))] = g.supports(type);
  }
  return t;
}

// SPDK's units: I/Os per second, and MB (MiB) per second for the byte limits.
Json rate_limits(const bdev::QosLimits& l) {
  return Json{{"rw_ios_per_sec", l.rw_ios_per_sec},
              {"rw_mbytes_per_sec", l.rw_bytes_per_sec / kMiB},
              {"r_mbytes_per_sec", l.r_bytes_per_sec / kMiB},
              {"w_mbytes_per_sec", l.w_bytes_per_sec / kMiB}};
}

Json set_qos_limit(const Params& p) {
  const std::string name = p.str("name");
  auto dev = bdev::find(name);
  if (!dev) throw rpc::Error{-19, fmt::format("no bdev named {}", name)};
  bdev::QosLimits l = dev->qos_limits();
  bool any = false;
  auto field = [&](const char* key, uint64_t bdev::QosLimits::*f, uint64_t unit) {
    if (p.raw(key) == nullptr) return;  // absent: unchanged, as in SPDK
    const uint64_t v = p.u64(key);
    if (v > (uint64_t{1} << 40) / unit) throw rpc::Error{rpc::kInvalidParams, fmt::format("{} {} is out of range", key, v)};
    l.*f = v * unit;
    any = true;
  };
  field("rw_ios_per_sec", &bdev::QosLimits::rw_ios_per_sec, 1);
  field("rw_mbytes_per_sec", &bdev::QosLimits::rw_bytes_per_sec, kMiB);
  field("r_mbytes_per_sec", &bdev::QosLimits::r_bytes_per_sec, kMiB);
  field("w_mbytes_per_sec", &bdev::QosLimits::w_bytes_per_sec, kMiB);
  p.done();
  if (!any)
    throw rpc::Error{rpc::kInvalidParams,
                     "give at least one of rw_ios_per_sec, rw_mbytes_per_sec, r_mbytes_per_sec, w_mbytes_per_sec"};
  dev->set_qos_limits(l);
  return true;
}

Json describe(const bdev::Bdev& dev) {
  const bdev::Geometry& g = dev.geometry();
  const std::string spec = dev.spec();
  return Json{{"name", dev.name()},
              {"aliases", Json::array()},
              {"product_name", spec.substr(0, spec.find(':'))},
              {"block_size", g.block_size},
              {"num_blocks", g.num_blocks},
              {"supported_io_types", io_types(g)},
              {"assigned_rate_limits", rate_limits(dev.qos_limits())},
              {"driver_specific", {{"sluice", {{"spec", spec}, {"queue_depth", g.queue_depth}}}}}};
}

std::vector<std::shared_ptr<bdev::Bdev>> selected(const Params& p) {
  const std::string name = p.str("name", "");
  p.raw("timeout");  // SPDK waits this long for the bdev to appear; Sluice's exist or not
  p.done();
  std::vector<std::shared_ptr<bdev::Bdev>> out;
  if (!name.empty()) {
    auto dev = bdev::find(name);
    if (!dev) throw rpc::Error{-19, fmt::format("no bdev named {}", name)};
    out.push_back(std::move(dev));
    return out;
  }
  for (const std::string& n : bdev::list())
    if (auto dev = bdev::find(n)) out.push_back(std::move(dev));
  return out;
}

Json iostat(const bdev::Bdev& dev) {
  const bdev::IoStats s = dev.stats();
  auto op = [&](bdev::IoType t) -> const bdev::OpStats& { return s.by_type[static_cast<int>(t)]; };
  auto latency = [&](bdev::IoType t) {
    const auto& h = op(t).latency_ticks;
    return static_cast<uint64_t>(h.mean() * static_cast<double>(h.count()));
  };
  return Json{{"name", dev.name()},
              {"bytes_read", op(bdev::IoType::read).bytes.get()},
              {"num_read_ops", op(bdev::IoType::read).ops.get()},
              {"bytes_written", op(bdev::IoType::write).bytes.get()},
              {"num_write_ops", op(bdev::IoType::write).ops.get()},
              {"bytes_unmapped", op(bdev::IoType::unmap).bytes.get()},
              {"num_unmap_ops", op(bdev::IoType::unmap).ops.get()},
              {"num_flush_ops", op(bdev::IoType::flush).ops.get()},
              {"read_latency_ticks", latency(bdev::IoType::read)},
              {"write_latency_ticks", latency(bdev::IoType::write)},
              {"unmap_latency_ticks", latency(bdev::IoType::unmap)},
              {"io_errors", [&] {
                 uint64_t e = 0;
                 for (const auto& o : s.by_type) e += o.errors.get();
                 return e;
               }()}};
}

bdev::IoType io_type_param(const std::string& name) {
  for (int i = 0; i < bdev::kIoTypes; ++i)
    if (bdev::io_type_name(static_cast<bdev::IoType>(i)) == name) return static_cast<bdev::IoType>(i);
  throw rpc::Error{rpc::kInvalidParams, fmt::format("unknown io_type '{}' (read, write, flush, unmap, write_zeroes, reset or all)", name)};
}

void add_bdev_methods(rpc::Registry& r) {
  auto add = [&r](const char* name, rpc::Handler h) { (void)r.add(name, std::move(h)); };
  add("bdev_malloc_create", [](const Params& p) { return sized_create(p, "malloc", "bdev_malloc_create", 512); });
  add("bdev_malloc_delete", [](const Params& p) { return delete_device(p, "malloc"); });
  add("bdev_null_create", [](const Params& p) { return sized_create(p, "null", "bdev_null_create", 512); });
  add("bdev_null_delete", [](const Params& p) { return delete_device(p, "null"); });
  add("bdev_uring_create", [](const Params& p) { return file_create(p, "uring", "bdev_uring_create"); });
  add("bdev_uring_delete", [](const Params& p) { return delete_device(p, "uring"); });
  add("bdev_aio_create", [](const Params& p) { return file_create(p, "aio", "bdev_aio_create"); });
  add("bdev_aio_delete", [](const Params& p) { return delete_device(p, "aio"); });
  add("bdev_get_bdevs", [](const Params& p) {
    Json out = Json::array();
    for (const auto& dev : selected(p)) out.push_back(describe(*dev));
    return out;
  });
  add("bdev_get_iostat", [](const Params& p) {
    Json bdevs = Json::array();
    for (const auto& dev : selected(p)) bdevs.push_back(iostat(*dev));
    return Json{{"tick_rate", static_cast<uint64_t>(clock::ticks_per_second())},
                {"ticks", clock::ticks()},
                {"bdevs", std::move(bdevs)}};
  });
  add("bdev_set_qos_limit", set_qos_limit);
  // SPDK configs end the bdev subsystem with this; Sluice's examine runs inside the create
  // call, so by the time this runs it has finished.
  add("bdev_wait_for_examine", [](const Params& p) {
    p.done();
    return Json(true);
  });
  add_nvme_methods(r);
  add("bdev_error_create", [](const Params& p) {
    const std::string base = p.str("base_name");
    p.raw("uuid");
    p.done();
    const std::string name = "EE_" + base;  // SPDK's naming, which its users' configs expect
    auto inj = bdev::ErrorInjector::stack(base, name);
    rpc::throw_if_error(inj.status());
    remember({name}, "bdev_error_create", Json{{"base_name", base}});
    return Json(name);
  });
  add("bdev_error_delete", [](const Params& p) { return delete_device(p, "error"); });
  add("bdev_error_inject_error", [](const Params& p) {
    const std::string name = p.str("name");
    const std::string type = p.str("io_type");
    const std::string error = p.str("error_type");
    const uint64_t num = p.u64("num", 1);
    p.done();
    auto inj = bdev::ErrorInjector::find(name);
    rpc::throw_if_error(inj.status());
    if (error != "failure" && error != "pending")
      throw rpc::Error{rpc::kInvalidParams, fmt::format("error_type '{}': Sluice injects 'failure'", error)};
    if (error == "pending")
      throw rpc::Error{rpc::kInvalidParams, "error_type 'pending' (requests that never complete) is not supported"};
    const uint32_t types = type == "all" ? bdev::kAllIoTypes : bdev::io_bit(io_type_param(type));
    rpc::throw_if_error(inj->set_rule(bdev::ErrorRule::next(types, num)));
    return Json(true);
  });
}

// From the calling (non-reactor) thread: a channel of its own, one FLUSH, waited for.
Status flush_device(const std::string& name) {
  auto desc = bdev::open(name, {.write = true});
  if (!desc.ok()) return desc.status();
  auto ch = (*desc)->get_channel();
  if (!ch.ok()) return ch.status();
  Status st = bdev::SyncIo{**desc, *ch}.flush();
  Status put = (*desc)->put_channel(*ch);
  return st.ok() ? put : st;
}

Json bdev_config() {
  Json out = created_calls();
  // Limits after every device exists: a limit belongs to the device, however it was made.
  for (const std::string& name : created_names()) {
    auto dev = bdev::find(name);
    if (!dev || dev->qos_limits() == bdev::QosLimits{}) continue;
    Json params = rate_limits(dev->qos_limits());
    params["name"] = name;
    out.push_back({{"method", "bdev_set_qos_limit"}, {"params", std::move(params)}});
  }
  return out;
}

}  // namespace

Module bdev_module() {
  return Module{"bdev", [](rpc::Registry& r) {
                  add_bdev_methods(r);
                  r.add_subsystem("bdev", bdev_config);
                },
                nullptr};
}

void delete_created_bdevs() {
  const std::vector<std::string> names = created_names();
  forget_all();
  // Stacked devices were created after their bases: delete them first.
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    auto dev = bdev::find(*it);
    if (!dev) continue;
    if (dev->stats().by_type[static_cast<int>(bdev::IoType::write)].ops.get() > 0 &&
        dev->geometry().supports(bdev::IoType::flush)) {
      Status st = flush_device(*it);
      if (!st.ok()) log::error("serve: flushing bdev {} at shutdown failed: {}", *it, st.to_string());
    }
    (void)bdev::unregister(*it);
  }
}

}  // namespace sluice::daemon
