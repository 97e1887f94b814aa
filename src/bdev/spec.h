// What a spec's factory receives: the parsed "scheme:target[?key=value&...]". Public so that
// layers above the bdev layer can register schemes of their own (bdev::register_scheme).
#pragma once

#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "bdev/bdev.h"

namespace sluice::bdev {

// The options of a spec or URI, "key=value&key=value" (what follows its '?'), in order.
// Every parser of such options in Sluice is this one: a pair without '=' or with an empty
// key, and a key given twice (which value was meant?), are errors that name it; a stray '&'
// is skipped.
using OptionList = std::vector<std::pair<std::string, std::string>>;
Result<OptionList> parse_options(std::string_view query);

// "target?options" split at the first '?': the target, and the parsed options (empty without one).
struct TargetWithOptions {
  std::string_view target;
  OptionList options;
};
Result<TargetWithOptions> split_options(std::string_view text);

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
