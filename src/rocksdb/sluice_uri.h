// Parsing "sluice://<device>[?options]" (sluice_rocksdb.h documents the options).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace sluice::rocksdb_plugin {

struct PluginUri {
  std::string device;        // a bdev spec with its own ?options, or a registered bdev name
  uint64_t cache_bytes = 0;  // read cache of the mount
  std::optional<uint64_t> reserve_bytes;  // the mount's free-space reserve; unset: its default
  bool format = false;       // format the device if it holds no SluiceFS image
  std::string root = "/";    // normalized: absolute, no trailing '/' (except "/" itself)
  std::string wal_dir;       // empty: WAL files stay on SluiceFS
  std::string fallback;      // empty: no fallback; else a normalized kernel directory
};

Result<PluginUri> parse_uri(std::string_view uri);

// "/a//b/" -> "/a/b"; relative paths are taken from "/". Never empty.
std::string normalize_path(std::string_view path);

// The SluiceFS path of RocksDB path `path` under URI root `root` (normalized), or "" when
// the path is not under it (it goes to POSIX).
std::string path_under_root(const std::string& root, std::string_view path);

}  // namespace sluice::rocksdb_plugin
