// What the sluice CLI's subcommands share: how main() runs them and how they fail.
//
// Exit codes: 0 success, 1 a runtime failure (a device cannot be opened, an I/O error, a
// verify mismatch), 2 a usage error (a bad option value), 130 interrupted (Ctrl-C).
// Every failure prints one line to stderr: "sluice <command>: <what went wrong>".
#pragma once

#include <functional>
#include <string_view>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "base/status.h"

namespace sluice::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitInterrupted = 130;

// A registered subcommand: its CLI11 node and what to run when the command line chose it.
struct Subcommand {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

// Prints "sluice <command>: <message>" to stderr and returns `code`.
int fail(std::string_view command, int code, std::string_view message);
// Usage for malformed input (invalid_argument, out_of_range), failure for everything else.
int exit_code_for(const Status& status);

// Runs a chosen command's body the one way every command runs (main() calls it): the
// storage layers' logs quieted (quiet_store_logs), and an exception that escapes (bad_alloc,
// a std::filesystem error) turned into one line and exit 1 instead of ending the process.
int run_guarded(std::string_view command, const std::function<int()>& run);

// The rules every option of `app` and its subcommands follows, applied once after all are
// registered: a number is read strictly (base/number.h: "1abc", "010", "-1" are usage
// errors, not 1, 8 and 2^64-1), and an option that takes one value may be repeated, the last
// one winning (as in most Unix tools; positionals keep CLI11's rules).
void apply_option_rules(CLI::App& app);

// Pretty-printed JSON on stdout (invalid UTF-8 in names replaced, never an exception).
void print_json(const nlohmann::json& j);
// The storage layers' own log lines (a damaged super block copy, recovery progress) repeat
// what the commands report themselves: warnings and worse only, unless SLUICE_LOG is set.
void quiet_store_logs();

}  // namespace sluice::cli
