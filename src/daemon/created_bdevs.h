// The devices the daemon's methods made, each with the call that made it (save_config
// replays those calls), and the examine step that runs after a device is made. Internal to
// src/daemon.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "rpc/rpc.h"

namespace sluice::daemon {

// One call made `names` (an NVMe controller makes one device per namespace).
void remember(std::vector<std::string> names, std::string method, rpc::Json params);
// Drops `name`; a call whose devices are all gone is dropped with it.
void forget(std::string_view name);
// The calls whose devices still exist, in the order they ran, as {"method", "params"}.
rpc::Json created_calls();
// Every remembered device, in creation order; and forgetting them all (shutdown).
std::vector<std::string> created_names();
void forget_all();

// The NVMe controller methods (nvme_methods.cc), part of the bdev module as in SPDK.
void add_nvme_methods(rpc::Registry& r);

// Runs every examiner (daemon.h) on a device just made.
void examine(const std::string& bdev_name);

}  // namespace sluice::daemon
