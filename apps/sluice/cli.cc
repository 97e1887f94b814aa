#include "cli.h"

#include <fmt/format.h>

namespace sluice::cli {

int fail(std::string_view command, int code, std::string_view message) {
  fmt::print(stderr, "sluice {}: {}\n", command, message);
  return code;
}

int exit_code_for(const Status& status) {
  switch (status.code()) {
    case Errc::invalid_argument:
    case Errc::out_of_range: return kExitUsage;
    default: return kExitFailure;
  }
}

}  // namespace sluice::cli
