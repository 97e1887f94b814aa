// Checking a copied file: a content checksum (crc32c) for every file, compared with the
// source's, and RocksDB's own block checksums for SST files.
#pragma once

#include <cstdint>
#include <string>

#include <rocksdb/env.h>

#include "base/status.h"
#include "migrate/side.h"

namespace sluice::migrate {

struct Checksum {
  uint32_t crc = 0;
  uint64_t size = 0;
};

// Reads `path` of `side` whole, read-only.
Result<Checksum> file_checksum(const Side& side, const std::string& path);

bool is_sst(const std::string& name);

// Opens the SST file at `path` with RocksDB's SstFileReader through `env` (so through the
// plugin for SluiceFS) and verifies every block checksum. The message says what RocksDB found.
Status verify_sst(::rocksdb::Env* env, const std::string& path);

}  // namespace sluice::migrate
