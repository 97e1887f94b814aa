// The descriptor-chain walker (descriptor_chain.h).
#include "target/vhost/descriptor_chain.h"

#include <cstring>

namespace sluice::vhost {
namespace {

// One read of a guest-written descriptor; the caller keeps using the copy only.
vring_desc load_desc(const vring_desc* p) {
  vring_desc d;
  std::memcpy(&d, p, sizeof d);
  return d;
}

struct Walk {
  std::span<Segment> out;
  Chain* chain;
  bool seen_writable = false;

  ChainError add(const GuestMemory& mem, const vring_desc& d) {
    const bool writable = (d.flags & VRING_DESC_F_WRITE) != 0;
    if (!writable && seen_writable) return ChainError::readable_after_writable;
    uint8_t* host = mem.host_range(d.addr, d.len);
    if (host == nullptr) return ChainError::bad_address;
    if (chain->segments >= out.size()) return ChainError::too_many_segments;
    out[chain->segments++] = Segment{host, d.len, writable};
    (writable ? chain->writable_bytes : chain->readable_bytes) += d.len;
    seen_writable = seen_writable || writable;
    return ChainError::none;
  }

  // The descriptors of one indirect table, which must not point to another.
  ChainError indirect(const GuestMemory& mem, const vring_desc& d) {
    if ((d.flags & VRING_DESC_F_NEXT) != 0 || d.len == 0 || d.len % sizeof(vring_desc) != 0 ||
        d.len / sizeof(vring_desc) > kMaxIndirect)
      return ChainError::bad_indirect_table;
    const uint32_t count = d.len / sizeof(vring_desc);
    const uint8_t* table = mem.host_range(d.addr, d.len);
    if (table == nullptr) return ChainError::bad_address;
    uint32_t i = 0;
    for (uint32_t walked = 0;; ++walked) {
      if (walked == count) return ChainError::too_long;
      const vring_desc e = load_desc(reinterpret_cast<const vring_desc*>(table) + i);
      if ((e.flags & VRING_DESC_F_INDIRECT) != 0) return ChainError::nested_indirect;
      if (ChainError err = add(mem, e); err != ChainError::none) return err;
      if ((e.flags & VRING_DESC_F_NEXT) == 0) return ChainError::none;
      if (e.next >= count) return ChainError::next_out_of_range;
      i = e.next;
    }
  }
};

}  // namespace

std::string_view chain_error_name(ChainError e) {
  switch (e) {
    case ChainError::none: return "none";
    case ChainError::head_out_of_range: return "head index beyond the descriptor table";
    case ChainError::next_out_of_range: return "next index beyond the descriptor table";
    case ChainError::too_long: return "chain longer than its table (a loop)";
    case ChainError::bad_address: return "buffer outside the memory table";
    case ChainError::bad_indirect_table: return "malformed indirect table";
    case ChainError::nested_indirect: return "indirect descriptor inside an indirect table";
    case ChainError::readable_after_writable: return "device-readable buffer after a device-writable one";
    case ChainError::too_many_segments: return "more buffers than the device accepts";
  }
  return "unknown";
}

ChainError walk_chain(const GuestMemory& mem, const vring_desc* table, uint16_t table_size, uint16_t head,
                      std::span<Segment> out, Chain* chain) {
  *chain = Chain{};
  if (head >= table_size) return ChainError::head_out_of_range;
  Walk w{out, chain};
  uint16_t i = head;
  for (uint32_t walked = 0;; ++walked) {
    if (walked == table_size) return ChainError::too_long;
    const vring_desc d = load_desc(table + i);
    ChainError err = (d.flags & VRING_DESC_F_INDIRECT) != 0 ? w.indirect(mem, d) : w.add(mem, d);
    if (err != ChainError::none) return err;
    // An indirect descriptor is the whole chain: w.indirect() refused one with NEXT.
    if ((d.flags & VRING_DESC_F_NEXT) == 0) return ChainError::none;
    if (d.next >= table_size) return ChainError::next_out_of_range;
    i = d.next;
  }
}

}  // namespace sluice::vhost
