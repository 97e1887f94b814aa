// The export table (internal): names to open bdev handles, shared by every connection.
//
// Control path: the table is guarded by a mutex, taken to add, remove, list, and once per
// connection when its handshake looks a name up. A connection then holds its Export by
// shared_ptr and never touches the table again.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bdev/bdev.h"
#include "target/nbd/protocol.h"

namespace sluice::nbd {

struct Export {
  uint64_t id = 0;  // unique in the process: names a disconnect without keeping the export alive
  std::string name;
  std::string bdev_name;
  bool read_only = false;
  std::unique_ptr<bdev::BdevDesc> desc;  // closed when the last connection lets go
  std::atomic<bool> gone{false};         // removed, or its bdev hot-removed
  std::atomic<uint32_t> connections{0};  // that entered transmission on it, until freed

  proto::ExportLimits limits(uint32_t max_payload) const;
};

namespace exports_table {

std::shared_ptr<Export> find(std::string_view name);  // "" is the first export
std::vector<std::string> names();
std::vector<std::shared_ptr<Export>> all();
Status add(std::shared_ptr<Export> e);
// Removes and returns it (nullptr if absent).
std::shared_ptr<Export> take(std::string_view name);

}  // namespace exports_table

// Asks every reactor to close its connections to export `id` (every connection if 0). Does
// not wait. Any thread.
Status disconnect_all(uint64_t id);

}  // namespace sluice::nbd
