// What `sluice top` shows: two snapshots of a daemon's counters, a second apart, turned
// into rates. Pure functions over the RPC results, so they are tested without a daemon.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::top {

using Json = nlohmann::json;

// One snapshot: the results of framework_get_reactors, bdev_get_iostat, bdev_get_bdevs and
// nbd_get_exports (null when the daemon has no NBD target).
struct Snapshot {
  double seconds = 0;  // when it was taken, on any monotonic clock
  Json reactors, iostat, bdevs, exports;
};

struct ReactorRow {
  int lcore = -1;
  std::string name;
  double busy_pct = 0;         // of loop iterations that found work
  double sleeps_per_sec = 0;   // an idle reactor sleeps instead of spinning
  double messages_per_sec = 0;
};

struct BdevRow {
  std::string name, kind;
  double read_iops = 0, write_iops = 0, read_mibps = 0, write_mibps = 0;
  double avg_latency_us = 0;  // over the reads and writes of the interval
  double avg_queue_depth = 0;  // Little's law: I/Os per second x their average latency
  uint64_t errors = 0;        // during the interval
  std::string limits;         // "20000 IOPS, w 64 MiB/s", or "" without any
  double iops() const { return read_iops + write_iops; }
  double mibps() const { return read_mibps + write_mibps; }
};

struct ExportRow {
  std::string name, bdev;
  bool read_only = false;
  uint64_t connections = 0;
};

struct View {
  double interval = 0;
  std::vector<ReactorRow> reactors;
  std::vector<BdevRow> bdevs;
  std::vector<ExportRow> exports;
};

enum class SortKey { iops, mibps, latency, name };

// The rates between `before` and `after` (same daemon, `after` later), bdevs sorted.
View make_view(const Snapshot& before, const Snapshot& after, SortKey sort);
Json view_json(const View& v);
// The text screen, `width` columns at most.
std::string render(const View& v, SortKey sort, const std::string& socket);

}  // namespace sluice::top
