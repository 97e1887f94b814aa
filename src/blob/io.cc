// placeholder: the data path lands separately
#include "blob/io.h"
namespace sluice::blob {
class BlobChannel {};
Result<BlobChannel*> get_blob_channel(Store&) { return Status(Errc::not_supported, "blob data path not built yet"); }
Status put_blob_channel(Store&, BlobChannel*) { return Status(Errc::not_supported, "not built"); }
int poll_blob_channel(BlobChannel*) { return 0; }
Status blob_submit(Store&, BlobChannel*, Blob&, BlobOp, const iovec*, int, uint64_t, uint64_t, bdev::IoCallback, void*) {
  return Status(Errc::not_supported, "not built");
}
Status blob_flush(Store&, BlobChannel*, bdev::IoCallback, void*) { return Status(Errc::not_supported, "not built"); }
}  // namespace sluice::blob
