// `sluice nvme`: the userspace NVMe driver from the command line.
//
//   sluice nvme list                  NVMe functions in sysfs, their drivers and whether
//                                     Sluice can drive them (bound to vfio-pci/uio_pci_generic)
//   sluice nvme identify BDF          controller and namespaces (Identify)
//   sluice nvme smart-log BDF         SMART / health log and recent error log entries
//   sluice nvme perf BDF[/NSID]       one queue pair at a fixed depth: IOPS, latency, CPU/IO
//
// Each accepts --json. The devices must be bound for userspace first (`sluice setup`).
// Tests drive all of it without NVMe through sluice_model_cli (tests/integration/), this CLI
// with the software controller model linked in; the shipped binary has no model.
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/number.h"
#include "base/size.h"
#include "commands.h"
#include "nvme/discovery.h"
#include "nvme/fabrics_device.h"
#include "nvme/nvme.h"
#include "perf/nvme_perf.h"
#include "perf/stop_signal.h"

namespace sluice::cli {
namespace {

constexpr std::string_view kNvmeCmd = "nvme";

struct NvmeArgs {
  std::string target;
  std::string sysfs_root = "/sys";
  bool json = false;
  uint32_t nsid = 0xffffffff;
  NvmePerfOptions perf;
  std::string io_size = "4k";
  std::string hostnqn;  // discover
};

std::string version_text(uint32_t vs) { return fmt::format("{}.{}.{}", vs >> 16, (vs >> 8) & 0xff, vs & 0xff); }

Result<std::shared_ptr<nvme::Controller>> open_controller(const NvmeArgs& args, std::string_view bdf) {
  nvme::ControllerOptions o;
  o.sysfs_root = args.sysfs_root;
  return nvme::Controller::open(bdf, o);
}

int run_list(const NvmeArgs& args) {
  auto functions = nvme::list_nvme_functions(args.sysfs_root);
  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& f : functions)
      out.push_back({{"bdf", f.bdf},
                     {"vendor", fmt::format("{:04x}", f.vendor)},
                     {"device", fmt::format("{:04x}", f.device)},
                     {"driver", f.driver},
                     {"numa_node", f.numa_node},
                     {"userspace", f.driver == "vfio-pci" || f.driver == "uio_pci_generic"}});
    print_json(out);
    return kExitOk;
  }
  if (functions.empty()) {
    fmt::print("no NVMe controllers (PCI class 010802) under {}/bus/pci/devices\n", args.sysfs_root);
    return kExitOk;
  }
  fmt::print("{:<14} {:<11} {:<17} {}\n", "BDF", "VENDOR:DEV", "DRIVER", "SLUICE");
  for (const auto& f : functions) {
    const bool user = f.driver == "vfio-pci" || f.driver == "uio_pci_generic";
    fmt::print("{:<14} {:04x}:{:04x}   {:<17} {}\n", f.bdf, f.vendor, f.device, f.driver.empty() ? "(none)" : f.driver,
               user ? "ready: nvme:" + f.bdf : std::string("bind with `sluice setup`"));
  }
  return kExitOk;
}

int run_identify(const NvmeArgs& args) {
  auto ctrl = open_controller(args, args.target);
  if (!ctrl.ok()) return fail(kNvmeCmd, exit_code_for(ctrl.status()), ctrl.status().message());
  const nvme::ControllerInfo& i = (*ctrl)->info();
  auto namespaces = (*ctrl)->namespaces();
  if (args.json) {
    nlohmann::json ns = nlohmann::json::array();
    for (const auto& n : namespaces)
      ns.push_back({{"nsid", n.nsid},
                    {"spec", fmt::format("nvme:{}/{}", i.bdf, n.nsid)},
                    {"blocks", n.size_blocks},
                    {"block_size", n.block_size},
                    {"size_bytes", n.size_blocks * n.block_size},
                    {"metadata_size", n.metadata_size},
                    {"deallocate_reads_zeroes", n.deallocate_reads_zeroes}});
    print_json({{"bdf", i.bdf},
                {"transport", i.transport},
                {"vendor", fmt::format("{:04x}", i.vid)},
                {"subsystem_vendor", fmt::format("{:04x}", i.ssvid)},
                {"serial", i.serial},
                {"model", i.model},
                {"firmware", i.firmware},
                {"subnqn", i.subnqn},
                {"version", version_text(i.version)},
                {"controller_id", i.cntlid},
                {"max_transfer_bytes", i.max_transfer_bytes},
                {"max_queue_entries", i.max_queue_entries},
                {"io_queues", i.io_queues},
                {"namespace_count", i.namespace_count},
                {"volatile_write_cache", i.volatile_write_cache},
                {"dataset_management", i.supports_dsm},
                {"write_zeroes", i.supports_write_zeroes},
                {"sgl_support", i.sgls != 0},
                {"namespaces", ns}});
    return kExitOk;
  }
  fmt::print("controller {} ({})\n", i.bdf, i.transport);
  fmt::print("  model           {}\n  serial          {}\n  firmware        {}\n", i.model, i.serial, i.firmware);
  fmt::print("  vendor          {:04x} (subsystem {:04x})\n  NVMe version    {}\n", i.vid, i.ssvid, version_text(i.version));
  fmt::print("  subsystem NQN   {}\n  controller id   {}\n", i.subnqn, i.cntlid);
  fmt::print("  max transfer    {}\n  queue entries   {} max, {} I/O queues\n", format_size(i.max_transfer_bytes),
             i.max_queue_entries, i.io_queues);
  fmt::print("  write cache     {}\n  optional cmds   {}{}\n", i.volatile_write_cache ? "volatile (flush matters)" : "none",
             i.supports_dsm ? "dataset-management " : "", i.supports_write_zeroes ? "write-zeroes" : "");
  for (const auto& n : namespaces)
    fmt::print("namespace {}: {} blocks of {} B = {}; spec nvme:{}/{}\n", n.nsid, n.size_blocks, n.block_size,
               format_size(n.size_blocks * n.block_size), i.bdf, n.nsid);
  return kExitOk;
}

int run_smart_log(const NvmeArgs& args) {
  auto ctrl = open_controller(args, args.target);
  if (!ctrl.ok()) return fail(kNvmeCmd, exit_code_for(ctrl.status()), ctrl.status().message());
  auto smart = (*ctrl)->smart_log(args.nsid);
  if (!smart.ok()) return fail(kNvmeCmd, exit_code_for(smart.status()), smart.status().message());
  auto errors = (*ctrl)->error_log(16);
  const nvme::SmartLog& s = *smart;
  if (args.json) {
    nlohmann::json errs = nlohmann::json::array();
    if (errors.ok())
      for (const auto& e : *errors)
        errs.push_back({{"error_count", e.error_count}, {"sqid", e.sqid}, {"cid", e.cid}, {"lba", e.lba}, {"nsid", e.nsid},
                        {"status", nvme::status_text(e.status)}});
    print_json({{"bdf", (*ctrl)->info().bdf},
                {"critical_warning", s.critical_warning},
                {"temperature_celsius", static_cast<int>(s.temperature_kelvin) - 273},
                {"available_spare_percent", s.available_spare},
                {"spare_threshold_percent", s.spare_threshold},
                {"percent_used", s.percent_used},
                {"data_units_read", s.data_units_read},
                {"data_units_written", s.data_units_written},
                {"host_reads", s.host_reads},
                {"host_writes", s.host_writes},
                {"busy_minutes", s.busy_minutes},
                {"power_cycles", s.power_cycles},
                {"power_on_hours", s.power_on_hours},
                {"unsafe_shutdowns", s.unsafe_shutdowns},
                {"media_errors", s.media_errors},
                {"error_log_entries", s.error_log_entries},
                {"errors", errs}});
    return kExitOk;
  }
  fmt::print("SMART / health log of {}\n", (*ctrl)->info().bdf);
  fmt::print("  critical warning    {:#04x}\n  temperature         {} C\n", s.critical_warning,
             static_cast<int>(s.temperature_kelvin) - 273);
  fmt::print("  available spare     {}% (threshold {}%)\n  percentage used     {}%\n", s.available_spare,
             s.spare_threshold, s.percent_used);
  fmt::print("  data units read     {} ({} of 512 kB)\n  data units written  {}\n", s.data_units_read,
             format_size(s.data_units_read * 512000), s.data_units_written);
  fmt::print("  host reads          {}\n  host writes         {}\n  busy time           {} min\n", s.host_reads,
             s.host_writes, s.busy_minutes);
  fmt::print("  power cycles        {}\n  power-on hours      {}\n  unsafe shutdowns    {}\n", s.power_cycles,
             s.power_on_hours, s.unsafe_shutdowns);
  fmt::print("  media errors        {}\n  error log entries   {}\n", s.media_errors, s.error_log_entries);
  if (errors.ok())
    for (const auto& e : *errors)
      fmt::print("  error #{}: SQ {} CID {} NSID {} LBA {}: {}\n", e.error_count, e.sqid, e.cid, e.nsid, e.lba,
                 nvme::status_text(e.status));
  return kExitOk;
}

int run_perf(NvmeArgs& args) {
  std::string bdf = args.target;
  if (auto slash = bdf.find('/'); slash != std::string::npos) {
    auto nsid = parse_uint(std::string_view(bdf).substr(slash + 1), 1, 0xfffffffe);
    if (!nsid.ok())
      return fail(kNvmeCmd, kExitUsage, fmt::format("'{}' names no namespace: {}", args.target, nsid.status().message()));
    args.perf.nsid = static_cast<uint32_t>(*nsid);
    bdf.resize(slash);
  }
  auto size = parse_size(args.io_size);
  if (!size.ok() || *size == 0 || *size > (1u << 30))
    return fail(kNvmeCmd, kExitUsage, fmt::format("--io-size: '{}' is not a size up to 1G", args.io_size));
  args.perf.io_bytes = static_cast<uint32_t>(*size);
  auto ctrl = open_controller(args, bdf);
  if (!ctrl.ok()) return fail(kNvmeCmd, exit_code_for(ctrl.status()), ctrl.status().message());
  perf::StopSignalGuard on_ctrl_c;
  auto r = run_nvme_perf(**ctrl, args.perf);
  if (!r.ok()) return fail(kNvmeCmd, exit_code_for(r.status()), r.status().message());
  const NvmePerfResult& p = *r;
  if (args.json) {
    print_json({{"bdf", bdf}, {"nsid", args.perf.nsid}, {"workload", args.perf.workload},
                {"queue_depth", args.perf.queue_depth}, {"io_size", args.perf.io_bytes}, {"seconds", p.seconds},
                {"ios", p.ios}, {"errors", p.errors}, {"iops", p.iops}, {"mib_per_s", p.mib_per_s},
                {"latency_us", {{"avg", p.lat_avg_us}, {"p50", p.lat_p50_us}, {"p99", p.lat_p99_us},
                                {"p99.9", p.lat_p999_us}, {"max", p.lat_max_us}}},
                {"cpu_ns_per_io", p.cpu_ns_per_io}, {"bounces", p.bounces}, {"doorbells", p.doorbells}});
  } else {
    fmt::print("nvme {}/{} {} {} QD{}: {:.0f} IOPS, {:.1f} MiB/s over {:.2f} s\n", bdf, args.perf.nsid,
               args.perf.workload, format_size(args.perf.io_bytes), args.perf.queue_depth, p.iops, p.mib_per_s,
               p.seconds);
    fmt::print("  latency us: avg {:.1f}  p50 {:.1f}  p99 {:.1f}  p99.9 {:.1f}  max {:.1f}\n", p.lat_avg_us, p.lat_p50_us,
               p.lat_p99_us, p.lat_p999_us, p.lat_max_us);
    fmt::print("  CPU {:.0f} ns per I/O; {} doorbells for {} I/Os\n", p.cpu_ns_per_io, p.doorbells, p.ios + p.errors);
  }
  if (p.errors != 0) return fail(kNvmeCmd, kExitFailure, fmt::format("{} I/O errors; first: {}", p.errors, p.first_error));
  return perf::stop_requested() ? kExitInterrupted : kExitOk;
}

int run_discover(const NvmeArgs& args) {
  auto address = nvme::parse_tcp_address(args.target);
  if (!address.ok()) return fail(kNvmeCmd, kExitUsage, address.status().message());
  auto entries = nvme::discover(*address, args.hostnqn);
  if (!entries.ok()) return fail(kNvmeCmd, exit_code_for(entries.status()), entries.status().message());
  auto trtype = [](uint8_t t) { return t == nvme::spec::discovery::kTrtypeTcp ? "tcp" : "other"; };
  auto adrfam = [](uint8_t a) { return a == nvme::spec::discovery::kAdrfamIpv6 ? "ipv6" : "ipv4"; };
  auto subtype = [](uint8_t s) { return s == nvme::spec::discovery::kSubtypeDiscovery ? "discovery" : "nvme"; };
  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : *entries)
      out.push_back({{"trtype", trtype(e.trtype)},
                     {"adrfam", adrfam(e.adrfam)},
                     {"subtype", subtype(e.subtype)},
                     {"portid", e.portid},
                     {"traddr", e.traddr},
                     {"trsvcid", e.trsvcid},
                     {"subnqn", e.subnqn}});
    print_json(out);
    return kExitOk;
  }
  fmt::print("Discovery log of {}: {} entries\n", address->to_string(), entries->size());
  for (size_t i = 0; i < entries->size(); ++i) {
    const auto& e = (*entries)[i];
    fmt::print("  {}: {} {} {}:{} port {} {}\n", i, subtype(e.subtype), trtype(e.trtype), e.traddr, e.trsvcid, e.portid,
               e.subnqn);
  }
  return kExitOk;
}

}  // namespace

Subcommand add_nvme(CLI::App& app) {
  (void)nvme::register_bdev_scheme();  // nvme:BDF for perf, blob and lvol
  auto args = std::make_shared<NvmeArgs>();
  CLI::App* cmd = app.add_subcommand("nvme", "The userspace NVMe driver: list, identify, smart-log, discover, perf");
  cmd->require_subcommand(1, 1);
  cmd->add_option("--sysfs-root", args->sysfs_root, "Where sysfs is (for tests)")->default_val("/sys");

  CLI::App* list = cmd->add_subcommand("list", "NVMe controllers in sysfs and their drivers");
  list->add_flag("--json", args->json, "JSON output");
  CLI::App* identify = cmd->add_subcommand("identify", "Identify a controller and its namespaces: BDF");
  identify->add_option("bdf", args->target, "PCI address, e.g. 0000:00:04.0")->required();
  identify->add_flag("--json", args->json, "JSON output");
  CLI::App* smart = cmd->add_subcommand("smart-log", "SMART / health and error logs: BDF");
  smart->add_option("bdf", args->target, "PCI address")->required();
  smart->add_option("-n,--nsid", args->nsid, "Namespace (default: the controller as a whole)");
  smart->add_flag("--json", args->json, "JSON output");
  CLI::App* discover =
      cmd->add_subcommand("discover", "List what an NVMe/TCP discovery controller offers: ADDR[:PORT]");
  discover->add_option("address", args->target, "IPv4 address, or [IPv6] in brackets; port 4420 unless given")
      ->required();
  discover->add_option("--hostnqn", args->hostnqn,
                       "Host NQN (default: /etc/nvme/hostnqn, else one from the host name)");
  discover->add_flag("--json", args->json, "JSON output");
  CLI::App* perf = cmd->add_subcommand("perf", "Drive one queue pair directly: BDF[/NSID]");
  perf->add_option("target", args->target, "BDF or BDF/NSID (namespace 1 by default)")->required();
  perf->add_option("-q,--queue-depth", args->perf.queue_depth, "Commands in flight")->default_val(32)
      ->check(CLI::Range(1, 65535));
  perf->add_option("-o,--io-size", args->io_size, "Bytes per I/O")->default_val("4k");
  perf->add_option("-w,--workload", args->perf.workload, "randread, randwrite, read, write, randrw")
      ->default_val("randread")->check(CLI::IsMember({"randread", "randwrite", "read", "write", "randrw"}));
  perf->add_option("-M,--rwmixread", args->perf.read_percent, "Reads in randrw, percent")->default_val(50)
      ->check(CLI::Range(0, 100));
  perf->add_option("-t,--time", args->perf.seconds, "Seconds")->default_val(5)->check(CLI::PositiveNumber);
  perf->add_option("--seed", args->perf.seed, "Random seed")->default_val(1);
  perf->add_flag("--json", args->json, "JSON output");

  auto run = [args, list, identify, smart, discover, perf]() -> int {
    if (list->parsed()) return run_list(*args);
    if (discover->parsed()) return run_discover(*args);
    if (identify->parsed()) return run_identify(*args);
    if (smart->parsed()) return run_smart_log(*args);
    if (perf->parsed()) return run_perf(*args);
    return kExitUsage;
  };
  return Subcommand{cmd, run};
}

}  // namespace sluice::cli
