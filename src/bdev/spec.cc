// Device specs: "scheme:target[?key=value&...]", e.g. "malloc:64M?bs=4096",
// "uring:/dev/loop0", "crashsim:malloc:64M".
#include <mutex>

#include <fmt/format.h>

#include "base/number.h"
#include "base/size.h"
#include "bdev/modules.h"
#include "bdev/registry.h"

namespace sluice::bdev {
namespace {

using Factory = Result<std::shared_ptr<Bdev>> (*)(const SpecArgs&);

struct Module {
  std::string_view scheme;
  Factory make;
  bool stacked;  // the target is itself a spec; options belong to the innermost device
};

constexpr Module kModules[] = {
    {"null", make_null_bdev, false},       {"malloc", make_malloc_bdev, false},
    {"uring", make_uring_bdev, false},     {"aio", make_aio_bdev, false},
    {"error", make_error_bdev, true},      {"crashsim", make_crashsim_bdev, true},
};

// Schemes added by layers above (register_scheme); consulted after kModules.
struct ExtraSchemes {
  std::mutex mu;
  std::map<std::string, SchemeFactory, std::less<>> factories;
};

ExtraSchemes& extra_schemes() {
  static ExtraSchemes* s = new ExtraSchemes();  // never destroyed: usable during exit
  return *s;
}

std::string known_schemes() {
  std::string out;
  for (const auto& m : kModules) out += fmt::format("{}{}", out.empty() ? "" : ", ", m.scheme);
  auto& extra = extra_schemes();
  std::lock_guard lock(extra.mu);
  for (auto& [scheme, f] : extra.factories) out += fmt::format(", {}", scheme);
  return out;
}

std::string unused_name(std::string_view scheme) {
  for (int i = 0;; ++i) {
    std::string candidate = fmt::format("{}{}", scheme, i);
    if (!find(candidate)) return candidate;
  }
}

// Rate limits any device takes, with SPDK's names and units (MB = MiB, as SPDK counts):
// removed from the options before the backend sees them.
Result<QosLimits> take_qos_options(SpecArgs& args) {
  QosLimits limits;
  struct Key {
    std::string_view name;
    uint64_t QosLimits::*field;
    uint64_t unit;
  };
  constexpr Key kKeys[] = {{"rw_ios_per_sec", &QosLimits::rw_ios_per_sec, 1},
                           {"rw_mbytes_per_sec", &QosLimits::rw_bytes_per_sec, 1u << 20},
                           {"r_mbytes_per_sec", &QosLimits::r_bytes_per_sec, 1u << 20},
                           {"w_mbytes_per_sec", &QosLimits::w_bytes_per_sec, 1u << 20}};
  for (const Key& k : kKeys) {
    auto it = args.options.find(k.name);
    if (it == args.options.end()) continue;
    auto v = parse_uint(it->second, 0, uint64_t{1} << 40);
    if (!v.ok())
      return Status(v.status().code(), fmt::format("{}: option {}: {}", args.scheme, k.name, v.status().message()));
    limits.*k.field = *v * k.unit;
    args.options.erase(it);
  }
  return limits;
}

}  // namespace

Result<OptionList> parse_options(std::string_view query) {
  OptionList out;
  while (!query.empty()) {
    const std::string_view kv = query.substr(0, query.find('&'));
    query = kv.size() < query.size() ? query.substr(kv.size() + 1) : std::string_view{};
    if (kv.empty()) continue;
    const auto eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0)
      return Status(Errc::invalid_argument, fmt::format("option '{}' is not key=value", kv));
    const std::string_view key = kv.substr(0, eq);
    for (const auto& [k, v] : out)
      if (k == key) return Status(Errc::invalid_argument, fmt::format("option '{}' is given twice", key));
    out.emplace_back(std::string(key), std::string(kv.substr(eq + 1)));
  }
  return out;
}

Result<TargetWithOptions> split_options(std::string_view text) {
  const auto q = text.find('?');
  if (q == std::string_view::npos) return TargetWithOptions{text, {}};
  auto options = parse_options(text.substr(q + 1));
  if (!options.ok()) return options.status();
  return TargetWithOptions{text.substr(0, q), std::move(*options)};
}

Status SpecArgs::check_known(std::initializer_list<std::string_view> keys) const {
  for (auto& [k, v] : options) {
    bool known = false;
    for (auto key : keys) known |= (k == key);
    if (!known) return Status(Errc::invalid_argument, fmt::format("{}: unknown option '{}'", scheme, k));
  }
  return Status::Ok();
}

Result<uint64_t> SpecArgs::size_option(std::string_view key, uint64_t fallback) const {
  auto it = options.find(key);
  if (it == options.end()) return fallback;
  auto v = parse_size(it->second);
  if (!v.ok()) return Status(Errc::invalid_argument, fmt::format("{}: option {}: {}", scheme, key, v.status().message()));
  return v;
}

Status SpecArgs::apply_common(Geometry& g) const {
  auto bs = size_option("bs", g.block_size);
  if (!bs.ok()) return bs.status();
  if (*bs < 512 || *bs > 65536 || (*bs & (*bs - 1)) != 0)
    return Status(Errc::invalid_argument, fmt::format("{}: block size {} is not a power of two in [512, 64K]", scheme, *bs));
  g.block_size = static_cast<uint32_t>(*bs);
  auto qd = size_option("qd", g.queue_depth);
  if (!qd.ok()) return qd.status();
  if (*qd < 1 || *qd > 65536) return Status(Errc::invalid_argument, fmt::format("{}: qd {} out of [1, 65536]", scheme, *qd));
  g.queue_depth = static_cast<uint32_t>(*qd);
  // mt: a maximum transfer below the backend's own, mostly to exercise splitting.
  auto mt = size_option("mt", 0);
  if (!mt.ok()) return mt.status();
  if (*mt != 0) {
    if (*mt % g.block_size != 0)
      return Status(Errc::invalid_argument, fmt::format("{}: mt {} is not a multiple of the block size", scheme, *mt));
    auto blocks = static_cast<uint32_t>(*mt / g.block_size);
    if (g.max_transfer_blocks == 0 || blocks < g.max_transfer_blocks) g.max_transfer_blocks = blocks;
  }
  return Status::Ok();
}

Result<std::string> create(std::string_view spec, std::string_view name) {
  auto colon = spec.find(':');
  if (colon == std::string_view::npos || colon == 0)
    return Status(Errc::invalid_argument,
                  fmt::format("bad device spec '{}': want scheme:target, e.g. malloc:64M or uring:/dev/loop0", spec));
  SpecArgs args;
  args.scheme = std::string(spec.substr(0, colon));
  const Module* module = nullptr;
  for (const auto& m : kModules)
    if (m.scheme == args.scheme) module = &m;
  SchemeFactory extra;
  if (module == nullptr) {
    auto& schemes = extra_schemes();
    std::lock_guard lock(schemes.mu);
    if (auto it = schemes.factories.find(args.scheme); it != schemes.factories.end()) extra = it->second;
  }
  if (module == nullptr && !extra)
    return Status(Errc::invalid_argument, fmt::format("unknown device type '{}' in '{}' (known: {})", args.scheme,
                                                      spec, known_schemes()));
  std::string_view rest = spec.substr(colon + 1);
  if (module != nullptr && !module->stacked) {
    auto split = split_options(rest);
    if (!split.ok()) return Status(split.status().code(), fmt::format("{} in '{}'", split.status().message(), spec));
    rest = split->target;
    args.options.insert(split->options.begin(), split->options.end());
  }
  if (rest.empty()) return Status(Errc::invalid_argument, fmt::format("device spec '{}' has no target", spec));
  auto qos = take_qos_options(args);
  if (!qos.ok()) return qos.status();
  args.target = std::string(rest);
  args.name = name.empty() ? unused_name(args.scheme) : std::string(name);
  auto bdev = module != nullptr ? module->make(args) : extra(args);
  if (!bdev.ok()) return bdev.status();
  if (*qos != QosLimits{}) bdev.value()->set_qos_limits(*qos);
  SLUICE_RETURN_IF_ERROR(register_bdev(bdev.value()));
  return args.name;
}

Status register_scheme(std::string_view scheme, SchemeFactory factory) {
  if (scheme.empty() || scheme.find_first_of(":?/") != std::string_view::npos)
    return Status(Errc::invalid_argument, fmt::format("'{}' cannot be a device spec scheme", scheme));
  if (!factory) return Status(Errc::invalid_argument, fmt::format("scheme {}: no factory", scheme));
  for (const auto& m : kModules)
    if (m.scheme == scheme) return Status(Errc::exists, fmt::format("device type '{}' is built in", scheme));
  auto& schemes = extra_schemes();
  std::lock_guard lock(schemes.mu);
  auto [it, inserted] = schemes.factories.try_emplace(std::string(scheme), std::move(factory));
  if (!inserted) return Status(Errc::exists, fmt::format("device type '{}' is already registered", scheme));
  return Status::Ok();
}

}  // namespace sluice::bdev
