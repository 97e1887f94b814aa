// sluice: one CLI with git-style subcommands. This file only registers them.
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.h"

int main(int argc, char** argv) {
  using namespace sluice::cli;
  CLI::App app{"Sluice: a userspace storage stack", "sluice"};
  app.require_subcommand(1, 1);
  app.set_help_all_flag("--help-all", "Print help for every subcommand and exit");

  std::vector<Subcommand> commands = {
      add_perf(app),
      add_blob(app),
      add_lvol(app),
      add_nvme(app),
      add_setup(app),
      add_mkfs(app),
      add_fsck(app),
      add_fs(app),
      add_mount(app),
  };
#ifdef SLUICE_HAVE_MIGRATE  // needs the RocksDB plugin
  commands.push_back(add_migrate(app));
#endif

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string where = "sluice";
    for (const CLI::App* sub : app.get_subcommands()) where += " " + sub->get_name();
    fmt::print(stderr, "{}: {} (see {} --help)\n", where, e.what(), where);
    return kExitUsage;
  }
  for (const Subcommand& c : commands)
    if (c.app->parsed()) return c.run();
  return kExitUsage;
}
