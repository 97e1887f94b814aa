// The bdev conformance suite (conformance_test.cc) as other layers reuse it: a device of a
// higher layer (an lvol volume, an NVMe namespace) passes the same assertions as the
// backends by adding itself here from a file linked into its own copy of the suite.
#pragma once

#include <functional>
#include <string>

#include "base/status.h"

namespace sluice::bdev {

struct ConformanceBackend {
  std::string label;  // test-name suffix
  std::string spec;   // "{file}" is replaced by a fresh 64 MiB file
  bool stores_data;   // false for null
  // Optional: makes what the device stands on (a store below a volume) and returns its spec,
  // used instead of `spec`; `cleanup` undoes it after the device is gone. Both run on the
  // test's thread, once per test.
  std::function<Result<std::string>()> prepare;
  std::function<void()> cleanup;
};

// Adds a backend to the suite; call during static initialization (the suite's parameters
// are read when gtest starts). An executable that adds backends runs only those: the
// built-in ones are bdev_conformance_test's.
bool add_conformance_backend(ConformanceBackend backend);

}  // namespace sluice::bdev
