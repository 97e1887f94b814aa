// FSRandomRWFile: positional reads and writes on one handle (one thread at a time).
#include "rocksdb/sluice_files.h"
#include "rocksdb/sluice_io_status.h"

namespace sluice::rocksdb_plugin {
namespace {

using ::rocksdb::IODebugContext;
using ::rocksdb::IOOptions;
using ::rocksdb::IOStatus;
using ::rocksdb::Slice;

class SluiceRandomRWFile final : public ::rocksdb::FSRandomRWFile {
 public:
  SluiceRandomRWFile(FileContext ctx, std::unique_ptr<fs::File> file) : ctx_(std::move(ctx)), file_(std::move(file)) {}

  IOStatus Write(uint64_t offset, const Slice& data, const IOOptions&, IODebugContext*) override {
    return to_io_status(file_->pwrite(data.data(), data.size(), offset));
  }
  IOStatus Read(uint64_t offset, size_t n, const IOOptions&, Slice* result, char* scratch,
                IODebugContext*) const override {
    size_t got = 0;
    IOStatus s = read_fully(*file_, offset, n, scratch, &got);
    *result = Slice(scratch, got);
    return s;
  }
  IOStatus Flush(const IOOptions&, IODebugContext*) override { return to_io_status(file_->flush()); }
  IOStatus Sync(const IOOptions&, IODebugContext*) override { return to_io_status(file_->sync()); }
  IOStatus Fsync(const IOOptions&, IODebugContext*) override { return to_io_status(file_->sync()); }
  IOStatus Close(const IOOptions&, IODebugContext*) override {
    if (closed_) return IOStatus::OK();
    closed_ = true;
    return to_io_status(file_->close());
  }
  bool use_direct_io() const override { return ctx_.direct; }
  size_t GetRequiredBufferAlignment() const override { return ctx_.mount->block_size(); }

 private:
  FileContext ctx_;
  std::unique_ptr<fs::File> file_;  // one thread at a time (RocksDB's contract for this file)
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<::rocksdb::FSRandomRWFile> make_random_rw_file(FileContext ctx, std::unique_ptr<fs::File> file) {
  return std::make_unique<SluiceRandomRWFile>(std::move(ctx), std::move(file));
}

}  // namespace sluice::rocksdb_plugin
