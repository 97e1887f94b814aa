#include "cli.h"

#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "base/log.h"
#include "base/number.h"

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

int run_guarded(std::string_view command, const std::function<int()>& run) {
  quiet_store_logs();
  try {
    return run();
  } catch (const std::exception& e) {  // e.g. bad_alloc: a message, never a crash
    return fail(command, kExitFailure, fmt::format("internal error: {}", e.what()));
  }
}

namespace {

// CLI11 converts with strtoull/strtold (base 0, leading space, a sign, hex, octal, and an
// overflow saturates); this runs first, on the text as typed. The type name (before any
// validator's ":description") tells what the option holds.
void check_numbers(CLI::Option* opt) {
  const std::string full = opt->get_type_name();
  const std::string type = full.substr(0, full.find(':'));
  if (type != "UINT" && type != "INT" && type != "FLOAT") return;
  opt->check(CLI::Validator(
      [type](std::string& text) -> std::string {
        std::string_view digits = text;
        if (type == "INT" && digits.starts_with('-')) digits.remove_prefix(1);
        Status st = type == "FLOAT" ? parse_decimal(digits, 0, HUGE_VAL).status() : parse_uint(digits).status();
        return st.ok() ? std::string() : st.message();
      },
      "", "strict number"));
}

}  // namespace

void apply_option_rules(CLI::App& app) {
  for (CLI::Option* opt : app.get_options()) {
    if (opt->get_expected_max() == 0) continue;  // a flag takes no value
    check_numbers(opt);
    if (opt->get_expected_max() == 1 && !opt->get_positional())
      opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  }
  for (CLI::App* sub : app.get_subcommands({})) apply_option_rules(*sub);
}

void print_json(const nlohmann::json& j) {
  fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

void quiet_store_logs() {
  if (std::getenv("SLUICE_LOG") == nullptr) log::set_threshold(log::Level::warn);
}

}  // namespace sluice::cli
