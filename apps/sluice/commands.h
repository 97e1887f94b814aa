// Every subcommand of the sluice CLI, one file each; main.cc registers them in this order.
#pragma once

#include <vector>

#include "cli.h"
#include "daemon/daemon.h"

namespace sluice::cli {

Subcommand add_perf(CLI::App& app);  // perf_command.cc
Subcommand add_blob(CLI::App& app);  // blob_command.cc
Subcommand add_lvol(CLI::App& app);  // lvol_command.cc
Subcommand add_nvme(CLI::App& app);  // nvme_command.cc
Subcommand add_setup(CLI::App& app);  // setup_command.cc
Subcommand add_mkfs(CLI::App& app);   // fs_command.cc
Subcommand add_fsck(CLI::App& app);   // fs_command.cc
Subcommand add_fs(CLI::App& app);     // fs_command.cc
Subcommand add_migrate(CLI::App& app);  // migrate_command.cc (with the RocksDB plugin)
Subcommand add_mount(CLI::App& app);  // mount_command.cc
Subcommand add_serve(CLI::App& app);  // serve_command.cc
Subcommand add_rpc(CLI::App& app);    // serve_command.cc
Subcommand add_top(CLI::App& app);    // top_command.cc

// The daemon modules of the targets built in (target_modules.cc).
std::vector<daemon::Module> target_modules();

}  // namespace sluice::cli
