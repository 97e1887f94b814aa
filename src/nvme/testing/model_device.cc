// The PciDevice face of the software controller model, and its test-device registration.
#include <fmt/format.h>

#include "nvme/testing/controller_model.h"

namespace sluice::nvme::testing {
namespace {

class ModelDevice final : public PciDevice {
 public:
  explicit ModelDevice(std::shared_ptr<ControllerModel> model) : model_(std::move(model)), bdf_(model_->options().bdf) {}
  const std::string& bdf() const override { return bdf_; }
  std::string_view kind() const override { return "model"; }
  uint32_t read32(uint32_t offset) override { return model_->read32(offset); }
  void write32(uint32_t offset, uint32_t value) override { model_->write32(offset, value); }
  Status enable_dma() override {
    model_->enable_dma();
    return Status::Ok();
  }

 private:
  std::shared_ptr<ControllerModel> model_;
  std::string bdf_;
};

}  // namespace

std::unique_ptr<PciDevice> ControllerModel::make_device() { return std::make_unique<ModelDevice>(shared_from_this()); }

void ControllerModel::register_as_test_device() {
  std::weak_ptr<ControllerModel> weak = weak_from_this();
  register_test_device(options_.bdf, [weak]() -> sluice::Result<std::unique_ptr<PciDevice>> {
    auto model = weak.lock();
    if (!model) return Status(Errc::not_found, "the NVMe model behind this test device is gone");
    return model->make_device();
  });
  registered_ = true;
}

void ControllerModel::unregister_as_test_device() {
  if (registered_) unregister_test_device(options_.bdf);
  registered_ = false;
}

}  // namespace sluice::nvme::testing
