// The iSCSI target as a module of `sluice serve`: SPDK's iscsi_* RPC methods with SPDK's
// parameter and result names, its part of save_config and its shutdown (docs/iscsi.md).
#pragma once

#include "daemon/daemon.h"

namespace sluice::iscsi {

daemon::Module rpc_module();

}  // namespace sluice::iscsi
