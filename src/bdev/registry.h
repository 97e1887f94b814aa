// The process-wide table of named bdevs and their open handles. Control path only: a mutex
// guards it, and no I/O ever takes that mutex.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bdev/backend.h"

namespace sluice::bdev {

class Registry {
 public:
  static Registry& instance();

  Status add(std::shared_ptr<Bdev> bdev);
  Status remove(std::string_view name);
  Result<std::unique_ptr<BdevDesc>> open(std::string_view name, const OpenOptions& opts);
  void close(BdevDesc* desc);
  std::vector<std::string> names();
  std::shared_ptr<Bdev> find(std::string_view name);

 private:
  struct Entry {
    std::shared_ptr<Bdev> bdev;
    std::vector<BdevDesc*> descs;
    bool locked_for_write = false;  // the host-file lock's mode while descs is not empty
  };
  static Status claim_backing(Entry& e, bool write);
  static void release_backing_if_unused(Entry& e);
  std::mutex mu_;
  std::map<std::string, Entry, std::less<>> bdevs_;
  // Removed devices whose handles are still open, kept so close() finds them.
  std::vector<Entry> removed_;
};

}  // namespace sluice::bdev
