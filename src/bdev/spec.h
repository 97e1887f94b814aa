// What a spec's factory receives: the parsed "scheme:target[?key=value&...]". Public so that
// layers above the bdev layer can register schemes of their own (bdev::register_scheme).
#pragma once

#include <initializer_list>
#include <map>
#include <string>
#include <string_view>

#include "base/status.h"
#include "bdev/bdev.h"

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

}  // namespace sluice::bdev
