// Walking a split virtqueue's descriptor chain (virtio 1.1, 2.6.5 and 2.6.5.3): the guest's
// buffers of one request, each translated to host memory and bounds-checked.
//
// Everything in a descriptor table is written by the guest, which may change it while we read
// it, so each descriptor is copied out once and only the copy is used. A chain that breaks a
// rule fails with a ChainError and nothing outside guest memory is ever read or written:
// - a head or next index beyond the table,
// - more descriptors than the table has (a loop),
// - a buffer not inside one region of the memory table,
// - an indirect table that is empty, not a whole number of descriptors, chained (INDIRECT
//   with NEXT) or that itself holds an indirect descriptor,
// - a device-readable buffer after a device-writable one,
// - more buffers than the caller has room for.
#pragma once

#include "target/vhost/virtio_ring.h"

#include <cstdint>
#include <span>
#include <string_view>

#include "target/vhost/guest_memory.h"

namespace sluice::vhost {

// One guest buffer of a request, in host memory.
struct Segment {
  uint8_t* host = nullptr;
  uint32_t len = 0;
  bool writable = false;  // the device writes it (VIRTQ_DESC_F_WRITE)
};

enum class ChainError : uint8_t {
  none = 0,
  head_out_of_range,
  next_out_of_range,
  too_long,
  bad_address,
  bad_indirect_table,
  nested_indirect,
  readable_after_writable,
  too_many_segments,
};
std::string_view chain_error_name(ChainError e);

struct Chain {
  uint32_t segments = 0;        // filled entries of the caller's array
  uint64_t readable_bytes = 0;  // sum of the device-readable buffers' lengths
  uint64_t writable_bytes = 0;
};

// Walks the chain that starts at `head` of `table` (`table_size` descriptors, as the ring
// has) into `out`. Bounded: at most table_size descriptors of the ring plus those of one
// indirect table (itself at most kMaxIndirect long).
ChainError walk_chain(const GuestMemory& mem, const vring_desc* table, uint16_t table_size, uint16_t head,
                      std::span<Segment> out, Chain* chain);

// Longest indirect table accepted: the largest ring a split queue may have.
inline constexpr uint32_t kMaxIndirect = 32768;

}  // namespace sluice::vhost
