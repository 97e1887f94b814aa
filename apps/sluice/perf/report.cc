#include "perf/report.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "base/clock.h"
#include "base/size.h"
#include "perf/core_list.h"

namespace sluice::perf {

namespace {

double us_of_ticks(double ticks) { return clock::ticks_to_ns(ticks) / 1000.0; }

void fill_latency(Metrics& m, const Histogram& h) {
  if (h.count() == 0) return;
  m.lat_avg_us = us_of_ticks(h.mean());
  m.lat_p50_us = us_of_ticks(static_cast<double>(h.percentile(0.50)));
  m.lat_p99_us = us_of_ticks(static_cast<double>(h.percentile(0.99)));
  m.lat_p999_us = us_of_ticks(static_cast<double>(h.percentile(0.999)));
}

double per_second(uint64_t n, uint64_t ns) { return ns ? static_cast<double>(n) * 1e9 / static_cast<double>(ns) : 0.0; }

// Short decimals in JSON: 3 places are far below what any of these numbers can resolve.
double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

nlohmann::ordered_json metrics_json(const Metrics& m) {
  nlohmann::ordered_json j;
  j["ios"] = m.ios;
  j["iops"] = round3(m.iops);
  j["mib_s"] = round3(m.mib_s);
  j["errors"] = m.errors;
  j["lat_us"] = {{"avg", round3(m.lat_avg_us)},
                 {"p50", round3(m.lat_p50_us)},
                 {"p99", round3(m.lat_p99_us)},
                 {"p999", round3(m.lat_p999_us)}};
  j["cpu_ns_per_io"] = round3(m.cpu_ns_per_io);
  return j;
}

std::string joined_targets(const RunInfo& info) {
  std::string out;
  for (const auto& t : info.targets) out += (out.empty() ? "" : ",") + t;
  return out;
}

double duration_s(const std::vector<JobResult>& jobs) {
  uint64_t ns = 0;
  for (const auto& j : jobs) ns = std::max(ns, j.elapsed_ns);
  return static_cast<double>(ns) / 1e9;
}

std::string workload_label(const RunInfo& info) {
  return info.verify_only ? "verify (check only)" : std::string(workload_name(info.workload));
}

}  // namespace

Metrics job_metrics(const JobResult& job, uint64_t io_size) {
  Metrics m;
  m.ios = job.stats.ios;
  m.errors = job.stats.errors;
  m.iops = per_second(m.ios, job.elapsed_ns);
  m.mib_s = m.iops * static_cast<double>(io_size) / (1 << 20);
  fill_latency(m, job.stats.latency_ticks);
  m.cpu_ns_per_io = m.ios ? job.cpu_ns / static_cast<double>(m.ios) : 0.0;
  return m;
}

Metrics total_metrics(const std::vector<JobResult>& jobs, uint64_t io_size) {
  Metrics t;
  Histogram all;
  double cpu = 0;
  for (const auto& j : jobs) {
    Metrics m = job_metrics(j, io_size);
    t.ios += m.ios;
    t.errors += m.errors;
    t.iops += m.iops;
    t.mib_s += m.mib_s;
    cpu += j.cpu_ns;
    all.merge(j.stats.latency_ticks);
  }
  fill_latency(t, all);
  t.cpu_ns_per_io = t.ios ? cpu / static_cast<double>(t.ios) : 0.0;
  return t;
}

nlohmann::ordered_json report_json(const RunInfo& info, const std::vector<JobResult>& jobs) {
  nlohmann::ordered_json out;
  out["target"] = joined_targets(info);
  out["workload"] = workload_name(info.workload);
  out["io_size"] = info.io_size;
  out["queue_depth"] = info.queue_depth;
  out["duration_s"] = std::round(duration_s(jobs) * 1e6) / 1e6;
  out["cores"] = info.cores;
  out["seed"] = info.seed;
  if (info.verify_only) out["verify_only"] = true;
  if (info.interrupted) out["interrupted"] = true;
  auto& js = out["jobs"] = nlohmann::ordered_json::array();
  for (const auto& j : jobs) {
    nlohmann::ordered_json e;
    e["core"] = j.core;
    if (info.targets.size() > 1) e["target"] = j.target;
    e.update(metrics_json(job_metrics(j, info.io_size)));
    if (info.workload == Workload::verify) e["verify_passes"] = j.stats.verify_passes;
    if (!j.stats.first_error.empty()) e["first_error"] = j.stats.first_error;
    js.push_back(std::move(e));
  }
  out["total"] = metrics_json(total_metrics(jobs, info.io_size));
  return out;
}

std::string report_table(const RunInfo& info, const std::vector<JobResult>& jobs) {
  std::string passes;
  if (info.workload == Workload::verify) {
    uint64_t n = 0;
    for (const auto& j : jobs) n += j.stats.verify_passes;
    passes = fmt::format(", {} verify pass{}", n, n == 1 ? "" : "es");
  }
  std::string out = fmt::format("{} on {}: io {}, qd {}, {:.2f} s, cores {}, seed {}{}{}\n", workload_label(info),
                                joined_targets(info), format_size(info.io_size), info.queue_depth, duration_s(jobs),
                                format_core_list(info.cores), info.seed, passes,
                                info.interrupted ? " (interrupted)" : "");
  const bool many_targets = info.targets.size() > 1;
  out += fmt::format("{:>5} {:>13} {:>10} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9}{}\n", "core", "IOPS", "MiB/s", "avg us",
                     "p50 us", "p99 us", "p99.9 us", "errors", "cpu ns/io", many_targets ? "  target" : "");
  auto row = [&](std::string_view label, const Metrics& m, std::string_view target) {
    out += fmt::format("{:>5} {:>13.1f} {:>10.1f} {:>9.2f} {:>9.2f} {:>9.2f} {:>9.2f} {:>7} {:>9.1f}{}{}\n", label,
                       m.iops, m.mib_s, m.lat_avg_us, m.lat_p50_us, m.lat_p99_us, m.lat_p999_us, m.errors,
                       m.cpu_ns_per_io, target.empty() ? "" : "  ", target);
  };
  for (const auto& j : jobs)
    row(fmt::format("{}", j.core), job_metrics(j, info.io_size), many_targets ? std::string_view(j.target) : "");
  if (jobs.size() > 1) row("total", total_metrics(jobs, info.io_size), "");
  return out;
}

}  // namespace sluice::perf
