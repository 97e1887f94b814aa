// `sluice setup`: prepare a machine for the userspace NVMe driver, and undo it.
//
//   sluice setup status                      hugepages and each NVMe function's driver
//   sluice setup hugepages N                 reserve N 2 MiB hugepages (vm.nr_hugepages)
//   sluice setup bind [BDF...] [-d DRIVER]   NVMe functions (all if none named) to vfio-pci
//                                            (default) or uio_pci_generic
//   sluice setup reset [BDF...]              back to the kernel's nvme driver
//
// Binding uses driver_override + drivers_probe, so no other device with the same IDs moves.
// A controller whose namespaces (or their partitions) are mounted, used as swap or held by
// another block device (dm, md) is refused: unbinding would pull the disk from under them.
// --sysfs-root and --mounts let tests run all of this on a fake tree.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "base/number.h"
#include "commands.h"
#include "nvme/pci_device.h"

namespace sluice::cli {
namespace {

namespace stdfs = std::filesystem;
constexpr std::string_view kSetupCmd = "setup";

struct SetupArgs {
  std::vector<std::string> bdfs;
  std::string driver = "vfio-pci";
  std::string sysfs_root = "/sys";
  std::string proc_root = "/proc";
  uint64_t hugepages = 0;
};

Status write_file(const stdfs::path& p, std::string_view text) {
  std::ofstream out(p);
  if (!out) return errno_status(errno, fmt::format("open {}", p.string()));
  out << text;
  out.flush();
  if (!out) return errno_status(errno, fmt::format("write '{}' to {}", text, p.string()));
  return Status::Ok();
}

std::string read_line(const stdfs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  return s;
}

// The entries of `dir`, none if it cannot be read. The iterators' operator++ throws on an error
// in the middle of a walk, and sysfs entries come and go while we look.
std::vector<stdfs::path> entries(const stdfs::path& dir) {
  std::vector<stdfs::path> out;
  std::error_code ec;
  for (stdfs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) out.push_back(it->path());
  return out;
}

stdfs::path device_dir(const SetupArgs& a, const std::string& bdf) { return stdfs::path(a.sysfs_root) / "bus/pci/devices" / bdf; }

// Block device names (nvme0n1, nvme0n1p2) that belong to the controller at `bdf`.
std::set<std::string> block_devices_of(const SetupArgs& a, const std::string& bdf) {
  std::set<std::string> names;
  for (const stdfs::path& ctrl : entries(device_dir(a, bdf) / "nvme")) {
    for (const stdfs::path& ns : entries(ctrl)) {
      std::string n = ns.filename().string();
      if (n.rfind("nvme", 0) != 0 || n.find('n', 4) == std::string::npos) continue;
      // Native multipath shows nvme0c0n1 here; the block device is the head, nvme0n1.
      if (auto c = n.find('c', 4); c != std::string::npos) {
        auto nn = n.find('n', c);
        if (nn != std::string::npos) n = n.substr(0, c) + n.substr(nn);
      }
      names.insert(n);
      // Partitions sit under the namespace's block device: here without multipath, under
      // the head (/sys/class/block/nvme0n1) with it.
      for (const stdfs::path& dir : {ns, stdfs::path(a.sysfs_root) / "class/block" / n}) {
        for (const stdfs::path& part : entries(dir)) {
          std::string p = part.filename().string();
          if (p.rfind(n + "p", 0) == 0) names.insert(p);
        }
      }
    }
  }
  return names;
}

// Why `bdf` must not be taken from the kernel, or "" when it may.
std::string in_use(const SetupArgs& a, const std::string& bdf) {
  const std::set<std::string> devs = block_devices_of(a, bdf);
  if (devs.empty()) return "";
  for (const char* table : {"mounts", "swaps"}) {
    std::ifstream in(stdfs::path(a.proc_root) / table);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string source, where;
      fields >> source >> where;
      for (const auto& d : devs)
        if (source == "/dev/" + d)
          return std::string(table) == "mounts" ? fmt::format("/dev/{} is mounted on {}", d, where)
                                                : fmt::format("/dev/{} is in use as swap", d);
    }
  }
  for (const auto& d : devs) {
    const std::vector<stdfs::path> holders = entries(stdfs::path(a.sysfs_root) / "class/block" / d / "holders");
    if (!holders.empty()) return fmt::format("/dev/{} is held by {}", d, holders.front().filename().string());
  }
  return "";
}

std::string current_driver(const SetupArgs& a, const std::string& bdf) {
  std::error_code ec;
  stdfs::path drv = stdfs::read_symlink(device_dir(a, bdf) / "driver", ec);
  return ec ? std::string() : drv.filename().string();
}

Status ensure_driver_loaded(const SetupArgs& a, const std::string& driver) {
  std::error_code ec;
  if (stdfs::exists(stdfs::path(a.sysfs_root) / "bus/pci/drivers" / driver, ec)) return Status::Ok();
  if (a.sysfs_root != "/sys") return Status(Errc::not_found, fmt::format("driver {} is not loaded", driver));
  std::string cmd = fmt::format("modprobe {} >/dev/null 2>&1", driver);
  if (std::system(cmd.c_str()) != 0 || !stdfs::exists(stdfs::path("/sys/bus/pci/drivers") / driver, ec))
    return Status(Errc::not_found, fmt::format("cannot load driver {} (modprobe {} failed)", driver, driver));
  return Status::Ok();
}

// Rebinds `bdf` to `driver` ("" = whatever the kernel picks, i.e. nvme).
Status rebind(const SetupArgs& a, const std::string& bdf, const std::string& driver) {
  const stdfs::path dir = device_dir(a, bdf);
  SLUICE_RETURN_IF_ERROR(write_file(dir / "driver_override", driver.empty() ? "\n" : driver));
  if (!current_driver(a, bdf).empty()) SLUICE_RETURN_IF_ERROR(write_file(dir / "driver" / "unbind", bdf));
  SLUICE_RETURN_IF_ERROR(write_file(stdfs::path(a.sysfs_root) / "bus/pci/drivers_probe", bdf));
  if (a.sysfs_root != "/sys") return Status::Ok();  // a fake tree has no kernel behind it
  for (int i = 0; i < 50; ++i) {
    const std::string now = current_driver(a, bdf);
    if (driver.empty() ? !now.empty() : now == driver) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Status(Errc::io_error, fmt::format("{} did not bind to {}", bdf, driver.empty() ? "a kernel driver" : driver));
}

Result<std::vector<std::string>> targets(const SetupArgs& a) {
  std::vector<std::string> out;
  if (a.bdfs.empty()) {
    for (const auto& f : nvme::list_nvme_functions(a.sysfs_root)) out.push_back(f.bdf);
    return out;
  }
  for (const auto& b : a.bdfs) {
    auto f = nvme::describe_pci_function(b, a.sysfs_root);
    if (!f.ok()) return f.status();
    if (f->class_code != nvme::kNvmeClassCode)
      return Status(Errc::invalid_argument, fmt::format("{} is not an NVMe controller (class {:06x})", f->bdf, f->class_code));
    out.push_back(f->bdf);
  }
  return out;
}

int run_bind(const SetupArgs& a, bool to_user) {
  auto list = targets(a);
  if (!list.ok()) return fail(kSetupCmd, exit_code_for(list.status()), list.status().message());
  if (list->empty()) {
    fmt::print("no NVMe controllers found\n");
    return kExitOk;
  }
  if (to_user) {
    Status st = ensure_driver_loaded(a, a.driver);
    if (!st.ok()) return fail(kSetupCmd, kExitFailure, st.message());
  }
  int rc = kExitOk;
  for (const auto& bdf : *list) {
    const std::string want = to_user ? a.driver : std::string();
    const std::string now = current_driver(a, bdf);
    if (to_user && now == want) {
      fmt::print("{}: already bound to {}\n", bdf, want);
      continue;
    }
    if (!to_user && now == "nvme") {
      (void)write_file(device_dir(a, bdf) / "driver_override", "\n");  // so a later probe stays with nvme
      fmt::print("{}: already bound to nvme\n", bdf);
      continue;
    }
    if (to_user) {
      if (std::string why = in_use(a, bdf); !why.empty()) {
        rc = fail(kSetupCmd, kExitFailure, fmt::format("{}: refusing to unbind it: {}", bdf, why));
        continue;
      }
    }
    Status st = rebind(a, bdf, want);
    if (!st.ok()) {
      rc = fail(kSetupCmd, kExitFailure, fmt::format("{}: {}", bdf, st.message()));
      continue;
    }
    fmt::print("{}: {} -> {}\n", bdf, now.empty() ? "(none)" : now, want.empty() ? "kernel driver" : want);
  }
  return rc;
}

int run_hugepages(const SetupArgs& a) {
  const stdfs::path p = stdfs::path(a.proc_root) / "sys/vm/nr_hugepages";
  Status st = write_file(p, std::to_string(a.hugepages));
  if (!st.ok()) return fail(kSetupCmd, kExitFailure, st.message());
  const std::string got = read_line(p);
  fmt::print("hugepages: {} of 2 MiB reserved (asked for {})\n", got, a.hugepages);
  auto reserved = parse_uint(got);
  if (!reserved.ok()) return fail(kSetupCmd, kExitFailure, fmt::format("{} reads '{}', not a number", p.string(), got));
  if (*reserved < a.hugepages)
    return fail(kSetupCmd, kExitFailure, "the kernel reserved fewer hugepages than asked (memory fragmented?)");
  return kExitOk;
}

int run_status(const SetupArgs& a) {
  fmt::print("hugepages: {} of 2 MiB reserved, {} free\n", read_line(stdfs::path(a.proc_root) / "sys/vm/nr_hugepages"),
             read_line(stdfs::path(a.sysfs_root) / "kernel/mm/hugepages/hugepages-2048kB/free_hugepages"));
  for (const auto& f : nvme::list_nvme_functions(a.sysfs_root)) {
    std::string why = in_use(a, f.bdf);
    fmt::print("{} {:04x}:{:04x} driver {}{}\n", f.bdf, f.vendor, f.device, f.driver.empty() ? "(none)" : f.driver,
               why.empty() ? "" : "; in use: " + why);
  }
  return kExitOk;
}

}  // namespace

Subcommand add_setup(CLI::App& app) {
  auto args = std::make_shared<SetupArgs>();
  CLI::App* cmd = app.add_subcommand("setup", "Prepare NVMe devices and hugepages for the userspace driver");
  cmd->require_subcommand(1, 1);
  cmd->add_option("--sysfs-root", args->sysfs_root, "Where sysfs is (for tests)")->default_val("/sys");
  cmd->add_option("--proc-root", args->proc_root, "Where procfs is (for tests)")->default_val("/proc");
  CLI::App* status = cmd->add_subcommand("status", "Hugepages and NVMe drivers");
  CLI::App* huge = cmd->add_subcommand("hugepages", "Reserve N 2 MiB hugepages");
  huge->add_option("count", args->hugepages, "Pages")->required();
  CLI::App* bind = cmd->add_subcommand("bind", "Bind NVMe controllers to a userspace driver: [BDF...]");
  bind->add_option("bdf", args->bdfs, "PCI addresses (default: every NVMe controller)");
  bind->add_option("-d,--driver", args->driver, "vfio-pci or uio_pci_generic")
      ->default_val("vfio-pci")->check(CLI::IsMember({"vfio-pci", "uio_pci_generic"}));
  CLI::App* reset = cmd->add_subcommand("reset", "Give NVMe controllers back to the kernel: [BDF...]");
  reset->add_option("bdf", args->bdfs, "PCI addresses (default: every NVMe controller)");
  auto run = [args, status, huge, bind, reset]() -> int {
    if (status->parsed()) return run_status(*args);
    if (huge->parsed()) return run_hugepages(*args);
    if (bind->parsed()) return run_bind(*args, true);
    if (reset->parsed()) return run_bind(*args, false);
    return kExitUsage;
  };
  return Subcommand{cmd, run};
}

}  // namespace sluice::cli
