#include "perf/plan.h"

#include <fmt/format.h>

#include "base/log.h"
#include "base/size.h"
#include "perf/rng.h"

namespace sluice::perf {

RunPlan::~RunPlan() {
  cores_.clear();
  descs_.clear();
  for (const auto& name : devices_) (void)bdev::unregister(name);
}

Status RunPlan::build(const PerfOptions& opts) {
  const bool writes = workload_writes(opts.workload, opts.verify_only);
  const uint64_t jobs_per_target = opts.cores.size();
  for (int core : opts.cores) cores_.push_back(CoreJobs{core, {}});

  for (size_t t = 0; t < opts.targets.size(); ++t) {
    const std::string& spec = opts.targets[t];
    auto name = bdev::create(spec);
    if (!name.ok()) return name.status();
    devices_.push_back(*name);
    bdev::OpenOptions oo;
    oo.write = writes;
    std::vector<std::unique_ptr<bdev::BdevDesc>> handles;  // one per job
    for (size_t c = 0; c < cores_.size(); ++c) {
      auto desc = bdev::open(*name, oo);
      if (!desc.ok()) return Status(desc.status().code(), fmt::format("{}: {}", spec, desc.status().message()));
      handles.push_back(std::move(desc.value()));
    }
    const bdev::Geometry& geo = handles.front()->geometry();

    if (opts.io_size % geo.block_size != 0)
      return Status(Errc::invalid_argument, fmt::format("io size {} is not a multiple of the block size {} of {}",
                                                        opts.io_size, geo.block_size, spec));
    const uint64_t io_blocks = opts.io_size / geo.block_size;
    const uint64_t device_ios = geo.num_blocks / io_blocks;
    if (device_ios == 0)
      return Status(Errc::invalid_argument, fmt::format("io size {} is larger than {} ({})", format_size(opts.io_size),
                                                        spec, format_size(geo.size_bytes())));
    const uint64_t ios_per_job = device_ios / jobs_per_target;
    if (ios_per_job == 0)
      return Status(Errc::invalid_argument, fmt::format("{} is too small for {} jobs of {} I/Os", spec,
                                                        jobs_per_target, format_size(opts.io_size)));
    if (workload_reads(opts.workload) && !geo.supports(bdev::IoType::read))
      return Status(Errc::not_supported, fmt::format("{} does not support reads", spec));
    if (writes && !geo.supports(bdev::IoType::write))
      return Status(Errc::not_supported, fmt::format("{} does not support writes", spec));

    if (opts.queue_depth > geo.queue_depth)
      log::warn("queue depth {} exceeds the {} requests a channel of {} takes; the rest wait their turn",
                opts.queue_depth, geo.queue_depth, spec);

    for (size_t c = 0; c < cores_.size(); ++c) {
      JobConfig jc;
      jc.target = spec;
      jc.desc = handles[c].get();
      jc.workload = opts.workload;
      jc.verify_only = opts.verify_only;
      jc.io_size = opts.io_size;
      jc.queue_depth = opts.queue_depth;
      jc.rwmixread = opts.rwmixread;
      jc.seed = opts.seed;
      jc.rng_seed = mix64(opts.seed ^ mix64(t * 1024 + c + 1));
      jc.first_block = c * ios_per_job * io_blocks;
      jc.num_ios = ios_per_job;
      descs_.push_back(std::move(handles[c]));
      cores_[c].jobs.push_back(std::make_unique<Job>(std::move(jc)));
    }
  }
  return Status::Ok();
}

}  // namespace sluice::perf
