// sluice_model_cli: the sluice CLI with the software NVMe controller model (src/nvme/testing)
// linked in, for tests on machines without NVMe (nvme_cli_test.sh). SLUICE_NVME_MODEL=BDF[,BDF...]
// puts a model with namespaces of 128 MiB/512 B and 64 MiB/4 KiB at each BDF, so `sluice nvme
// ...` and `-T nvme:BDF` reach it. The shipped `sluice` has no model and no such variable.
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "nvme/nvme.h"
#include "nvme/testing/controller_model.h"

namespace {

using sluice::nvme::testing::ControllerModel;

// Before main(): the registry it fills is built on first use (pci_open.cc), so order is safe.
bool register_models_from_env() {
  // Leaked on purpose: they must outlive every static that refers to them at exit.
  static auto* models = new std::vector<std::shared_ptr<ControllerModel>>;
  const char* env = std::getenv("SLUICE_NVME_MODEL");
  if (env == nullptr || *env == '\0') return false;
  const std::string list = env;
  for (size_t at = 0; at <= list.size();) {
    const size_t comma = std::min(list.find(',', at), list.size());
    auto bdf = sluice::nvme::canonical_bdf(list.substr(at, comma - at));
    at = comma + 1;
    if (!bdf.ok()) continue;
    sluice::nvme::testing::ModelOptions mo;
    mo.bdf = *bdf;
    mo.namespaces = {{1, 512, 128 << 11}, {2, 4096, 64 << 8}};  // 128 MiB and 64 MiB
    auto model = std::make_shared<ControllerModel>(mo);
    model->register_as_test_device();
    models->push_back(std::move(model));
  }
  return true;
}

[[maybe_unused]] const bool kModels = register_models_from_env();

}  // namespace
