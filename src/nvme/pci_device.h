// PciDevice: everything the driver needs from a PCI function, behind one small interface, so
// the same controller code runs on VFIO, on UIO, on the in-process software model and, with
// properties for registers, over NVMe/TCP (fabrics_device.h).
//
// Registers are reached through read/write calls rather than a raw pointer so that the model
// sees every doorbell write as it happens. DMA: the driver gives devices only env DMA memory
// (env.h) and translates addresses with translate(); enable_dma() makes that memory
// reachable by the device (VFIO maps it at IOVA = VA; UIO switches to physical addresses).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sluice::nvme {

class FabricsDevice;

class PciDevice {
 public:
  virtual ~PciDevice() = default;

  virtual const std::string& bdf() const = 0;
  // "vfio-pci", "uio_pci_generic", "model"
  virtual std::string_view kind() const = 0;

  // BAR0 registers (offsets in bytes).
  virtual uint32_t read32(uint32_t offset) = 0;
  virtual void write32(uint32_t offset, uint32_t value) = 0;
  virtual uint64_t read64(uint32_t offset) {
    return read32(offset) | (uint64_t{read32(offset + 4)} << 32);
  }
  // Low dword first, as the specification allows for controllers without 64-bit access.
  virtual void write64(uint32_t offset, uint64_t value) {
    write32(offset, static_cast<uint32_t>(value));
    write32(offset + 4, static_cast<uint32_t>(value >> 32));
  }

  // Makes env DMA memory (now and as the pool grows) reachable by the device and turns on
  // bus mastering.
  virtual Status enable_dma() = 0;
  // The device address of a byte of env DMA memory, or env::kDmaBadIova.
  virtual uint64_t translate(const void* p) const;

  // A controller over a fabric (fabrics_device.h) is a PciDevice whose registers are
  // properties; the queues differ, so the controller code asks.
  virtual FabricsDevice* fabrics() { return nullptr; }
};

// Opens the function at `bdf` ("0000:00:04.0") with whichever driver it is bound to:
// vfio-pci or uio_pci_generic. Test devices registered below take precedence.
Result<std::unique_ptr<PciDevice>> open_pci_device(std::string_view bdf, std::string_view sysfs_root = "/sys");

// Test seam: `bdf` opens whatever `factory` returns (the software model) instead of sysfs.
using PciDeviceFactory = std::function<Result<std::unique_ptr<PciDevice>>()>;
void register_test_device(std::string_view bdf, PciDeviceFactory factory);
void unregister_test_device(std::string_view bdf);

// Implementations (pci_vfio.cc, pci_uio.cc).
Result<std::unique_ptr<PciDevice>> open_vfio_device(std::string_view bdf, std::string_view sysfs_root);
Result<std::unique_ptr<PciDevice>> open_uio_device(std::string_view bdf, std::string_view sysfs_root);

// ---- Enumeration ---------------------------------------------------------------------------
struct PciFunction {
  std::string bdf;
  uint16_t vendor = 0, device = 0;
  uint32_t class_code = 0;  // 0x010802 for NVMe
  std::string driver;       // bound kernel driver, "" when none
  int numa_node = -1;
};

inline constexpr uint32_t kNvmeClassCode = 0x010802;

// Every NVMe-class function under `sysfs_root`/bus/pci/devices, sorted by BDF.
std::vector<PciFunction> list_nvme_functions(std::string_view sysfs_root = "/sys");
// One function's description, whatever its class.
Result<PciFunction> describe_pci_function(std::string_view bdf, std::string_view sysfs_root = "/sys");
// "0000:00:04.0" is canonical; "00:04.0" gets domain 0000. Invalid text is an error.
Result<std::string> canonical_bdf(std::string_view text);

}  // namespace sluice::nvme
