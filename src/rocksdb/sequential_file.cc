// FSSequentialFile: a handle and a position (SluiceFS reads ahead for sequential readers),
// and read_fully, the read loop every file kind shares.
#include "rocksdb/sluice_files.h"
#include "rocksdb/sluice_io_status.h"

namespace sluice::rocksdb_plugin {

using ::rocksdb::IOStatus;

IOStatus read_fully(fs::File& file, uint64_t offset, size_t n, char* scratch, size_t* got) {
  *got = 0;
  while (*got < n) {
    auto r = file.pread(scratch + *got, n - *got, offset + *got);
    if (!r.ok()) return to_io_status(r.status());
    if (*r == 0) break;
    *got += *r;
  }
  return IOStatus::OK();
}

namespace {

using ::rocksdb::IODebugContext;
using ::rocksdb::IOOptions;
using ::rocksdb::IOStatus;
using ::rocksdb::Slice;

class SluiceSequentialFile final : public ::rocksdb::FSSequentialFile {
 public:
  SluiceSequentialFile(FileContext ctx, std::unique_ptr<fs::File> file) : ctx_(std::move(ctx)), file_(std::move(file)) {}

  IOStatus Read(size_t n, const IOOptions&, Slice* result, char* scratch, IODebugContext*) override {
    size_t got = 0;
    IOStatus s = read_fully(*file_, pos_, n, scratch, &got);
    pos_ += got;
    *result = Slice(scratch, got);
    return s;
  }
  IOStatus PositionedRead(uint64_t offset, size_t n, const IOOptions&, Slice* result, char* scratch,
                          IODebugContext*) override {
    size_t got = 0;
    IOStatus s = read_fully(*file_, offset, n, scratch, &got);
    *result = Slice(scratch, got);
    return s;
  }
  IOStatus Skip(uint64_t n) override {
    pos_ = std::min(pos_ + n, std::max(pos_, file_->size()));
    return IOStatus::OK();
  }
  bool use_direct_io() const override { return ctx_.direct; }
  size_t GetRequiredBufferAlignment() const override { return ctx_.mount->block_size(); }
  IOStatus InvalidateCache(size_t, size_t) override { return IOStatus::OK(); }

 private:
  FileContext ctx_;
  std::unique_ptr<fs::File> file_;
  uint64_t pos_ = 0;
};

}  // namespace

std::unique_ptr<::rocksdb::FSSequentialFile> make_sequential_file(FileContext ctx, std::unique_ptr<fs::File> file) {
  return std::make_unique<SluiceSequentialFile>(std::move(ctx), std::move(file));
}

}  // namespace sluice::rocksdb_plugin
