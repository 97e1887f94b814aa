// PciDevice over uio_pci_generic: BAR0 through sysfs resource0, config space through sysfs
// config, and physical addresses (pagemap) as IOVAs, since nothing translates for the
// device. Needs root, and hugepage-backed DMA memory so that queues and buffers larger than
// a page are physically contiguous (dma_translate_checked reports when they are not).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include <fmt/format.h>

#include "env/env.h"
#include "nvme/mmio_bar.h"
#include "nvme/pci_device.h"

namespace sluice::nvme {
namespace {

class UioDevice final : public PciDevice {
 public:
  UioDevice(std::string bdf, std::string dir, std::unique_ptr<MmioBar> bar)
      : bdf_(std::move(bdf)), dir_(std::move(dir)), bar_(std::move(bar)) {}

  const std::string& bdf() const override { return bdf_; }
  std::string_view kind() const override { return "uio_pci_generic"; }
  uint32_t read32(uint32_t off) override { return bar_->read32(off); }
  void write32(uint32_t off, uint32_t v) override { bar_->write32(off, v); }

  Status enable_dma() override {
    SLUICE_RETURN_IF_ERROR(env::dma_set_iova_mode(env::IovaMode::pa));
    std::string path = dir_ + "/config";
    int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return errno_status(errno, fmt::format("uio {}: open {}", bdf_, path));
    uint16_t cmd = 0;
    Status st;
    if (pread(fd, &cmd, 2, 4) != 2) {
      st = errno_status(errno, fmt::format("uio {}: read PCI command", bdf_));
    } else {
      cmd |= 0x4;  // bus master
      if (pwrite(fd, &cmd, 2, 4) != 2) st = errno_status(errno, fmt::format("uio {}: set bus master", bdf_));
    }
    close(fd);
    return st;
  }

 private:
  std::string bdf_, dir_;
  std::unique_ptr<MmioBar> bar_;
};

}  // namespace

Result<std::unique_ptr<PciDevice>> open_uio_device(std::string_view bdf, std::string_view sysfs_root) {
  std::string dir = fmt::format("{}/bus/pci/devices/{}", sysfs_root, bdf);
  std::string res = dir + "/resource0";
  int fd = open(res.c_str(), O_RDWR | O_SYNC | O_CLOEXEC);
  if (fd < 0) return errno_status(errno, fmt::format("uio {}: open {}", bdf, res));
  struct stat st = {};
  if (fstat(fd, &st) != 0 || st.st_size <= 0) {
    close(fd);
    return Status(Errc::io_error, fmt::format("uio {}: {} has no size", bdf, res));
  }
  const auto len = static_cast<size_t>(st.st_size);
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int err = errno;
  close(fd);
  if (p == MAP_FAILED) return errno_status(err, fmt::format("uio {}: mmap {}", bdf, res));
  return std::unique_ptr<PciDevice>(new UioDevice(std::string(bdf), dir, std::make_unique<MmioBar>(p, len)));
}

}  // namespace sluice::nvme
