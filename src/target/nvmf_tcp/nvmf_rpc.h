// The NVMe-oF target (TCP) as a module of `sluice serve`: SPDK's nvmf_* RPC methods, its part
// of save_config and its shutdown (docs/nvmf.md).
#pragma once

#include "daemon/daemon.h"

namespace sluice::nvmf {

daemon::Module rpc_module();

}  // namespace sluice::nvmf
