// The backends a spec can name, and what their factories receive. Each backend lives in its
// own file; spec.cc maps scheme names to these factories.
#pragma once

#include <memory>

#include "bdev/backend.h"
#include "bdev/spec.h"

namespace sluice::bdev {

Result<std::shared_ptr<Bdev>> make_null_bdev(const SpecArgs& args);
Result<std::shared_ptr<Bdev>> make_malloc_bdev(const SpecArgs& args);
Result<std::shared_ptr<Bdev>> make_uring_bdev(const SpecArgs& args);
Result<std::shared_ptr<Bdev>> make_aio_bdev(const SpecArgs& args);
Result<std::shared_ptr<Bdev>> make_error_bdev(const SpecArgs& args);
Result<std::shared_ptr<Bdev>> make_crashsim_bdev(const SpecArgs& args);

}  // namespace sluice::bdev
