// `sluice perf`: drive block devices at a fixed queue depth and report IOPS, bandwidth,
// latency percentiles and CPU per I/O (like SPDK's bdevperf).
#include <random>

#include <fmt/format.h>

#include "base/size.h"
#include "bdev/device_spec.h"
#include "commands.h"
#include "perf/core_list.h"
#include "perf/plan.h"
#include "perf/report.h"
#include "perf/runner.h"
#include "perf/stop_signal.h"
#include "thread/thread.h"

namespace sluice::cli {

namespace {

struct PerfArgs {
  std::vector<std::string> targets;
  std::string workload = "randread";
  uint32_t queue_depth = 32;
  std::string io_size = "4k";
  double seconds = 5;
  std::string cores = "0";
  uint32_t rwmixread = 50;
  std::optional<uint64_t> seed;
  bool verify_only = false;
  bool json = false;
  bool threads = false;
  std::string poll = "adaptive";
  uint32_t spin_us = perf::kDefaultSpinUs;
};

constexpr std::string_view kPerfCmd = "perf";

int run_perf(const PerfArgs& args) {
  using namespace sluice::perf;
  PerfOptions opts;
  for (const std::string& t : args.targets) opts.targets.push_back(bdev::device_spec(t));
  opts.workload = *parse_workload(args.workload);  // CLI11 checked the name
  opts.verify_only = args.verify_only;
  if (opts.verify_only && opts.workload != Workload::verify)
    return fail(kPerfCmd, kExitUsage, "--verify-only needs -w verify");
  auto io_size = parse_size(args.io_size);
  if (!io_size.ok()) return fail(kPerfCmd, kExitUsage, fmt::format("--io-size: {}", io_size.status().message()));
  if (*io_size == 0 || *io_size > (1u << 30) || *io_size % 512 != 0)
    return fail(kPerfCmd, kExitUsage, fmt::format("--io-size: {} is not a multiple of 512 in [512, 1G]", args.io_size));
  opts.io_size = static_cast<uint32_t>(*io_size);
  if (uint64_t bytes = uint64_t{opts.io_size} * args.queue_depth; bytes > (uint64_t{4} << 30))
    return fail(kPerfCmd, kExitUsage, fmt::format("queue depth {} of {} I/Os needs {} of buffers per job; the limit is 4G",
                                              args.queue_depth, format_size(opts.io_size), format_size(bytes)));
  opts.queue_depth = args.queue_depth;
  opts.seconds = args.seconds;
  auto cores = thread::parse_core_list(args.cores);
  if (!cores.ok()) return fail(kPerfCmd, kExitUsage, fmt::format("--cores: {}", cores.status().message()));
  if (Status st = check_cores_available(*cores); !st.ok()) return fail(kPerfCmd, exit_code_for(st), st.message());
  opts.cores = *cores;
  opts.rwmixread = args.rwmixread;
  opts.seed = args.seed ? *args.seed : std::random_device{}() | uint64_t{std::random_device{}()} << 32;

  RunPlan plan;
  if (Status st = plan.build(opts); !st.ok()) return fail(kPerfCmd, exit_code_for(st), st.message());
  StopSignalGuard on_ctrl_c;
  const PollPolicy poll{*parse_poll_mode(args.poll), args.spin_us};  // CLI11 checked the name
  auto run = args.threads ? run_on_threads(plan.cores(), opts.seconds, poll)
                          : run_on_reactors(plan.cores(), opts.seconds, poll);
  if (!run.ok()) return fail(kPerfCmd, exit_code_for(run.status()), run.status().message());

  RunInfo info{opts.targets, opts.workload, opts.verify_only, opts.io_size, opts.queue_depth,
               opts.cores,   opts.seed,     run->interrupted};
  if (args.json) {
    fmt::print("{}\n", report_json(info, run->results).dump(2));
  } else {
    fmt::print("{}", report_table(info, run->results));
  }
  std::fflush(stdout);
  uint64_t errors = 0;
  for (const auto& r : run->results) {
    errors += r.stats.errors;
    if (!r.stats.first_error.empty()) fail(kPerfCmd, 0, fmt::format("core {}: {}", r.core, r.stats.first_error));
  }
  if (errors > 0) return kExitFailure;
  return run->interrupted ? kExitInterrupted : kExitOk;
}

}  // namespace

Subcommand add_perf(CLI::App& app) {
  auto args = std::make_shared<PerfArgs>();
  CLI::App* cmd = app.add_subcommand("perf", "Benchmark block devices: IOPS, bandwidth, latency, CPU per I/O");
  cmd->footer(
      "Targets are device specs: null:SIZE, malloc:SIZE, uring:PATH (or just PATH), aio:PATH, nvme:BDF[/NSID],\n"
      "nvme-tcp:ADDR:PORT/SUBNQN[/NSID] (NVMe over TCP; ?hdgst=1&ddgst=1 for digests),\n"
      "lvol:DEVICE/VOLUME (a volume of the lvol store on DEVICE, a spec or a path), error:SPEC, crashsim:SPEC,\n"
      "each optionally with ?bs=4096&qd=N and rate limits (rw_ios_per_sec, rw_mbytes_per_sec, r_mbytes_per_sec,\n"
      "w_mbytes_per_sec; MB = MiB) shared by every job on the device. One job per core and target; each job gets its own slice of the\n"
      "device. verify writes the job's slice, reads it back and compares, pass after pass; at the deadline\n"
      "it still reads back what it wrote, so it may run a little past -t. write, randwrite and rw write\n"
      "the verify pattern of --seed too, so `-w verify --verify-only --seed S` (one read pass) can check\n"
      "a device that an earlier run with seed S covered.\n"
      "Exit status: 0 ok, 1 I/O error or verify mismatch or device failure, 2 usage, 130 interrupted.");
  cmd->add_option("-T,--target", args->targets, "Device spec to run against (repeatable)")->required();
  std::vector<std::string> names = {"read", "write", "randread", "randwrite", "rw", "verify"};
  cmd->add_option("-w,--workload", args->workload, "Workload")->check(CLI::IsMember(names))->capture_default_str();
  cmd->add_option("-q,--queue-depth", args->queue_depth, "Requests in flight per job")
      ->check(CLI::Range(1u, 65536u))
      ->capture_default_str();
  cmd->add_option("-o,--io-size", args->io_size, "Bytes per I/O (4096, 4k, 1M, ...)")->capture_default_str();
  cmd->add_option("-t,--time", args->seconds, "Seconds to run (fractions allowed)")
      ->check(CLI::Range(0.001, 1e6))
      ->capture_default_str();
  cmd->add_option("-c,--cores", args->cores, "Cores to run jobs on: 0 | 0-1 | 0,2-3")->capture_default_str();
  cmd->add_option("-M,--rwmixread", args->rwmixread, "rw: percent of I/Os that are reads")
      ->check(CLI::Range(0u, 100u))
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Seed of offsets and the verify pattern (default: random, printed)");
  cmd->add_flag("--verify-only", args->verify_only,
                "verify: only read and check the pattern an earlier run with the same --seed wrote");
  cmd->add_flag("--json", args->json, "Print the results as JSON on stdout");
  cmd->add_flag("--threads", args->threads,
                "Drive each core from a plain pinned thread (as a foreign, non-reactor thread does) instead of a "
                "reactor poller");
  cmd->add_option("--poll", args->poll,
                  "While I/O is in flight and nothing completes: spin (poll without pause), adaptive (poll for "
                  "--spin-us, then sleep until a device signals a completion) or sleep (at once). Devices that "
                  "cannot signal (null, malloc, virtual bdevs) are always polled")
      ->check(CLI::IsMember({"spin", "adaptive", "sleep"}))
      ->capture_default_str();
  cmd->add_option("--spin-us", args->spin_us, "adaptive: microseconds to poll before sleeping")
      ->check(CLI::Range(0u, 1000000u))
      ->capture_default_str();
  return Subcommand{cmd, [args] { return run_perf(*args); }};
}

}  // namespace sluice::cli
