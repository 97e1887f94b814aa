// The backends a spec can name, and what their factories receive. Each backend lives in its
// own file; spec.cc maps scheme names to these factories.
#pragma once

#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "bdev/backend.h"

namespace sluice::bdev {

struct SpecArgs {
  std::string name;    // the name to register under
  std::string scheme;  // "malloc"
  std::string target;  // "64M", "/dev/loop0", or a nested spec for virtual bdevs
  std::map<std::string, std::string, std::less<>> options;  // from "?key=value&..."

  // Fails with a clear message on an option this backend does not know.
  Status check_known(std::initializer_list<std::string_view> keys) const;
  Result<uint64_t> size_option(std::string_view key, uint64_t fallback) const;
  // Options every backend takes: bs (block size), qd (requests per channel), mt (maximum
  // transfer, bytes). Call after setting the backend's own defaults.
  Status apply_common(Geometry& g) const;
};

Result<std::shared_ptr<Bdev>> make_null_bdev(const SpecArgs& args);
Result<std::shared_ptr<Bdev>> make_malloc_bdev(const SpecArgs& args);
Result<std::shared_ptr<Bdev>> make_uring_bdev(const SpecArgs& args);
Result<std::shared_ptr<Bdev>> make_aio_bdev(const SpecArgs& args);
Result<std::shared_ptr<Bdev>> make_error_bdev(const SpecArgs& args);
Result<std::shared_ptr<Bdev>> make_crashsim_bdev(const SpecArgs& args);

}  // namespace sluice::bdev
