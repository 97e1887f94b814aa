// sluice: one CLI with git-style subcommands. This file registers them and runs the chosen
// one through run_guarded (cli.h); `sluice help [COMMAND]` and a mistyped command name are
// answered here, before CLI11, which would only say that a subcommand is required.
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.h"

namespace {

using namespace sluice::cli;

// The word in argv that names no subcommand where one is expected ("bogus" in `sluice bogus`
// or `sluice fs bogus`) and the command it was given to ("sluice fs"); bad is null when there
// is none. The walk stops at the first option: what follows it may be the option's value.
struct UnknownWord {
  const char* bad = nullptr;
  std::string command = "sluice";
};
UnknownWord unknown_subcommand(const CLI::App& app, int argc, char** argv) {
  std::string command = "sluice";
  const CLI::App* at = &app;
  for (int i = 1; i < argc && argv[i][0] != '-'; ++i) {
    const auto subs = at->get_subcommands({});
    if (subs.empty()) break;
    const CLI::App* next = nullptr;
    for (const CLI::App* s : subs)
      if (s->check_name(argv[i])) next = s;
    if (next == nullptr) return {argv[i], command};
    command += " " + next->get_name();
    at = next;
  }
  return {};
}

// `sluice help` prints the overview, `sluice help COMMAND` that command's options.
int help(CLI::App& app, int argc, char** argv) {
  if (argc <= 2) {
    fmt::print("{}", app.help());
    return kExitOk;
  }
  if (const UnknownWord w = unknown_subcommand(app, argc - 1, argv + 1); w.bad != nullptr) {
    fmt::print(stderr, "sluice help: unknown subcommand '{}' (see {} --help)\n", w.bad, w.command);
    return kExitUsage;
  }
  CLI::App* at = &app;
  for (int i = 2; i < argc && argv[i][0] != '-'; ++i) at = at->get_subcommand(argv[i]);
  fmt::print("{}", at->help());
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Sluice: a userspace storage stack", "sluice"};
  app.require_subcommand(1, 1);
  app.set_help_all_flag("--help-all", "Print help for every subcommand and exit");
  app.set_version_flag("--version", "sluice " SLUICE_VERSION);
  app.footer("`sluice help COMMAND` or `sluice COMMAND --help` lists a command's options.");

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
      add_migrate(app),
      add_serve(app),
      add_rpc(app),
      add_top(app),
  };
  apply_option_rules(app);

  if (argc >= 2 && std::string(argv[1]) == "help") return help(app, argc, argv);
  if (const UnknownWord w = unknown_subcommand(app, argc, argv); w.bad != nullptr) {
    fmt::print(stderr, "{}: unknown subcommand '{}' (see {} --help)\n", w.command, w.bad, w.command);
    return kExitUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --help-all, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string where = "sluice";
    for (const CLI::App* sub = &app; !sub->get_subcommands().empty();) {
      sub = sub->get_subcommands().front();
      where += " " + sub->get_name();
    }
    fmt::print(stderr, "{}: {} (see {} --help)\n", where, e.what(), where);
    return kExitUsage;
  }
  for (const Subcommand& c : commands)
    if (c.app->parsed()) return run_guarded(c.app->get_name(), c.run);
  return kExitUsage;
}
