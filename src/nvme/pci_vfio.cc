// PciDevice over VFIO: container, group, device; BAR0 mmap; DMA through the IOMMU.
//
// Every chunk of env DMA memory is mapped into the container as the pool maps it
// (dma_watch_regions), so any DMA buffer is usable by the device. IOVA = VA is tried first;
// an IOMMU whose address width cannot hold user addresses (QEMU's intel-iommu has 39 bits
// unless aw-bits=48) refuses that, and then chunks get IOVAs from a compact range of their
// own, which translate() looks up.
// Loading vfio-pci / vfio_iommu_type1 and binding the device is the host's business
// (`sluice setup`). One container per device: two functions of the same IOMMU group cannot
// be opened by one process here.
#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>

#include <fmt/format.h>

#include "base/log.h"
#include "base/unique_fd.h"
#include "env/env.h"
#include "nvme/mmio_bar.h"
#include "nvme/pci_device.h"

namespace sluice::nvme {
namespace {

namespace fs = std::filesystem;

class VfioDevice final : public PciDevice {
 public:
  VfioDevice(std::string bdf, UniqueFd container, UniqueFd group, UniqueFd device, bool noiommu)
      : bdf_(std::move(bdf)), container_(std::move(container)), group_(std::move(group)),
        device_(std::move(device)), noiommu_(noiommu) {}
  ~VfioDevice() override {
    if (watch_ != 0) env::dma_unwatch_regions(watch_);
  }

  const std::string& bdf() const override { return bdf_; }
  std::string_view kind() const override { return "vfio-pci"; }
  uint32_t read32(uint32_t off) override { return bar_->read32(off); }
  void write32(uint32_t off, uint32_t v) override { bar_->write32(off, v); }

  Status map_bar0();
  Status enable_dma() override;
  uint64_t translate(const void* p) const override;

 private:
  Status set_bus_master();
  void map_region(const iovec& region);
  bool map_at(const iovec& region, uint64_t iova);

  // Append-only: the watcher adds entries (under map_mu_), I/O threads read them lock-free.
  struct Mapping {
    uintptr_t va;
    size_t len;
    uint64_t iova;
  };
  static constexpr size_t kMaxMappings = 4096;
  std::unique_ptr<Mapping[]> mappings_{new Mapping[kMaxMappings]};
  std::atomic<size_t> mapping_count_{0};
  bool identity_ = true;         // IOVA = VA so far
  uint64_t next_iova_ = 1ull << 32;  // for compact IOVAs: 4 GiB up, clear of low MMIO windows

  std::string bdf_;
  UniqueFd container_, group_, device_;
  bool noiommu_;
  std::unique_ptr<MmioBar> bar_;
  uint64_t config_offset_ = 0;
  uint64_t watch_ = 0;
  std::mutex map_mu_;
  Status map_error_;
};

Status VfioDevice::map_bar0() {
  vfio_region_info reg = {};
  reg.argsz = sizeof reg;
  reg.index = VFIO_PCI_BAR0_REGION_INDEX;
  if (ioctl(device_.get(), VFIO_DEVICE_GET_REGION_INFO, &reg) != 0)
    return errno_status(errno, fmt::format("vfio {}: BAR0 region info", bdf_));
  if ((reg.flags & VFIO_REGION_INFO_FLAG_MMAP) == 0)
    return Status(Errc::not_supported, fmt::format("vfio {}: BAR0 cannot be mapped", bdf_));
  // When the MSI-X table shares BAR0 the whole BAR may not be mappable; registers and the
  // doorbells of the first 511 queues fit in 8 KiB, below where the table goes.
  size_t len = reg.size;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, device_.get(), static_cast<off_t>(reg.offset));
  if (p == MAP_FAILED && reg.size > 0x2000) {
    len = 0x2000;
    p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, device_.get(), static_cast<off_t>(reg.offset));
  }
  if (p == MAP_FAILED) return errno_status(errno, fmt::format("vfio {}: mmap BAR0", bdf_));
  bar_ = std::make_unique<MmioBar>(p, len);

  vfio_region_info cfg = {};
  cfg.argsz = sizeof cfg;
  cfg.index = VFIO_PCI_CONFIG_REGION_INDEX;
  if (ioctl(device_.get(), VFIO_DEVICE_GET_REGION_INFO, &cfg) != 0)
    return errno_status(errno, fmt::format("vfio {}: config region info", bdf_));
  config_offset_ = cfg.offset;
  return set_bus_master();
}

Status VfioDevice::set_bus_master() {
  uint16_t cmd = 0;
  const auto off = static_cast<off_t>(config_offset_ + 4);  // PCI command register
  if (pread(device_.get(), &cmd, 2, off) != 2) return errno_status(errno, fmt::format("vfio {}: read PCI command", bdf_));
  cmd |= 0x4;  // bus master
  if (pwrite(device_.get(), &cmd, 2, off) != 2) return errno_status(errno, fmt::format("vfio {}: set bus master", bdf_));
  return Status::Ok();
}

Status VfioDevice::enable_dma() {
  if (noiommu_) {
    // No IOMMU behind the group: the device sees physical addresses.
    return env::dma_set_iova_mode(env::IovaMode::pa);
  }
  if (env::dma_iova_mode() != env::IovaMode::va) SLUICE_RETURN_IF_ERROR(env::dma_set_iova_mode(env::IovaMode::va));
  if (watch_ != 0) return Status::Ok();
  watch_ = env::dma_watch_regions([this](const iovec& region) { map_region(region); });
  std::lock_guard lock(map_mu_);
  return map_error_;
}

bool VfioDevice::map_at(const iovec& region, uint64_t iova) {
  vfio_iommu_type1_dma_map map = {};
  map.argsz = sizeof map;
  map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
  map.vaddr = reinterpret_cast<uint64_t>(region.iov_base);
  map.iova = iova;
  map.size = region.iov_len;
  return ioctl(container_.get(), VFIO_IOMMU_MAP_DMA, &map) == 0;
}

void VfioDevice::map_region(const iovec& region) {
  std::lock_guard lock(map_mu_);
  const size_t n = mapping_count_.load(std::memory_order_relaxed);
  if (n == kMaxMappings) {
    map_error_ = Status(Errc::no_space, fmt::format("vfio {}: too many DMA regions", bdf_));
    return;
  }
  const auto va = reinterpret_cast<uintptr_t>(region.iov_base);
  uint64_t iova = va;
  bool ok = identity_ && map_at(region, iova);
  if (!ok) {
    if (identity_) log::info("vfio {}: IOVA = VA refused ({}); using compact IOVAs", bdf_, std::strerror(errno));
    identity_ = false;
    iova = next_iova_;
    ok = map_at(region, iova);
    if (ok) next_iova_ += (region.iov_len + (2u << 20) - 1) / (2u << 20) * (2u << 20);
  }
  if (!ok) {
    map_error_ = errno_status(errno, fmt::format("vfio {}: map {} bytes of DMA memory", bdf_, region.iov_len));
    log::error("{}", map_error_.to_string());
    return;
  }
  mappings_[n] = {va, region.iov_len, iova};
  mapping_count_.store(n + 1, std::memory_order_release);
}

uint64_t VfioDevice::translate(const void* p) const {
  if (noiommu_) return PciDevice::translate(p);
  const auto a = reinterpret_cast<uintptr_t>(p);
  const size_t n = mapping_count_.load(std::memory_order_acquire);
  for (size_t i = 0; i < n; ++i) {
    const Mapping& m = mappings_[i];
    if (a - m.va < m.len) return m.iova + (a - m.va);
  }
  return env::kDmaBadIova;
}

std::string iommu_group(const fs::path& dev_dir) {
  std::error_code ec;
  fs::path g = fs::read_symlink(dev_dir / "iommu_group", ec);
  return ec ? std::string() : g.filename().string();
}

}  // namespace

Result<std::unique_ptr<PciDevice>> open_vfio_device(std::string_view bdf, std::string_view sysfs_root) {
  const std::string b(bdf);
  std::string group_id = iommu_group(fs::path(sysfs_root) / "bus/pci/devices" / b);
  if (group_id.empty()) return Status(Errc::not_found, fmt::format("vfio {}: no IOMMU group in sysfs", b));

  bool noiommu = false;
  std::string group_path = "/dev/vfio/" + group_id;
  if (access(group_path.c_str(), F_OK) != 0 && access(("/dev/vfio/noiommu-" + group_id).c_str(), F_OK) == 0) {
    group_path = "/dev/vfio/noiommu-" + group_id;
    noiommu = true;
  }
  UniqueFd container(open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC));
  if (container.get() < 0) return errno_status(errno, "vfio: open /dev/vfio/vfio (is the vfio module loaded?)");
  if (ioctl(container.get(), VFIO_GET_API_VERSION) != VFIO_API_VERSION)
    return Status(Errc::not_supported, "vfio: unknown API version");
  const int iommu_type = noiommu ? VFIO_NOIOMMU_IOMMU : VFIO_TYPE1v2_IOMMU;
  if (ioctl(container.get(), VFIO_CHECK_EXTENSION, iommu_type) <= 0)
    return Status(Errc::not_supported,
                  noiommu ? std::string("vfio: no-IOMMU mode is not enabled")
                          : std::string("vfio: type1 IOMMU unsupported (modprobe vfio_iommu_type1?)"));

  UniqueFd group(open(group_path.c_str(), O_RDWR | O_CLOEXEC));
  if (group.get() < 0) return errno_status(errno, fmt::format("vfio {}: open {}", b, group_path));
  vfio_group_status gs = {};
  gs.argsz = sizeof gs;
  if (ioctl(group.get(), VFIO_GROUP_GET_STATUS, &gs) != 0) return errno_status(errno, fmt::format("vfio {}: group status", b));
  if ((gs.flags & VFIO_GROUP_FLAGS_VIABLE) == 0)
    return Status(Errc::busy, fmt::format("vfio {}: IOMMU group {} is not viable (bind every device in it to vfio-pci)", b, group_id));
  int cfd = container.get();
  if (ioctl(group.get(), VFIO_GROUP_SET_CONTAINER, &cfd) != 0)
    return errno_status(errno, fmt::format("vfio {}: attach group to container", b));
  if (ioctl(container.get(), VFIO_SET_IOMMU, iommu_type) != 0)
    return errno_status(errno, fmt::format("vfio {}: set IOMMU type", b));
  UniqueFd device(ioctl(group.get(), VFIO_GROUP_GET_DEVICE_FD, b.c_str()));
  if (device.get() < 0) return errno_status(errno, fmt::format("vfio {}: get device fd", b));

  auto dev = std::make_unique<VfioDevice>(b, std::move(container), std::move(group), std::move(device), noiommu);
  SLUICE_RETURN_IF_ERROR(dev->map_bar0());
  return std::unique_ptr<PciDevice>(std::move(dev));
}

}  // namespace sluice::nvme
