// PCI enumeration and opening from a fake sysfs tree.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nvme/pci_device.h"

namespace sluice::nvme {
namespace {

namespace fs = std::filesystem;

class FakeSysfs : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("sluice-sysfs-" + std::to_string(getpid()));
    fs::remove_all(root_);
    add("0000:00:04.0", "0x010802", "0x1b36", "0x0010", "vfio-pci");
    add("0000:00:05.0", "0x010802", "0x8086", "0x0953", "nvme");
    add("0000:00:02.0", "0x030000", "0x1234", "0x1111", "");  // a display controller
  }
  void TearDown() override { fs::remove_all(root_); }
  void add(const std::string& bdf, const std::string& cls, const std::string& vendor, const std::string& device,
           const std::string& driver) {
    fs::path dir = root_ / "bus/pci/devices" / bdf;
    fs::create_directories(dir);
    std::ofstream(dir / "class") << cls << "\n";
    std::ofstream(dir / "vendor") << vendor << "\n";
    std::ofstream(dir / "device") << device << "\n";
    std::ofstream(dir / "numa_node") << "-1\n";
    if (!driver.empty()) {
      fs::create_directories(root_ / "bus/pci/drivers" / driver);
      fs::create_directory_symlink(root_ / "bus/pci/drivers" / driver, dir / "driver");
    }
  }
  fs::path root_;
};

TEST_F(FakeSysfs, ListsOnlyNvmeFunctionsWithTheirDrivers) {
  auto list = list_nvme_functions(root_.string());
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].bdf, "0000:00:04.0");
  EXPECT_EQ(list[0].vendor, 0x1b36);
  EXPECT_EQ(list[0].device, 0x0010);
  EXPECT_EQ(list[0].driver, "vfio-pci");
  EXPECT_EQ(list[1].bdf, "0000:00:05.0");
  EXPECT_EQ(list[1].driver, "nvme");
  EXPECT_TRUE(list_nvme_functions((root_ / "missing").string()).empty());
}

TEST_F(FakeSysfs, OpeningAFunctionBoundToTheKernelDriverExplainsWhatToDo) {
  auto dev = open_pci_device("0000:00:05.0", root_.string());
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), Errc::not_supported);
  EXPECT_THAT(dev.status().message(), ::testing::HasSubstr("bound to nvme; bind it to vfio-pci or uio_pci_generic"));
  dev = open_pci_device("0000:00:09.0", root_.string());
  EXPECT_EQ(dev.status().code(), Errc::not_found);
}

TEST(PciAddress, CanonicalForms) {
  EXPECT_EQ(*canonical_bdf("0000:00:04.0"), "0000:00:04.0");
  EXPECT_EQ(*canonical_bdf("00:1F.7"), "0000:00:1f.7");
  EXPECT_FALSE(canonical_bdf("0000:00:04").ok());
  EXPECT_FALSE(canonical_bdf("0000:00:04.8").ok());
  EXPECT_FALSE(canonical_bdf("zz00:00:04.0").ok());
  EXPECT_FALSE(canonical_bdf("").ok());
}

}  // namespace
}  // namespace sluice::nvme
