// The vhost-user target as a module of `sluice serve`: SPDK's vhost_* methods, its part of
// save_config and its shutdown (docs/rpc.md).
#pragma once

#include "daemon/daemon.h"

namespace sluice::vhost {

daemon::Module rpc_module();

}  // namespace sluice::vhost
