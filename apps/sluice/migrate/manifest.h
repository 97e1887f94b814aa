// The progress record of an import or export: a text file SLUICE-MIGRATE in the destination
// directory listing every file already copied and verified, so that an interrupted copy
// resumes where it stopped. Each line is synced before the next file starts.
//
//   sluice-migrate 1 <source label>
//   <crc32c, 8 hex digits> <size> <name>
//   ...
// A torn last line (no '\n') is ignored: that file is copied again. The record is removed
// once the whole copy has been verified.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "base/status.h"
#include "migrate/side.h"

namespace sluice::migrate {

class Manifest {
 public:
  struct Entry {
    uint64_t size = 0;
    uint32_t crc = 0;
  };

  // Reads the record of `dst` (found() is false when there is none).
  static Result<Manifest> load(const Side& dst);

  bool found() const { return found_; }
  const std::string& source() const { return source_; }
  const Entry* find(const std::string& name) const;
  size_t size() const { return entries_.size(); }

  // Rewrites the record for `source` keeping the entries read (clear() first to drop them)
  // and keeps it open for add(). Durable when it returns.
  Status start(const Side& dst, const std::string& source);
  void clear() { entries_.clear(); }
  Status add(const std::string& name, uint64_t size, uint32_t crc);  // durable when it returns
  Status remove(const Side& dst);  // closes and deletes the record

 private:
  Status write(const std::string& text);

  bool found_ = false;
  std::string source_;
  std::map<std::string, Entry> entries_;
  std::unique_ptr<::rocksdb::FSWritableFile> file_;
  std::string path_;
};

}  // namespace sluice::migrate
