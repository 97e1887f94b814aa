// The targets `sluice serve` offers. Each is a daemon::Module: its RPC methods, its part of
// save_config and its shutdown.
#include "commands.h"
#include "target/iscsi/iscsi_rpc.h"
#include "target/nbd/nbd_rpc.h"
#include "target/nvmf_tcp/nvmf_rpc.h"
#include "target/vhost/vhost_rpc.h"

namespace sluice::cli {

std::vector<daemon::Module> target_modules() {
  return {nbd::rpc_module(), nvmf::rpc_module(), iscsi::rpc_module(), vhost::rpc_module()};
}

}  // namespace sluice::cli
