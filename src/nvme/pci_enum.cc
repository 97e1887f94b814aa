// PCI enumeration from sysfs: the functions of class NVMe and what driver each is bound to.
// The sysfs root is a parameter so tests can describe a machine with a fake tree.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "nvme/pci_device.h"

namespace sluice::nvme {
namespace {

namespace fs = std::filesystem;

std::string read_line(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  return line;
}

uint64_t read_hex(const fs::path& p) {
  std::string s = read_line(p);
  try {
    return s.empty() ? 0 : std::stoull(s, nullptr, 16);
  } catch (...) {
    return 0;
  }
}

bool hex_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

}  // namespace

Result<std::string> canonical_bdf(std::string_view text) {
  std::string t(text);
  if (t.size() == 7) t = "0000:" + t;
  // dddd:bb:dd.f
  bool ok = t.size() == 12 && t[4] == ':' && t[7] == ':' && t[10] == '.' && hex_digits(t.substr(0, 4)) &&
            hex_digits(t.substr(5, 2)) && hex_digits(t.substr(8, 2)) && t[11] >= '0' && t[11] <= '7';
  if (!ok)
    return Status(Errc::invalid_argument,
                  fmt::format("'{}' is not a PCI address; want DOMAIN:BUS:DEVICE.FUNCTION, e.g. 0000:00:04.0", text));
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return t;
}

Result<PciFunction> describe_pci_function(std::string_view bdf, std::string_view sysfs_root) {
  auto canon = canonical_bdf(bdf);
  if (!canon.ok()) return canon.status();
  fs::path dir = fs::path(sysfs_root) / "bus/pci/devices" / *canon;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return Status(Errc::not_found, fmt::format("no PCI function {} ({} is missing)", *canon, dir.string()));
  PciFunction f;
  f.bdf = *canon;
  f.vendor = static_cast<uint16_t>(read_hex(dir / "vendor"));
  f.device = static_cast<uint16_t>(read_hex(dir / "device"));
  f.class_code = static_cast<uint32_t>(read_hex(dir / "class"));
  std::string numa = read_line(dir / "numa_node");
  f.numa_node = numa.empty() ? -1 : std::atoi(numa.c_str());
  fs::path drv = fs::read_symlink(dir / "driver", ec);
  if (!ec) f.driver = drv.filename().string();
  return f;
}

std::vector<PciFunction> list_nvme_functions(std::string_view sysfs_root) {
  std::vector<PciFunction> out;
  std::error_code ec;
  fs::directory_iterator it(fs::path(sysfs_root) / "bus/pci/devices", ec);
  if (ec) return out;
  for (const auto& entry : it) {
    auto f = describe_pci_function(entry.path().filename().string(), sysfs_root);
    if (f.ok() && f->class_code == kNvmeClassCode) out.push_back(std::move(f.value()));
  }
  std::sort(out.begin(), out.end(), [](const PciFunction& a, const PciFunction& b) { return a.bdf < b.bdf; });
  return out;
}

}  // namespace sluice::nvme
