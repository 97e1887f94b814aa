#include "migrate/verify.h"

#include <vector>

#include <fmt/format.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_reader.h>

#include "base/crc32c.h"

namespace sluice::migrate {

Result<Checksum> file_checksum(const Side& side, const std::string& path) {
  std::unique_ptr<::rocksdb::FSSequentialFile> f;
  ::rocksdb::IOStatus s = side.fs->NewSequentialFile(path, {}, &f, nullptr);
  if (!s.ok()) return from_rocksdb(s, path);
  uint64_t expected = 0;
  s = side.fs->GetFileSize(path, {}, &expected, nullptr);
  if (!s.ok()) return from_rocksdb(s, path);
  std::vector<char> buf(1u << 20);
  Checksum sum;
  // Bounded by the size seen at open: a file that keeps growing is not ours to chase.
  while (sum.size <= expected) {
    ::rocksdb::Slice got;
    s = f->Read(buf.size(), {}, &got, buf.data(), nullptr);
    if (!s.ok()) return from_rocksdb(s, path);
    if (got.empty()) break;
    sum.crc = crc32c(got.data(), got.size(), sum.crc);
    sum.size += got.size();
  }
  return sum;
}

bool is_sst(const std::string& name) {
  return name.size() > 4 && name.compare(name.size() - 4, 4, ".sst") == 0;
}

Status verify_sst(::rocksdb::Env* env, const std::string& path) {
  ::rocksdb::Options options;
  options.env = env;
  ::rocksdb::SstFileReader reader(options);
  ::rocksdb::Status s = reader.Open(path);
  if (s.ok()) s = reader.VerifyChecksum();
  if (s.ok()) return Status::Ok();
  return Status(Errc::corrupt, fmt::format("RocksDB block checksum verification failed: {}", s.ToString()));
}

}  // namespace sluice::migrate
