// virtio-blk requests (virtio 1.1, 5.2.6): a descriptor chain taken apart into header, data
// and status byte, submitted to the bdev with the guest's buffers as iovecs, and returned
// to the used ring (blk_queue.h).
#include <linux/virtio_blk.h>

#include <algorithm>
#include <cstring>

#include "target/vhost/blk_queue.h"
#include "target/vhost/chain_buffers.h"

namespace sluice::vhost {
namespace {

constexpr uint32_t kHeaderBytes = sizeof(virtio_blk_outhdr);  // type, ioprio, sector
constexpr uint32_t kIdBytes = VIRTIO_BLK_ID_BYTES;

}  // namespace

void BlkDevice::Queue::start_request(uint16_t head) {
  BlkRequest* r = pool.take();
  Counters::bump(counters->requests);
  r->head = head;
  r->status = nullptr;
  r->written = 0;
  Chain chain;
  if (!walk(head, r->segs, &chain, *counters)) {
    complete(r, VIRTIO_BLK_S_IOERR);  // the status byte stays unwritten
    return;
  }
  const uint32_t n = chain.segments;
  virtio_blk_outhdr hdr;
  if (n == 0 || !r->segs[n - 1].writable || r->segs[n - 1].len == 0 || !gather(r->segs, n, &hdr, kHeaderBytes)) {
    complete(r, VIRTIO_BLK_S_IOERR);  // no header or no status byte: status stays unwritten
    return;
  }
  r->status = r->segs[n - 1].host + r->segs[n - 1].len - 1;
  r->type = hdr.type;
  r->iovcnt = slice_iovecs(r->segs, n, kHeaderBytes, 1, r->iov);  // the status byte last
  const uint64_t readable_data = chain.readable_bytes - kHeaderBytes;
  const uint64_t writable_data = chain.writable_bytes - 1;
  const bdev::Geometry& g = dev->desc_.geometry();
  const uint64_t capacity = g.size_bytes() / 512;
  const uint64_t data = readable_data + writable_data;
  const bool writes = r->type == VIRTIO_BLK_T_OUT || r->type == VIRTIO_BLK_T_DISCARD || r->type == VIRTIO_BLK_T_WRITE_ZEROES;
  if (writes && dev->options_.read_only) {
    complete(r, VIRTIO_BLK_S_IOERR);
    return;
  }
  switch (r->type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT: {
      // IN fills device-writable buffers, OUT reads device-readable ones; whole blocks in range.
      const bool in = r->type == VIRTIO_BLK_T_IN;
      if ((in ? readable_data : writable_data) != 0 || data % g.block_size != 0 || (hdr.sector * 512) % g.block_size != 0 ||
          hdr.sector > capacity || data / 512 > capacity - hdr.sector) {
        complete(r, VIRTIO_BLK_S_IOERR);
        return;
      }
      // The bdev layer copies it through a bounce buffer; counted, as the copy costs.
      if (!aligned(r->iov, r->iovcnt, g.buf_align)) Counters::bump(counters->unaligned);
      r->lba = hdr.sector * 512 / g.block_size;
      r->blocks = data / g.block_size;
      if (in) r->written = static_cast<uint32_t>(data);
      break;
    }
    case VIRTIO_BLK_T_FLUSH:
      if (!g.supports(bdev::IoType::flush)) {
        complete(r, VIRTIO_BLK_S_OK);  // no volatile cache: completed writes are durable
        return;
      }
      break;
    case VIRTIO_BLK_T_GET_ID: {
      // The serial, NUL-padded, into the writable data (at most 20 bytes).
      uint32_t left = std::min<uint64_t>(writable_data, kIdBytes);
      const std::string& serial = dev->options_.serial;
      for (int i = 0, at = 0; i < r->iovcnt && left > 0; ++i) {
        const uint32_t take = std::min<uint32_t>(left, static_cast<uint32_t>(r->iov[i].iov_len));
        for (uint32_t k = 0; k < take; ++k, ++at)
          static_cast<uint8_t*>(r->iov[i].iov_base)[k] = at < static_cast<int>(serial.size()) ? serial[at] : 0;
        left -= take;
        r->written += take;
      }
      complete(r, readable_data == 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR);
      return;
    }
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES: {
      const bool discard = r->type == VIRTIO_BLK_T_DISCARD;
      if (!g.supports(discard ? bdev::IoType::unmap : bdev::IoType::write_zeroes)) {
        complete(r, VIRTIO_BLK_S_UNSUPP);
        return;
      }
      // One range (max_discard_seg = max_write_zeroes_seg = 1), readable, after the header.
      virtio_blk_discard_write_zeroes range;
      uint8_t raw[kHeaderBytes + sizeof range];
      if (readable_data != sizeof range || writable_data != 0 || !gather(r->segs, n, raw, sizeof raw)) {
        complete(r, VIRTIO_BLK_S_IOERR);
        return;
      }
      std::memcpy(&range, raw + kHeaderBytes, sizeof range);
      const uint32_t allowed = discard ? 0 : VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
      if ((range.flags & ~allowed) != 0) {
        complete(r, VIRTIO_BLK_S_UNSUPP);
        return;
      }
      const uint64_t bytes = uint64_t{range.num_sectors} * 512;
      if (range.sector > capacity || range.num_sectors > capacity - range.sector || bytes % g.block_size != 0 ||
          (range.sector * 512) % g.block_size != 0) {
        complete(r, VIRTIO_BLK_S_IOERR);
        return;
      }
      r->lba = range.sector * 512 / g.block_size;
      r->blocks = bytes / g.block_size;
      break;
    }
    default:
      complete(r, VIRTIO_BLK_S_UNSUPP);
      return;
  }
  submit(r);
}

void BlkDevice::Queue::submit(BlkRequest* r) {
  bdev::BdevDesc& d = dev->desc_;
  auto done = [](void* arg, Errc st) {
    auto* req = static_cast<BlkRequest*>(arg);
    req->queue->complete(req, st == Errc::ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR);
  };
  Status st;
  if (r->blocks == 0 && r->type != VIRTIO_BLK_T_FLUSH) {
    complete(r, VIRTIO_BLK_S_OK);  // nothing to transfer
    return;
  }
  switch (r->type) {
    case VIRTIO_BLK_T_IN: st = d.readv(ch, r->iov, r->iovcnt, r->lba, r->blocks, done, r); break;
    case VIRTIO_BLK_T_OUT: st = d.writev(ch, r->iov, r->iovcnt, r->lba, r->blocks, done, r); break;
    case VIRTIO_BLK_T_FLUSH: st = d.flush(ch, done, r); break;
    case VIRTIO_BLK_T_DISCARD: st = d.unmap(ch, r->lba, r->blocks, done, r); break;
    case VIRTIO_BLK_T_WRITE_ZEROES: st = d.write_zeroes(ch, r->lba, r->blocks, done, r); break;
    default: st = Status(Errc::not_supported, "request type"); break;
  }
  if (st.ok()) return;
  if (st.code() == Errc::busy) {  // the channel's pool is full: resubmit when a slot frees
    r->wait.fn = [](void* arg) {
      auto* req = static_cast<BlkRequest*>(arg);
      req->queue->submit(req);
    };
    r->wait.arg = r;
    if (bdev::wait_for_room(ch, &r->wait).ok()) return;
  }
  complete(r, VIRTIO_BLK_S_IOERR);
}

void BlkDevice::Queue::complete(BlkRequest* r, uint8_t status) {
  if (status != VIRTIO_BLK_S_OK) Counters::bump(counters->errors);
  if (r->status != nullptr) {
    // The status byte last: the guest may look at the data as soon as it sees it.
    __atomic_store_n(r->status, status, __ATOMIC_RELEASE);
    ++r->written;
  } else {
    r->written = 0;
  }
  if (status != VIRTIO_BLK_S_OK && r->type == VIRTIO_BLK_T_IN && r->status != nullptr) r->written = 1;
  pool.put_back(r);
  return_used(r->head, r->written);
}

}  // namespace sluice::vhost
