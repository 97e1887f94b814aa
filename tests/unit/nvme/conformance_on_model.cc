// Runs the bdev conformance suite (tests/unit/bdev/conformance_test.cc) on the nvme: scheme
// over the software controller model, registered as a fake PCI function before gtest looks
// at SLUICE_CONFORMANCE_SPEC. ctest runs only the model's instance (*/env).
#include <cstdlib>
#include <memory>

#include <gtest/gtest.h>

#include "nvme/nvme.h"
#include "nvme/testing/controller_model.h"

namespace {

// Owns the model from static initialization (the suite's parameters are read then) until
// gtest's global tear-down, while the env layer is still alive.
class ModelEnvironment : public ::testing::Environment {
 public:
  ModelEnvironment() {
    sluice::nvme::testing::ModelOptions mo;
    mo.bdf = "0000:fd:00.0";
    mo.namespaces = {{1, 512, 64 << 11}};  // 64 MiB, as the other backends
    model_ = std::make_shared<sluice::nvme::testing::ControllerModel>(mo);
    model_->register_as_test_device();
    (void)sluice::nvme::register_bdev_scheme();
    setenv("SLUICE_CONFORMANCE_SPEC", "nvme:0000:fd:00.0", 0);
  }
  void TearDown() override {
    EXPECT_EQ(model_->violations(), 0u) << model_->last_violation();
    model_.reset();
  }

 private:
  std::shared_ptr<sluice::nvme::testing::ControllerModel> model_;
};

// gtest owns and deletes registered environments.
[[maybe_unused]] ::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new ModelEnvironment);

}  // namespace
