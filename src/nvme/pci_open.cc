// Opening a PCI function: test devices first, then by the kernel driver it is bound to.
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "env/env.h"
#include "nvme/pci_device.h"

namespace sluice::nvme {
namespace {

// Both live for the whole process (never destroyed), so test devices may unregister from
// static destructors in any order.
std::mutex& registry_mu() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::map<std::string, PciDeviceFactory, std::less<>>& test_devices() {
  static auto* devices = new std::map<std::string, PciDeviceFactory, std::less<>>;
  return *devices;
}

}  // namespace

uint64_t PciDevice::translate(const void* p) const { return env::dma_translate(p); }

void register_test_device(std::string_view bdf, PciDeviceFactory factory) {
  std::lock_guard lock(registry_mu());
  test_devices()[std::string(bdf)] = std::move(factory);
}

void unregister_test_device(std::string_view bdf) {
  std::lock_guard lock(registry_mu());
  if (auto it = test_devices().find(bdf); it != test_devices().end()) test_devices().erase(it);
}

Result<std::unique_ptr<PciDevice>> open_pci_device(std::string_view bdf, std::string_view sysfs_root) {
  PciDeviceFactory factory;
  {
    std::lock_guard lock(registry_mu());
    if (auto it = test_devices().find(bdf); it != test_devices().end()) factory = it->second;
  }
  if (factory) return factory();
  auto f = describe_pci_function(bdf, sysfs_root);
  if (!f.ok()) return f.status();
  if (f->driver == "vfio-pci") return open_vfio_device(f->bdf, sysfs_root);
  if (f->driver == "uio_pci_generic") return open_uio_device(f->bdf, sysfs_root);
  return Status(Errc::not_supported,
                fmt::format("PCI function {} is bound to {}; bind it to vfio-pci or uio_pci_generic first "
                            "(sluice setup)",
                            f->bdf, f->driver.empty() ? "no driver" : f->driver));
}

}  // namespace sluice::nvme
