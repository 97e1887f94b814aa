// A chain's header, reply and data (chain_buffers.h).
#include "target/vhost/chain_buffers.h"

#include <algorithm>
#include <cstring>

namespace sluice::vhost {

bool gather(const Segment* segs, uint32_t n, void* out, uint32_t len) {
  auto* dst = static_cast<uint8_t*>(out);
  for (uint32_t i = 0; i < n && len > 0 && !segs[i].writable; ++i) {
    const uint32_t take = std::min(len, segs[i].len);
    std::memcpy(dst, segs[i].host, take);
    dst += take;
    len -= take;
  }
  return len == 0;
}

bool scatter(const Segment* segs, uint32_t n, const void* in, uint32_t len) {
  uint64_t room = 0;
  for (uint32_t i = 0; i < n; ++i)
    if (segs[i].writable) room += segs[i].len;
  if (room < len) return false;
  const auto* src = static_cast<const uint8_t*>(in);
  for (uint32_t i = 0; i < n && len > 0; ++i) {
    if (!segs[i].writable) continue;
    const uint32_t put = std::min(len, segs[i].len);
    std::memcpy(segs[i].host, src, put);
    src += put;
    len -= put;
  }
  return true;
}

int slice_iovecs(const Segment* segs, uint32_t n, uint64_t skip, uint64_t tail, iovec* iov) {
  uint64_t total = 0;
  for (uint32_t i = 0; i < n; ++i) total += segs[i].len;
  if (skip + tail >= total) return 0;
  uint64_t left = total - skip - tail;
  int count = 0;
  for (uint32_t i = 0; i < n && left > 0; ++i) {
    uint8_t* p = segs[i].host;
    uint64_t len = segs[i].len;
    const uint64_t cut = std::min(skip, len);
    p += cut, len -= cut, skip -= cut;
    len = std::min(len, left);
    if (len > 0) iov[count++] = iovec{p, static_cast<size_t>(len)};
    left -= len;
  }
  return count;
}

bool aligned(const iovec* iov, int n, uint32_t align) {
  for (int i = 0; i < n; ++i)
    if (reinterpret_cast<uintptr_t>(iov[i].iov_base) % align != 0 || iov[i].iov_len % align != 0) return false;
  return true;
}

}  // namespace sluice::vhost
