// The NBD target as a module of `sluice serve`: its RPC methods, its part of save_config and
// its shutdown (docs/rpc.md).
#pragma once

#include "daemon/daemon.h"

namespace sluice::nbd {

daemon::Module rpc_module();

}  // namespace sluice::nbd
