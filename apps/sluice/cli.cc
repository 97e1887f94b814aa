#include "cli.h"

#include <cstdlib>

#include <fmt/format.h>

#include "base/log.h"

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

void print_json(const nlohmann::json& j) {
  fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

void quiet_store_logs() {
  if (std::getenv("SLUICE_LOG") == nullptr) log::set_threshold(log::Level::warn);
}

}  // namespace sluice::cli
