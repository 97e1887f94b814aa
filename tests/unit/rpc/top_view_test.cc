// `sluice top`'s rates from two snapshots of a daemon's counters.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "top/sample.h"

namespace sluice::top {
namespace {

Snapshot snapshot(double seconds, uint64_t busy, uint64_t idle, uint64_t reads, uint64_t read_bytes, uint64_t writes,
                  uint64_t latency_ticks) {
  Snapshot s;
  s.seconds = seconds;
  s.reactors = Json::parse(fmt::format(
      R"({{"reactors": [{{"name": "reactor_0", "lcore": 0, "busy": {}, "idle": {}, "sleeps": {}, "messages": 0}}]}})", busy,
      idle, idle / 10));
  s.iostat = Json::parse(fmt::format(R"({{"tick_rate": 1000000, "bdevs": [
      {{"name": "fast", "num_read_ops": {}, "bytes_read": {}, "num_write_ops": {}, "bytes_written": {},
        "read_latency_ticks": {}, "write_latency_ticks": 0, "io_errors": 0}},
      {{"name": "idle", "num_read_ops": 0, "bytes_read": 0, "num_write_ops": 0, "bytes_written": 0}}]}})",
                                     reads, read_bytes, writes, writes * 4096, latency_ticks));
  s.bdevs = Json::parse(R"([
      {"name": "fast", "product_name": "malloc", "assigned_rate_limits": {"rw_ios_per_sec": 20000, "w_mbytes_per_sec": 64}},
      {"name": "idle", "product_name": "null"}])");
  s.exports = Json::parse(R"([{"name": "disk", "bdev_name": "fast", "read_only": false, "connections": 3}])");
  return s;
}

TEST(TopView, RatesOverTheInterval) {
  // 2 s apart: 20,000 reads of 4 KiB and 2,000 writes; reads took 100 us each on average.
  const Snapshot a = snapshot(10, 100, 900, 1000, 1000 * 4096, 0, 1000 * 100);
  const Snapshot b = snapshot(12, 400, 1600, 21000, 21000 * 4096, 2000, 21000 * 100);
  const View v = make_view(a, b, SortKey::iops);
  ASSERT_EQ(v.reactors.size(), 1u);
  EXPECT_DOUBLE_EQ(v.reactors[0].busy_pct, 30.0);  // 300 busy of 1000 iterations
  ASSERT_EQ(v.bdevs.size(), 2u);
  const BdevRow& fast = v.bdevs[0];
  EXPECT_EQ(fast.name, "fast");
  EXPECT_DOUBLE_EQ(fast.read_iops, 10000);
  EXPECT_DOUBLE_EQ(fast.write_iops, 1000);
  EXPECT_NEAR(fast.read_mibps, 10000 * 4096.0 / (1 << 20), 1e-9);
  EXPECT_NEAR(fast.avg_latency_us, 100.0 * 20000 / 22000, 1e-9);  // writes recorded no latency here
  EXPECT_NEAR(fast.avg_queue_depth, 11000 * fast.avg_latency_us / 1e6, 1e-9);
  EXPECT_EQ(fast.limits, "20000 IOPS, w 64 MiB/s");
  EXPECT_EQ(fast.kind, "malloc");
  EXPECT_EQ(v.bdevs[1].iops(), 0);
  ASSERT_EQ(v.exports.size(), 1u);
  EXPECT_EQ(v.exports[0].connections, 3u);
  EXPECT_EQ(view_json(v)["bdevs"][0]["read_iops"], 10000);
  EXPECT_NE(render(v, SortKey::iops, "/s").find("fast"), std::string::npos);
}

TEST(TopView, SortsAndSurvivesRecreatedDevices) {
  const Snapshot a = snapshot(0, 0, 0, 5000, 5000 * 4096, 0, 0);
  Snapshot b = snapshot(1, 0, 0, 10, 10 * 4096, 0, 0);  // counters went back: a new device
  const View v = make_view(a, b, SortKey::name);
  EXPECT_EQ(v.bdevs[0].name, "fast");
  EXPECT_DOUBLE_EQ(v.bdevs[0].read_iops, 10);
  b.exports = nullptr;  // a daemon without NBD
  EXPECT_TRUE(make_view(a, b, SortKey::latency).exports.empty());
  // Answers of an unexpected shape show as zeroes, never an exception.
  b.reactors = Json::parse(R"({"reactors": [{"name": "r", "busy": "lots"}, 5]})");
  b.iostat = Json::parse("[1, 2]");
  b.bdevs = Json::parse(R"({"x": 1})");
  const View odd = make_view(a, b, SortKey::iops);
  EXPECT_EQ(odd.reactors.size(), 1u);
  EXPECT_TRUE(odd.bdevs.empty());
}

}  // namespace
}  // namespace sluice::top
