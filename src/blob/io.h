// The blob data path: per-thread channels that translate blob offsets to device blocks.
// Implemented in io.cc; the Blobstore facade forwards to these.
#pragma once

#include <sys/uio.h>

#include "bdev/bdev.h"
#include "blob/store.h"

namespace sluice::blob {

enum class BlobOp : uint8_t { read, write, write_zeroes };

class BlobChannel;

Result<BlobChannel*> get_blob_channel(Store& store);
Status put_blob_channel(Store& store, BlobChannel* ch);
int poll_blob_channel(BlobChannel* ch);
// offset and length in io units. iov may be null for write_zeroes.
Status blob_submit(Store& store, BlobChannel* ch, Blob& blob, BlobOp op, const iovec* iov, int iovcnt,
                   uint64_t offset, uint64_t length, bdev::IoCallback cb, void* arg);
Status blob_flush(Store& store, BlobChannel* ch, bdev::IoCallback cb, void* arg);

}  // namespace sluice::blob
