#include "rocksdb/sluice_uri.h"


#include <cstdint>

#include <fmt/format.h>

#include "base/size.h"
#include "bdev/spec.h"

namespace sluice::rocksdb_plugin {
namespace {

constexpr std::string_view kScheme = "sluice://";

Status bad(std::string_view uri, std::string_view why) {
  return Status(Errc::invalid_argument,
                fmt::format("bad SluiceFS URI '{}': {} (want sluice://DEVICE[?cache=SIZE&reserve=SIZE&format=1&root=/DIR&wal_dir=/DIR&fallback=/DIR],"
                            " e.g. sluice://uring:/dev/nvme0n1)",
                            uri, why));
}

}  // namespace

std::string normalize_path(std::string_view path) {
  std::string out = "/";
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t end = path.find('/', i);
    if (end == std::string_view::npos) end = path.size();
    if (end > i) {
      if (out.size() > 1) out += '/';
      out.append(path.substr(i, end - i));
    }
    i = end;
  }
  return out;
}

std::string path_under_root(const std::string& root, std::string_view path) {
  std::string p = normalize_path(path);
  if (root == "/") return p;
  if (p == root) return "/";
  if (p.size() > root.size() && p.compare(0, root.size(), root) == 0 && p[root.size()] == '/')
    return p.substr(root.size());
  return "";
}

Result<PluginUri> parse_uri(std::string_view uri) {
  if (uri.substr(0, kScheme.size()) != kScheme) return bad(uri, "it does not start with sluice://");
  std::string_view rest = uri.substr(kScheme.size());
  std::string_view device = rest.substr(0, rest.find('?'));
  if (device.empty()) return bad(uri, "no device");
  PluginUri out;
  std::string device_options;
  if (device.size() < rest.size()) {
    auto options = bdev::parse_options(rest.substr(device.size() + 1));
    if (!options.ok()) return bad(uri, options.status().message());
    for (const auto& [key, value] : *options) {
      if (key == "cache") {
        auto size = parse_size(value);
        if (!size.ok()) return bad(uri, fmt::format("cache: {}", size.status().message()));
        // The cache fills as files are read: one larger than memory ends in the OOM killer.
        const uint64_t ram = physical_memory_bytes();
        if (*size > ram)
          return bad(uri, fmt::format("cache={} is more than this machine's memory ({})", value, format_size(ram)));
        out.cache_bytes = *size;
      } else if (key == "reserve") {
        auto size = parse_size(value);
        if (!size.ok()) return bad(uri, fmt::format("reserve: {}", size.status().message()));
        out.reserve_bytes = *size;
      } else if (key == "format") {
        if (value != "0" && value != "1") return bad(uri, fmt::format("format={}: want 0 or 1", value));
        out.format = value == "1";
      } else if (key == "root") {
        if (value.empty() || value[0] != '/') return bad(uri, fmt::format("root={}: want an absolute path", value));
        out.root = normalize_path(value);
      } else if (key == "wal_dir") {
        if (value.empty() || value[0] != '/') return bad(uri, fmt::format("wal_dir={}: want an absolute path", value));
        out.wal_dir = normalize_path(value);
      } else if (key == "fallback") {
        if (value.empty() || value[0] != '/') return bad(uri, fmt::format("fallback={}: want an absolute path", value));
        out.fallback = normalize_path(value);
      } else {
        device_options += fmt::format("{}{}={}", device_options.empty() ? "?" : "&", key, value);
      }
    }
  }
  // WAL files of the fallback directory would be routed to wal_dir, past the fallback.
  if (!out.fallback.empty() && !out.wal_dir.empty()) return bad(uri, "fallback= and wal_dir= cannot be combined");
  out.device = std::string(device) + device_options;
  return out;
}

}  // namespace sluice::rocksdb_plugin
