// The bytes of a walked descriptor chain (descriptor_chain.h) as a device uses them: a header
// copied out of the device-readable buffers, a reply copied into the device-writable ones,
// and the data between as iovecs. A header or reply may span buffers, as virtio allows.
#pragma once

#include <sys/uio.h>

#include <cstdint>

#include "target/vhost/descriptor_chain.h"

namespace sluice::vhost {

// Copies the first `len` device-readable bytes of the chain; false if it has fewer.
bool gather(const Segment* segs, uint32_t n, void* out, uint32_t len);
// Copies `len` bytes into the device-writable buffers, from their start; false if they hold
// fewer (then nothing is written).
bool scatter(const Segment* segs, uint32_t n, const void* in, uint32_t len);
// The bytes of segs[0, n) past the first `skip` and before the last `tail`, as iovecs (at
// most n of them).
int slice_iovecs(const Segment* segs, uint32_t n, uint64_t skip, uint64_t tail, iovec* iov);
// Whether every iovec's address and length are multiples of `align`.
bool aligned(const iovec* iov, int n, uint32_t align);

}  // namespace sluice::vhost
