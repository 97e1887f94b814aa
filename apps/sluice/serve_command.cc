// `sluice serve`: the daemon (src/daemon). `sluice rpc`: one JSON-RPC call to it.
#include <fmt/format.h>

#include "commands.h"
#include "daemon/daemon.h"
#include "target/vhost/vhost.h"
#include "thread/thread.h"

namespace sluice::cli {
namespace {

constexpr std::string_view kServe = "serve";
constexpr std::string_view kRpc = "rpc";

int run_serve(const daemon::ServeOptions& options, const std::string& vhost_dir) {
  auto cores = thread::parse_core_list(options.cores);
  if (!cores.ok()) return fail(kServe, kExitUsage, cores.status().message());
  if (!vhost_dir.empty())
    if (Status st = vhost::set_socket_dir(vhost_dir); !st.ok()) return fail(kServe, kExitUsage, st.message());
  std::vector<daemon::Module> modules = {daemon::framework_module(*cores), daemon::bdev_module(), daemon::lvol_module()};
  for (daemon::Module& m : target_modules()) modules.push_back(std::move(m));
  Status st = daemon::serve(options, modules);
  if (!st.ok()) return fail(kServe, exit_code_for(st), st.message());
  return kExitOk;
}

struct RpcArgs {
  std::string socket = "/var/tmp/sluice.sock";
  std::string method;
  std::string params;
  int timeout_s = 60;
};

int run_rpc(const RpcArgs& args) {
  rpc::Json params = nullptr;
  if (!args.params.empty()) {
    params = rpc::Json::parse(args.params, nullptr, false);
    if (params.is_discarded() || !params.is_object())
      return fail(kRpc, kExitUsage, fmt::format("PARAMS must be a JSON object, not {}", args.params));
  }
  auto response = rpc::call(args.socket, args.method, params, args.timeout_s * 1000);
  if (!response.ok()) return fail(kRpc, kExitFailure, response.status().message());
  if (response->contains("error")) {
    const rpc::Json& e = (*response)["error"];
    const std::string message = e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : e.dump();
    return fail(kRpc, kExitFailure, fmt::format("{}: {} (code {})", args.method, message, e.value("code", 0)));
  }
  print_json(response->value("result", rpc::Json(nullptr)));
  return kExitOk;
}

}  // namespace

Subcommand add_serve(CLI::App& app) {
  auto options = std::make_shared<daemon::ServeOptions>();
  auto vhost_dir = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("serve", "Run the storage daemon: devices and exports managed over JSON-RPC");
  cmd->footer(
      "The config is SPDK's JSON config format ({\"subsystems\": [{\"subsystem\": \"bdev\", \"config\": [{\"method\": ...,\n"
      "\"params\": {...}}]}]}): loading it calls those methods in order, and `sluice rpc save_config` prints the\n"
      "config that recreates the running state. docs/rpc.md lists the methods. SIGINT or SIGTERM shuts the daemon\n"
      "down in order: exports closed, written devices flushed, devices deleted.");
  cmd->add_option("-c,--config", options->config_path, "JSON config applied at start")->check(CLI::ExistingFile);
  cmd->add_option("-m,--cores", options->cores, "Reactor cores: 0 | 0-1 | 0,2-3")->capture_default_str();
  cmd->add_option("-r,--rpc-socket", options->rpc_socket, "The JSON-RPC Unix socket (created mode 0600)")
      ->capture_default_str();
  cmd->add_option("-S,--vhost-socket-dir", *vhost_dir, "Where vhost-user controllers' sockets go (default: the current directory)");
  return {cmd, [options, vhost_dir] { return run_serve(*options, *vhost_dir); }};
}

Subcommand add_rpc(CLI::App& app) {
  auto args = std::make_shared<RpcArgs>();
  CLI::App* cmd = app.add_subcommand("rpc", "Call a method of a running `sluice serve` and print its result as JSON");
  cmd->footer("Example: sluice rpc bdev_malloc_create '{\"num_blocks\": 32768, \"block_size\": 4096, \"name\": \"Malloc0\"}'\n"
              "`sluice rpc rpc_get_methods` lists the methods; docs/rpc.md describes them. Exit status: 0 ok,\n"
              "1 the method failed or the daemon cannot be reached, 2 usage.");
  cmd->add_option("-s,--server", args->socket, "The daemon's RPC socket")->capture_default_str();
  cmd->add_option("-t,--timeout", args->timeout_s, "Seconds to wait for the answer")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  cmd->add_option("method", args->method, "Method name")->required();
  cmd->add_option("params", args->params, "Parameters: a JSON object");
  return {cmd, [args] { return run_rpc(*args); }};
}

}  // namespace sluice::cli
