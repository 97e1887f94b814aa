#include "top/sample.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

namespace sluice::top {
namespace {

// A member read leniently: the daemon's answer is another process's output, and a field it
// lacks (an older daemon) shows as 0 rather than ending `top`.
double num(const Json& obj, const char* key) {
  if (!obj.is_object()) return 0;
  auto it = obj.find(key);
  return it != obj.end() && it->is_number() ? it->get<double>() : 0;
}
std::string text(const Json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}
const Json& member(const Json& obj, const char* key) {
  static const Json* null = new Json(nullptr);
  if (!obj.is_object()) return *null;
  auto it = obj.find(key);
  return it == obj.end() ? *null : *it;
}

double delta(const Json& after, const Json& before, const char* key) {
  const double a = num(after, key), b = num(before, key);
  return a >= b ? a - b : a;  // a counter that went back: the device was recreated
}

std::map<std::string, const Json*> by_name(const Json& list, const char* key = "name") {
  std::map<std::string, const Json*> out;
  if (!list.is_array()) return out;
  for (const Json& e : list)
    if (e.is_object() && e.contains(key) && e[key].is_string()) out[e[key].get<std::string>()] = &e;
  return out;
}

std::string limits_text(const Json& bdev) {
  const Json& l = member(bdev, "assigned_rate_limits");
  std::string out;
  auto add = [&](const char* key, const char* fmt_text) {
    const auto v = static_cast<uint64_t>(num(l, key));
    if (v == 0) return;
    out += fmt::format("{}{}", out.empty() ? "" : ", ", fmt::format(fmt::runtime(fmt_text), v));
  };
  add("rw_ios_per_sec", "{} IOPS");
  add("rw_mbytes_per_sec", "{} MiB/s");
  add("r_mbytes_per_sec", "r {} MiB/s");
  add("w_mbytes_per_sec", "w {} MiB/s");
  return out;
}

}  // namespace

View make_view(const Snapshot& before, const Snapshot& after, SortKey sort) {
  View v;
  v.interval = std::max(after.seconds - before.seconds, 1e-6);
  const double s = v.interval;

  static const Json* none = new Json(Json::object());
  auto old_reactors = by_name(member(before.reactors, "reactors"));
  for (const auto& [name, r] : by_name(member(after.reactors, "reactors"))) {
    const Json& prev = old_reactors.count(name) ? *old_reactors[name] : *none;
    const double busy = delta(*r, prev, "busy"), idle = delta(*r, prev, "idle");
    v.reactors.push_back({static_cast<int>(num(*r, "lcore")), name, busy + idle > 0 ? 100.0 * busy / (busy + idle) : 0,
                          delta(*r, prev, "sleeps") / s, delta(*r, prev, "messages") / s});
  }

  const double tick_rate = num(after.iostat, "tick_rate");
  auto old_stats = by_name(member(before.iostat, "bdevs"));
  auto info = by_name(after.bdevs);
  for (const auto& [name, st] : by_name(member(after.iostat, "bdevs"))) {
    const Json& prev = old_stats.count(name) ? *old_stats[name] : *none;
    BdevRow row;
    row.name = name;
    const double reads = delta(*st, prev, "num_read_ops"), writes = delta(*st, prev, "num_write_ops");
    row.read_iops = reads / s;
    row.write_iops = writes / s;
    row.read_mibps = delta(*st, prev, "bytes_read") / s / (1 << 20);
    row.write_mibps = delta(*st, prev, "bytes_written") / s / (1 << 20);
    const double ticks = delta(*st, prev, "read_latency_ticks") + delta(*st, prev, "write_latency_ticks");
    if (reads + writes > 0 && tick_rate > 0) row.avg_latency_us = ticks / (reads + writes) / tick_rate * 1e6;
    row.avg_queue_depth = row.iops() * row.avg_latency_us / 1e6;
    row.errors = static_cast<uint64_t>(delta(*st, prev, "io_errors"));
    if (info.count(name)) {
      row.kind = text(*info[name], "product_name");
      row.limits = limits_text(*info[name]);
    }
    v.bdevs.push_back(std::move(row));
  }
  std::stable_sort(v.bdevs.begin(), v.bdevs.end(), [sort](const BdevRow& a, const BdevRow& b) {
    switch (sort) {
      case SortKey::iops: return a.iops() > b.iops();
      case SortKey::mibps: return a.mibps() > b.mibps();
      case SortKey::latency: return a.avg_latency_us > b.avg_latency_us;
      case SortKey::name: return a.name < b.name;
    }
    return false;
  });

  if (after.exports.is_array())
    for (const Json& e : after.exports) {
      const Json& ro = member(e, "read_only");
      v.exports.push_back({text(e, "name"), text(e, "bdev_name"), ro.is_boolean() && ro.get<bool>(),
                           static_cast<uint64_t>(num(e, "connections"))});
    }
  return v;
}

Json view_json(const View& v) {
  Json out{{"interval_s", v.interval}, {"reactors", Json::array()}, {"bdevs", Json::array()}, {"exports", Json::array()}};
  for (const ReactorRow& r : v.reactors)
    out["reactors"].push_back({{"lcore", r.lcore}, {"name", r.name}, {"busy_pct", r.busy_pct},
                               {"sleeps_per_sec", r.sleeps_per_sec}, {"messages_per_sec", r.messages_per_sec}});
  for (const BdevRow& b : v.bdevs)
    out["bdevs"].push_back({{"name", b.name}, {"kind", b.kind}, {"read_iops", b.read_iops}, {"write_iops", b.write_iops},
                            {"read_mibps", b.read_mibps}, {"write_mibps", b.write_mibps},
                            {"avg_latency_us", b.avg_latency_us}, {"avg_queue_depth", b.avg_queue_depth},
                            {"errors", b.errors}, {"limits", b.limits}});
  for (const ExportRow& e : v.exports)
    out["exports"].push_back({{"name", e.name}, {"bdev_name", e.bdev}, {"read_only", e.read_only}, {"connections", e.connections}});
  return out;
}

std::string render(const View& v, SortKey sort, const std::string& socket) {
  static constexpr const char* kSortNames[] = {"IOPS", "MiB/s", "latency", "name"};
  std::string out = fmt::format("sluice top — {} — every {:.1f} s, bdevs by {} (keys: i m l n sort, q quit)\n\n", socket,
                                v.interval, kSortNames[static_cast<int>(sort)]);
  out += fmt::format("{:<6} {:<12} {:>7} {:>10} {:>10}\n", "CORE", "REACTOR", "BUSY%", "SLEEPS/s", "MSGS/s");
  for (const ReactorRow& r : v.reactors)
    out += fmt::format("{:<6} {:<12} {:>7.1f} {:>10.0f} {:>10.0f}\n", r.lcore, r.name, r.busy_pct, r.sleeps_per_sec,
                       r.messages_per_sec);
  out += fmt::format("\n{:<20} {:<8} {:>9} {:>9} {:>8} {:>8} {:>9} {:>6} {:>5}  {}\n", "BDEV", "KIND", "R IOPS", "W IOPS",
                     "R MiB/s", "W MiB/s", "LAT us", "QD", "ERR", "LIMITS");
  for (const BdevRow& b : v.bdevs)
    out += fmt::format("{:<20} {:<8} {:>9.0f} {:>9.0f} {:>8.1f} {:>8.1f} {:>9.1f} {:>6.1f} {:>5}  {}\n", b.name, b.kind,
                       b.read_iops, b.write_iops, b.read_mibps, b.write_mibps, b.avg_latency_us, b.avg_queue_depth,
                       b.errors, b.limits);
  if (!v.exports.empty()) {
    out += fmt::format("\n{:<20} {:<20} {:>4} {:>6}\n", "NBD EXPORT", "BDEV", "RO", "CONNS");
    for (const ExportRow& e : v.exports)
      out += fmt::format("{:<20} {:<20} {:>4} {:>6}\n", e.name, e.bdev, e.read_only ? "yes" : "no", e.connections);
  }
  return out;
}

}  // namespace sluice::top
