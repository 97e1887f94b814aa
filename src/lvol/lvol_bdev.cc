#include "lvol/lvol_bdev.h"

#include "base/intrusive_list.h"
#include "base/log.h"
#include "bdev/channel.h"

namespace sluice::lvol {

using bdev::BdevIo;
using bdev::IoType;
using bdev::io_bit;

bdev::Geometry volume_geometry(const bdev::Geometry& base, uint32_t cluster_size, uint32_t io_unit,
                               uint64_t size_clusters, bool read_only) {
  bdev::Geometry g;
  g.block_size = io_unit;
  g.num_blocks = size_clusters * (cluster_size / io_unit);
  g.optimal_io_blocks = 0;
  g.max_transfer_blocks = cluster_size / io_unit;
  g.buf_align = base.buf_align;
  g.supported = io_bit(IoType::read) | io_bit(IoType::flush) | io_bit(IoType::reset);
  if (!read_only) g.supported |= io_bit(IoType::write) | io_bit(IoType::unmap) | io_bit(IoType::write_zeroes);
  g.unmap_zeroes = true;  // a blob unmap reads back as zeroes
  g.queue_depth = base.queue_depth;
  return g;
}

namespace {

// Lives in the request's driver area while the blobstore has not taken it (busy).
struct Waiting {
  BdevIo* io;
  Waiting* next;
};

class LvolQueue final : public bdev::BackendQueue {
 public:
  LvolQueue(std::shared_ptr<blob::Blobstore> bs, std::shared_ptr<blob::Blob> blob, blob::BlobChannel* ch)
      : bs_(std::move(bs)), blob_(std::move(blob)), ch_(ch) {}

  ~LvolQueue() override {
    if (!busy_.empty()) log::error("lvol: channel destroyed with requests still queued");
    Status st = bs_->put_channel(ch_);
    if (!st.ok()) log::error("lvol: releasing the blob channel failed: {}", st.to_string());
    st = bs_->close(std::move(blob_));
    if (!st.ok()) log::error("lvol: closing the blob failed: {}", st.to_string());
  }

  void submit(BdevIo* io) override {
    if (!busy_.empty()) {  // keep the order of requests the blobstore could not take yet
      wait(io);
      return;
    }
    Status st = issue(io);
    if (st.ok()) return;
    if (st.code() == Errc::busy) {
      wait(io);
    } else {
      io->channel->complete(io, st.code());
    }
  }

  int poll() override {
    int events = bs_->poll(ch_);
    while (!busy_.empty()) {
      BdevIo* io = busy_.front()->io;
      Status st = issue(io);
      if (st.code() == Errc::busy) break;
      busy_.pop_front();
      ++events;
      if (!st.ok()) io->channel->complete(io, st.code());
    }
    return events;
  }

  std::vector<bdev::BlockRun> block_status(uint64_t offset_blocks, uint64_t num_blocks, size_t max_runs) override {
    return bs_->block_status(*blob_, offset_blocks, num_blocks, max_runs);  // blocks are io units
  }

 private:
  static void done(void* arg, Errc status) {
    auto* io = static_cast<BdevIo*>(arg);
    io->channel->complete(io, status);
  }

  void wait(BdevIo* io) {
    auto* w = io->driver_ctx<Waiting>();
    w->io = io;
    busy_.push_back(w);
  }

  Status issue(BdevIo* io) {
    blob::Blobstore& bs = *bs_;
    switch (io->type) {
      case IoType::read:
        return bs.readv(ch_, *blob_, io->iovs, io->iovcnt, io->offset_blocks, io->num_blocks, done, io);
      case IoType::write:
        wrote_ = true;
        return bs.writev(ch_, *blob_, io->iovs, io->iovcnt, io->offset_blocks, io->num_blocks, done, io);
      case IoType::flush:
        if (wrote_) {
          // A first write to a thin or cloned cluster allocates it in memory only; the
          // allocation is durable after the next metadata sync (blob/io.h). A bdev FLUSH
          // promises the written data reads back after a crash, so commit first. Nothing
          // pending (thick volumes) makes this a no-op.
          SLUICE_RETURN_IF_ERROR(bs.sync_md());
          wrote_ = false;
        }
        return bs.flush(ch_, done, io);
      case IoType::unmap:
        wrote_ = true;
        return bs.unmap(ch_, *blob_, io->offset_blocks, io->num_blocks, done, io);
      case IoType::write_zeroes:
        wrote_ = true;
        return bs.write_zeroes(ch_, *blob_, io->offset_blocks, io->num_blocks, done, io);
      case IoType::reset:  // the generic layer drains the channel; nothing of ours to reset
        io->channel->complete(io, Errc::ok);
        return Status::Ok();
    }
    return Status(Errc::invalid_argument, "unknown request type");
  }

  std::shared_ptr<blob::Blobstore> bs_;
  std::shared_ptr<blob::Blob> blob_;
  blob::BlobChannel* ch_;
  IntrusiveQueue<Waiting> busy_;
  bool wrote_ = false;  // writes issued since the last flush may have allocated clusters
};

}  // namespace

LvolBdev::LvolBdev(std::string name, std::string spec, const bdev::Geometry& g, std::shared_ptr<blob::Blobstore> bs,
                   blob::BlobId id)
    : Bdev(std::move(name), g), spec_(std::move(spec)), bs_(std::move(bs)), id_(id) {}

Result<std::unique_ptr<bdev::BackendQueue>> LvolBdev::create_queue() {
  // The blob stays open while any channel exists: that is what keeps it from being deleted
  // under the data path.
  auto blob = bs_->open(id_);
  if (!blob.ok()) return blob.status();
  auto ch = bs_->get_channel();
  if (!ch.ok()) {
    (void)bs_->close(std::move(blob.value()));
    return ch.status();
  }
  return std::unique_ptr<bdev::BackendQueue>(new LvolQueue(bs_, std::move(blob.value()), *ch));
}

void LvolBdev::set_num_blocks(uint64_t num_blocks) {
  bdev::Geometry g = geometry();
  g.num_blocks = num_blocks;
  set_geometry(g);
}

}  // namespace sluice::lvol
