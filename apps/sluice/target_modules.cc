// The targets `sluice serve` offers. Each is a daemon::Module: its RPC methods, its part of
// save_config and its shutdown.
#include "commands.h"

namespace sluice::cli {

std::vector<daemon::Module> target_modules() { return {}; }

}  // namespace sluice::cli
