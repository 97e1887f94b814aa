// Every subcommand of the sluice CLI, one file each; main.cc registers them in this order.
#pragma once

#include "cli.h"

namespace sluice::cli {

Subcommand add_perf(CLI::App& app);  // perf_command.cc
Subcommand add_blob(CLI::App& app);  // blob_command.cc
Subcommand add_lvol(CLI::App& app);  // lvol_command.cc

}  // namespace sluice::cli
