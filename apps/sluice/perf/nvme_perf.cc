#include "perf/nvme_perf.h"

#include <algorithm>
#include <random>
#include <vector>

#include <fmt/format.h>

#include "base/clock.h"
#include "base/histogram.h"
#include "env/env.h"
#include "perf/stop_signal.h"

namespace sluice::cli {
namespace {

struct Slot {
  struct Run* run;
  void* buf;
  uint64_t start_ticks;
  bool busy;
};

struct Run {
  nvme::IoQueue* q;
  const NvmePerfOptions* opts;
  uint64_t blocks_per_io;
  uint64_t slots_in_range;  // I/O-sized slots in the namespace
  uint64_t next_seq = 0;
  std::mt19937_64 rng;
  Histogram lat;
  NvmePerfResult result;
  bool rand, mixed, all_writes;
  uint32_t block_size;
  bool stopping = false;
};

Errc submit(Slot& s);

void on_done(void* arg, const nvme::Completion& c) {
  auto* s = static_cast<Slot*>(arg);
  Run& r = *s->run;
  s->busy = false;
  r.lat.record(clock::ticks() - s->start_ticks);
  if (!c.ok()) {
    if (r.result.errors++ == 0) r.result.first_error = nvme::completion_status(c, "I/O").message();
  } else {
    ++r.result.ios;
    r.result.bytes += r.opts->io_bytes;
  }
  if (!r.stopping) (void)submit(*s);
}

Errc submit(Slot& s) {
  Run& r = *s.run;
  const uint64_t index = r.rand ? r.rng() % r.slots_in_range : r.next_seq++ % r.slots_in_range;
  const bool write = r.all_writes || (r.mixed && r.rng() % 100 >= r.opts->read_percent);
  iovec v = {s.buf, r.opts->io_bytes};
  s.start_ticks = clock::ticks();
  const uint64_t lba = index * r.blocks_per_io;
  const auto nlb = static_cast<uint32_t>(r.blocks_per_io);
  Errc e = write ? r.q->write(r.opts->nsid, &v, 1, lba, nlb, on_done, &s)
                 : r.q->read(r.opts->nsid, &v, 1, lba, nlb, on_done, &s);
  s.busy = e == Errc::ok;
  return e;
}

double ticks_us(double t) { return clock::ticks_to_ns(t) / 1000.0; }

}  // namespace

Result<NvmePerfResult> run_nvme_perf(nvme::Controller& ctrl, const NvmePerfOptions& opts) {
  auto ns = ctrl.namespace_info(opts.nsid);
  if (!ns.ok()) return ns.status();
  if (opts.io_bytes == 0 || opts.io_bytes % ns->block_size != 0)
    return Status(Errc::invalid_argument, fmt::format("I/O size {} is not a multiple of the block size {}", opts.io_bytes, ns->block_size));
  if (opts.io_bytes > ctrl.info().max_transfer_bytes)
    return Status(Errc::invalid_argument, fmt::format("I/O size {} exceeds the controller's maximum transfer of {}",
                                                      opts.io_bytes, ctrl.info().max_transfer_bytes));
  Run r;
  r.opts = &opts;
  r.block_size = ns->block_size;
  r.blocks_per_io = opts.io_bytes / ns->block_size;
  r.slots_in_range = ns->size_blocks / r.blocks_per_io;
  if (r.slots_in_range == 0) return Status(Errc::invalid_argument, "the namespace is smaller than one I/O");
  r.rng.seed(opts.seed);
  r.rand = opts.workload.rfind("rand", 0) == 0;
  r.mixed = opts.workload == "randrw";
  r.all_writes = opts.workload == "write" || opts.workload == "randwrite";
  if (!r.mixed && !r.all_writes && opts.workload != "read" && opts.workload != "randread")
    return Status(Errc::invalid_argument, fmt::format("unknown workload '{}'", opts.workload));

  auto q = ctrl.create_io_queue(opts.queue_depth + 1);
  if (!q.ok()) return q.status();
  r.q = q->get();
  const uint32_t depth = std::min(opts.queue_depth, (*q)->capacity());
  std::vector<Slot> slots(depth);
  std::vector<env::DmaBuffer> buffers;
  for (uint32_t i = 0; i < depth; ++i) {
    buffers.emplace_back(opts.io_bytes);
    if (!buffers.back()) return Status(Errc::no_space, "no DMA memory for the I/O buffers");
    std::memset(buffers.back().data(), static_cast<int>(i), opts.io_bytes);
    slots[i] = {&r, buffers.back().data(), 0, false};
  }

  const uint64_t cpu0 = clock::thread_cpu_ns(), wall0 = clock::now_ns();
  const uint64_t end = wall0 + static_cast<uint64_t>(opts.seconds * 1e9);
  for (Slot& s : slots)
    if (Errc e = submit(s); e != Errc::ok) return Status(e, "the first submissions failed");
  uint64_t polls = 0;
  while (true) {
    (*q)->poll();
    if ((++polls & 255) == 0 && (clock::now_ns() >= end || perf::stop_requested())) break;
  }
  r.stopping = true;
  const uint64_t drain_deadline = clock::now_ns() + 10'000'000'000ull;
  while ((*q)->outstanding() != 0 && clock::now_ns() < drain_deadline) (*q)->poll();
  const uint64_t wall = clock::now_ns() - wall0, cpu = clock::thread_cpu_ns() - cpu0;

  NvmePerfResult& res = r.result;
  res.seconds = static_cast<double>(wall) / 1e9;
  res.iops = static_cast<double>(res.ios) / res.seconds;
  res.mib_per_s = static_cast<double>(res.bytes) / res.seconds / (1 << 20);
  res.lat_avg_us = ticks_us(r.lat.mean());
  res.lat_p50_us = ticks_us(static_cast<double>(r.lat.percentile(0.5)));
  res.lat_p99_us = ticks_us(static_cast<double>(r.lat.percentile(0.99)));
  res.lat_p999_us = ticks_us(static_cast<double>(r.lat.percentile(0.999)));
  res.lat_max_us = ticks_us(static_cast<double>(r.lat.percentile(1.0)));
  res.cpu_ns_per_io = res.ios + res.errors ? static_cast<double>(cpu) / static_cast<double>(res.ios + res.errors) : 0;
  res.bounces = (*q)->stats().bounces;
  res.doorbells = (*q)->stats().doorbells;
  if ((*q)->outstanding() != 0) return Status(Errc::io_error, "commands still outstanding 10 s after the run");
  return res;
}

}  // namespace sluice::cli
