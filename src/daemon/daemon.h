// The serving daemon (`sluice serve`): reactors on a core list, the JSON-RPC server, the
// config applied at start, and an orderly shutdown. Each module (the bdev methods, each
// target) registers its RPC methods and its part of save_config; the daemon knows nothing
// of any one target.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "rpc/rpc.h"

namespace sluice::daemon {

struct ServeOptions {
  std::string cores = "0";                         // reactor core list
  std::string rpc_socket = "/var/tmp/sluice.sock";  // mode 0600
  std::string config_path;                         // SPDK JSON config applied at start, if set
  // Called once the config is applied and the RPC socket accepts.
  std::function<void()> on_ready;
};

// A part of the daemon: its methods, and what it must do at shutdown (before the reactors
// stop: close its connections, finish or fail what is in flight, release its channels).
struct Module {
  std::string name;  // its subsystem name in save_config ("bdev", "nbd")
  std::function<void(rpc::Registry&)> add_methods;
  std::function<void()> shutdown;
};

// Runs until SIGINT or SIGTERM (blocked in the calling thread here, so call it from main()
// before other threads exist), then shuts down in order: the RPC server stops accepting,
// modules shut down in reverse order, every device that was written is flushed, devices
// are deleted, reactors stop. Fails before serving anything when the config does not load.
Status serve(const ServeOptions& options, const std::vector<Module>& modules);

// The modules the daemon always has: framework (versions, reactors, save_config) and bdev.
Module framework_module(const std::vector<int>& cores);
Module bdev_module();
// Deletes every bdev the bdev module created, after flushing those that were written.
void delete_created_bdevs();

}  // namespace sluice::daemon
